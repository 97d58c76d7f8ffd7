// Fetcher: how the read helper gets the bytes of one open file from the
// source. The daemon adapts its backend to it, so cache/ builds without
// netfs_backends/ (DESIGN.md section 5a: the narrow fetcher interface).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace cachefuse::cache {

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // Reads up to the buffers' total size at offset, filling them in order; may
  // return fewer bytes, 0 at end of file. expect: the coherency token of the
  // generation the bytes are for. If the source can tell that the bytes are
  // not of that version (the file was overwritten or truncated), it fails with
  // Status::Kind::kStale instead. Many may run at once.
  virtual Result<size_t> Fetch(uint64_t offset, std::span<const struct iovec> bufs, const std::string& expect) = 0;
};
using FetcherRef = std::shared_ptr<Fetcher>;

}  // namespace cachefuse::cache
