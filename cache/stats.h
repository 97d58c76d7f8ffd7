// Stats: the counters `cachefusectl stats` prints (DESIGN.md section 8).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cachefuse::cache {

enum class CacheState { kActive, kNoSpace, kDead };
const char* CacheStateName(CacheState s);

struct Stats {
  using Counter = std::atomic<uint64_t>;

  Counter cookies_acquired{0};
  Counter cookies_relinquished{0};
  Counter cookies_in_use{0};  // gauge: cookies with at least one user
  Counter read_requests{0};
  Counter read_hit{0};
  Counter read_partial{0};
  Counter read_miss{0};
  Counter bytes_from_cache{0};
  Counter bytes_from_backend{0};
  Counter bytes_to_cache{0};
  Counter readahead_bytes{0};
  Counter backend_inflight{0};  // gauge
  Counter backend_inflight_max{0};
  Counter invalidations{0};
  Counter objects_discarded{0};  // sent to the graveyard as unusable
  Counter cull_objects{0};
  Counter cull_bytes{0};
  Counter cache_errors{0};
  Counter cache_bytes_used{0};  // gauge
  Counter cache_objects{0};     // gauge
  Counter io_submitted{0};
  Counter io_completed{0};
  Counter io_errors{0};
  Counter io_dio_misfit{0};

  std::atomic<CacheState> state{CacheState::kActive};
  std::atomic<const char*> io_engine{"sync"};

  // (name, value) in a fixed order; numbers as decimal strings, states as names.
  std::vector<std::pair<std::string, std::string>> Snapshot() const;
  // One JSON object with the dotted names as keys.
  std::string ToJson() const;
  // The same for any (name, value) list (the daemon adds the backend's counters).
  static std::string JsonOf(const std::vector<std::pair<std::string, std::string>>& pairs);
  // "name value" lines.
  std::string ToText() const;

  // Raises backend_inflight_max to at least v.
  void NoteInflight(uint64_t v);
};

}  // namespace cachefuse::cache
