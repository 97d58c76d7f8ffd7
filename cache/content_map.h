// ContentMap: which granules of a cache object hold data, as a set of extents.
//
// Compact for the shapes that occur (whole files, sparse islands in huge
// files); no size limit. Not thread-safe: the owner (CacheObject) locks.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachefuse::cache {

struct GranuleRange {
  uint64_t start = 0;  // first granule
  uint64_t end = 0;    // one past the last granule
  bool operator==(const GranuleRange&) const = default;
};

class ContentMap {
 public:
  void Add(uint64_t start, uint64_t end);
  void Remove(uint64_t start, uint64_t end);
  // Remove every granule of other from this map.
  void Subtract(const ContentMap& other);
  void Clear() { extents_.clear(); }

  bool Contains(uint64_t granule) const;
  bool ContainsAll(uint64_t start, uint64_t end) const;
  bool empty() const { return extents_.empty(); }
  uint64_t CountGranules() const;
  // One past the highest present granule (0 when empty).
  uint64_t End() const;
  std::vector<GranuleRange> Extents() const;

  // Varint encoding: count, then (gap from previous end, length) pairs.
  std::string Encode() const;
  // Fails (nullopt) on truncated input, trailing bytes, empty or overlapping extents.
  static std::optional<ContentMap> Decode(std::string_view data);

  bool operator==(const ContentMap&) const = default;

 private:
  std::map<uint64_t, uint64_t> extents_;  // start -> end, disjoint, non-adjacent
};

}  // namespace cachefuse::cache
