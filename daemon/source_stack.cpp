// SourceStack: layering of the source from the mount options.
#include "daemon/source_stack.h"

#include "netfs_backends/fault_backend.h"

namespace cachefuse::daemon {

SourceStack BuildSourceStack(const MountOptions& options, std::unique_ptr<netfs::Backend> source) {
  SourceStack stack;
  std::unique_ptr<netfs::Backend> b = std::move(source);
  if (options.debug_backend_latency_ms > 0) {
    // A slow source: every lookup, listing, open and read pays the latency.
    netfs::FaultPlan plan;
    plan.ops.reset();
    for (netfs::Op op : {netfs::Op::kStat, netfs::Op::kList, netfs::Op::kOpen, netfs::Op::kFstat, netfs::Op::kRead}) {
      plan.ops.set(static_cast<size_t>(op));
    }
    plan.latency_ms = options.debug_backend_latency_ms;
    b = std::make_unique<netfs::FaultBackend>(std::move(b), plan);
  }
  auto policy = std::make_unique<netfs::RetryBackend>(std::move(b), options.ToRetryPolicy());
  stack.policy = policy.get();
  netfs::AttrCacheOptions ac;
  ac.attr_ttl = std::chrono::milliseconds(static_cast<int64_t>(options.attr_timeout * 1000));
  ac.entry_ttl = std::chrono::milliseconds(static_cast<int64_t>(options.entry_timeout * 1000));
  auto attrs = std::make_unique<netfs::AttrCacheBackend>(std::move(policy), ac);
  stack.attrs = attrs.get();
  stack.top = std::move(attrs);
  return stack;
}

std::vector<std::pair<std::string, std::string>> SourceStack::Snapshot() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (policy) out = policy->counters().Snapshot();
  if (top) {
    for (auto& kv : top->SourceCounters()) out.push_back(std::move(kv));
  }
  if (attrs) {
    out.emplace_back("backend.attr_cache.hits", std::to_string(attrs->hits()));
    out.emplace_back("backend.attr_cache.misses", std::to_string(attrs->misses()));
  }
  return out;
}

}  // namespace cachefuse::daemon
