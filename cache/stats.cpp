// Stats: snapshot and JSON/text rendering of the counters.
#include "cache/stats.h"

namespace cachefuse::cache {

const char* CacheStateName(CacheState s) {
  switch (s) {
    case CacheState::kActive:
      return "active";
    case CacheState::kNoSpace:
      return "no-space";
    case CacheState::kDead:
      return "dead";
  }
  return "unknown";
}

std::vector<std::pair<std::string, std::string>> Stats::Snapshot() const {
  auto n = [](const Counter& c) { return std::to_string(c.load(std::memory_order_relaxed)); };
  return {
      {"cookies.acquired", n(cookies_acquired)},
      {"cookies.relinquished", n(cookies_relinquished)},
      {"cookies.in_use", n(cookies_in_use)},
      {"read.requests", n(read_requests)},
      {"read.hit", n(read_hit)},
      {"read.partial", n(read_partial)},
      {"read.miss", n(read_miss)},
      {"bytes.from_cache", n(bytes_from_cache)},
      {"bytes.from_backend", n(bytes_from_backend)},
      {"bytes.to_cache", n(bytes_to_cache)},
      {"readahead.bytes", n(readahead_bytes)},
      {"backend.inflight_max", n(backend_inflight_max)},
      {"invalidations", n(invalidations)},
      {"objects.discarded", n(objects_discarded)},
      {"cull.objects", n(cull_objects)},
      {"cull.bytes", n(cull_bytes)},
      {"cache.errors", n(cache_errors)},
      {"cache.state", CacheStateName(state.load())},
      {"cache.bytes_used", n(cache_bytes_used)},
      {"cache.objects", n(cache_objects)},
      {"io.engine", io_engine.load()},
      {"io.submitted", n(io_submitted)},
      {"io.completed", n(io_completed)},
      {"io.errors", n(io_errors)},
      {"io.dio_misfit", n(io_dio_misfit)},
  };
}

std::string Stats::ToJson() const {
  return JsonOf(Snapshot());
}

std::string Stats::JsonOf(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : pairs) {
    if (!first) out += ", ";
    first = false;
    bool numeric = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
    out += "\"" + k + "\": " + (numeric ? v : "\"" + v + "\"");
  }
  out += "}";
  return out;
}

std::string Stats::ToText() const {
  std::string out;
  for (const auto& [k, v] : Snapshot()) out += k + " " + v + "\n";
  return out;
}

void Stats::NoteInflight(uint64_t v) {
  uint64_t cur = backend_inflight_max.load(std::memory_order_relaxed);
  while (v > cur && !backend_inflight_max.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

}  // namespace cachefuse::cache
