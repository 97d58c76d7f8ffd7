// SourceStack: the layers every source runs behind (DESIGN.md section 5a),
// built in one place: source -> [fault injection, debug options only] ->
// call policy (retries, deadlines, counters) -> attribute/listing cache.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/mount_options.h"
#include "netfs_backends/attr_cache.h"
#include "netfs_backends/backend.h"
#include "netfs_backends/retry_backend.h"

namespace cachefuse::daemon {

struct SourceStack {
  std::unique_ptr<netfs::Backend> top;       // what the filesystem calls
  netfs::AttrCacheBackend* attrs = nullptr;  // inside top
  netfs::RetryBackend* policy = nullptr;     // inside top

  // backend.* counters for cachefusectl stats.
  std::vector<std::pair<std::string, std::string>> Snapshot() const;
};

SourceStack BuildSourceStack(const MountOptions& options, std::unique_ptr<netfs::Backend> source);

}  // namespace cachefuse::daemon
