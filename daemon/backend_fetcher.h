// BackendFetcher: the daemon's adapter from the cache's Fetcher to one open
// file of the source (cache/ does not know netfs_backends/).
#pragma once

#include "cache/fetcher.h"
#include "netfs_backends/backend.h"

namespace cachefuse::daemon {

class BackendFetcher final : public cache::Fetcher {
 public:
  // backend: the mount's source stack (outlives every fetcher).
  BackendFetcher(netfs::Backend* backend, netfs::OpenFileRef file) : backend_(backend), file_(std::move(file)) {}

  Result<size_t> Fetch(uint64_t offset, std::span<const struct iovec> bufs, const std::string& expect) override {
    netfs::Coherency version{expect};
    netfs::ReadOptions options;
    // An empty token is an unknown version: nothing to check against.
    if (!expect.empty()) options.expect = &version;
    return backend_->read_range(*file_, offset, bufs, options);
  }

 private:
  netfs::Backend* const backend_;
  const netfs::OpenFileRef file_;
};

}  // namespace cachefuse::daemon
