// ContentMap: extent-set operations and the varint encoding stored on disk.
#include "cache/content_map.h"

namespace cachefuse::cache {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    if (shift == 63 && byte > 1) return false;
    result |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

void ContentMap::Add(uint64_t start, uint64_t end) {
  if (start >= end) return;
  // Merge with an extent that starts at or before `start` and reaches it.
  auto it = extents_.upper_bound(start);
  if (it != extents_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) {
      start = prev->first;
      end = std::max(end, prev->second);
      it = extents_.erase(prev);
    }
  }
  // Swallow every extent that starts inside or right after [start, end).
  while (it != extents_.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = extents_.erase(it);
  }
  extents_.emplace(start, end);
}

void ContentMap::Remove(uint64_t start, uint64_t end) {
  if (start >= end) return;
  auto it = extents_.upper_bound(start);
  if (it != extents_.begin()) --it;
  while (it != extents_.end() && it->first < end) {
    uint64_t s = it->first;
    uint64_t e = it->second;
    if (e <= start) {
      ++it;
      continue;
    }
    it = extents_.erase(it);
    if (s < start) extents_.emplace(s, start);
    if (e > end) {
      extents_.emplace(end, e);
      break;
    }
  }
}

void ContentMap::Subtract(const ContentMap& other) {
  if (&other == this) {  // Remove() would erase under the loop's iterator
    Clear();
    return;
  }
  for (const auto& [s, e] : other.extents_) Remove(s, e);
}

bool ContentMap::Contains(uint64_t granule) const {
  if (granule == UINT64_MAX) return false;  // ends are exclusive: never present, and granule + 1 would wrap
  return ContainsAll(granule, granule + 1);
}

bool ContentMap::ContainsAll(uint64_t start, uint64_t end) const {
  if (start >= end) return true;
  auto it = extents_.upper_bound(start);
  if (it == extents_.begin()) return false;
  --it;
  return it->first <= start && it->second >= end;
}

uint64_t ContentMap::CountGranules() const {
  uint64_t n = 0;
  for (const auto& [s, e] : extents_) n += e - s;
  return n;
}

uint64_t ContentMap::End() const {
  return extents_.empty() ? 0 : extents_.rbegin()->second;
}

std::vector<GranuleRange> ContentMap::Extents() const {
  std::vector<GranuleRange> out;
  out.reserve(extents_.size());
  for (const auto& [s, e] : extents_) out.push_back({s, e});
  return out;
}

std::string ContentMap::Encode() const {
  std::string out;
  PutVarint(out, extents_.size());
  uint64_t prev_end = 0;
  for (const auto& [s, e] : extents_) {
    PutVarint(out, s - prev_end);
    PutVarint(out, e - s);
    prev_end = e;
  }
  return out;
}

std::optional<ContentMap> ContentMap::Decode(std::string_view data) {
  ContentMap map;
  uint64_t count = 0;
  if (!GetVarint(data, &count)) return std::nullopt;
  if (count > data.size()) return std::nullopt;  // each extent needs >= 2 bytes
  uint64_t prev_end = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t gap = 0;
    uint64_t len = 0;
    if (!GetVarint(data, &gap) || !GetVarint(data, &len)) return std::nullopt;
    if (len == 0 || (i > 0 && gap == 0)) return std::nullopt;  // empty or adjacent: not canonical
    uint64_t start = prev_end + gap;
    uint64_t end = start + len;
    if (start < prev_end || end <= start) return std::nullopt;  // overflow
    map.extents_.emplace(start, end);
    prev_end = end;
  }
  if (!data.empty()) return std::nullopt;
  return map;
}

}  // namespace cachefuse::cache
