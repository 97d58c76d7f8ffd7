// Tests for cache/content_map: extent-set operations and the on-disk varint encoding.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cache/content_map.h"

using cachefuse::cache::ContentMap;
using cachefuse::cache::GranuleRange;

namespace {

std::vector<GranuleRange> R(std::initializer_list<GranuleRange> l) {
  return std::vector<GranuleRange>(l);
}

ContentMap MapOf(std::initializer_list<GranuleRange> l) {
  ContentMap m;
  for (const auto& r : l) m.Add(r.start, r.end);
  return m;
}

// The extents a set of granules should collapse to.
std::vector<GranuleRange> ExtentsOf(const std::set<uint64_t>& s) {
  std::vector<GranuleRange> out;
  for (uint64_t g : s) {
    if (!out.empty() && out.back().end == g) {
      out.back().end = g + 1;
    } else {
      out.push_back({g, g + 1});
    }
  }
  return out;
}

std::string Bytes(std::initializer_list<int> l) {
  std::string s;
  for (int b : l) s.push_back(static_cast<char>(b));
  return s;
}

constexpr uint64_t kMax = UINT64_MAX;

}  // namespace

TEST_CASE("ContentMap starts empty") {
  ContentMap m;
  CHECK(m.empty());
  CHECK(m.CountGranules() == 0);
  CHECK(m.End() == 0);
  CHECK(m.Extents().empty());
  CHECK_FALSE(m.Contains(0));
  CHECK(m.ContainsAll(5, 5));  // an empty range is always contained
  CHECK_FALSE(m.ContainsAll(0, 1));
}

TEST_CASE("ContentMap::Add ignores empty and reversed ranges") {
  ContentMap m;
  m.Add(5, 5);
  m.Add(7, 3);
  CHECK(m.empty());
  m.Add(1, 2);
  m.Add(9, 9);
  CHECK(m.Extents() == R({{1, 2}}));
}

TEST_CASE("ContentMap::Add keeps disjoint extents apart and sorted") {
  ContentMap m;
  m.Add(10, 20);
  m.Add(0, 5);
  m.Add(30, 31);
  CHECK(m.Extents() == R({{0, 5}, {10, 20}, {30, 31}}));
  CHECK(m.CountGranules() == 16);
  CHECK(m.End() == 31);
  CHECK_FALSE(m.empty());
}

TEST_CASE("ContentMap::Add merges adjacent and overlapping extents") {
  SECTION("adjacent after") {
    auto m = MapOf({{0, 5}, {5, 8}});
    CHECK(m.Extents() == R({{0, 8}}));
  }
  SECTION("adjacent before") {
    auto m = MapOf({{5, 8}, {0, 5}});
    CHECK(m.Extents() == R({{0, 8}}));
  }
  SECTION("filling a one-granule gap joins both neighbours") {
    auto m = MapOf({{0, 4}, {5, 9}});
    REQUIRE(m.Extents().size() == 2);
    m.Add(4, 5);
    CHECK(m.Extents() == R({{0, 9}}));
  }
  SECTION("overlap at the start") {
    auto m = MapOf({{10, 20}, {5, 12}});
    CHECK(m.Extents() == R({{5, 20}}));
  }
  SECTION("overlap at the end") {
    auto m = MapOf({{10, 20}, {15, 25}});
    CHECK(m.Extents() == R({{10, 25}}));
  }
  SECTION("a range inside an extent changes nothing") {
    auto m = MapOf({{10, 20}, {12, 13}});
    CHECK(m.Extents() == R({{10, 20}}));
  }
  SECTION("a range covering several extents swallows them all") {
    auto m = MapOf({{2, 3}, {5, 6}, {8, 9}, {20, 21}});
    m.Add(1, 10);
    CHECK(m.Extents() == R({{1, 10}, {20, 21}}));
  }
  SECTION("a range ending exactly at the next extent's start joins it") {
    auto m = MapOf({{0, 2}, {10, 12}});
    m.Add(4, 10);
    CHECK(m.Extents() == R({{0, 2}, {4, 12}}));
  }
  SECTION("a range starting exactly at an extent's end joins it and the next") {
    auto m = MapOf({{0, 2}, {10, 12}});
    m.Add(2, 10);
    CHECK(m.Extents() == R({{0, 12}}));
  }
  SECTION("re-adding the same extent is idempotent") {
    auto m = MapOf({{3, 7}, {3, 7}, {3, 7}});
    CHECK(m.Extents() == R({{3, 7}}));
    CHECK(m.CountGranules() == 4);
  }
}

TEST_CASE("ContentMap::Remove trims and splits extents") {
  SECTION("the middle of an extent splits it") {
    auto m = MapOf({{0, 10}});
    m.Remove(3, 6);
    CHECK(m.Extents() == R({{0, 3}, {6, 10}}));
    CHECK(m.CountGranules() == 7);
  }
  SECTION("the head of an extent") {
    auto m = MapOf({{0, 10}});
    m.Remove(0, 4);
    CHECK(m.Extents() == R({{4, 10}}));
  }
  SECTION("the tail of an extent") {
    auto m = MapOf({{0, 10}});
    m.Remove(7, 100);
    CHECK(m.Extents() == R({{0, 7}}));
    CHECK(m.End() == 7);
  }
  SECTION("a whole extent exactly") {
    auto m = MapOf({{0, 2}, {5, 8}, {10, 12}});
    m.Remove(5, 8);
    CHECK(m.Extents() == R({{0, 2}, {10, 12}}));
  }
  SECTION("across several extents, trimming both ends") {
    auto m = MapOf({{0, 4}, {6, 8}, {10, 12}, {14, 20}});
    m.Remove(2, 16);
    CHECK(m.Extents() == R({{0, 2}, {16, 20}}));
  }
  SECTION("a range in a gap changes nothing") {
    auto m = MapOf({{0, 4}, {10, 12}});
    m.Remove(4, 10);
    CHECK(m.Extents() == R({{0, 4}, {10, 12}}));
  }
  SECTION("empty and reversed ranges change nothing") {
    auto m = MapOf({{0, 4}});
    m.Remove(2, 2);
    m.Remove(3, 1);
    CHECK(m.Extents() == R({{0, 4}}));
  }
  SECTION("everything") {
    auto m = MapOf({{0, 4}, {10, 12}});
    m.Remove(0, kMax);
    CHECK(m.empty());
    CHECK(m.End() == 0);
  }
  SECTION("a single granule") {
    auto m = MapOf({{0, 3}});
    m.Remove(1, 2);
    CHECK(m.Extents() == R({{0, 1}, {2, 3}}));
    CHECK(m.Contains(0));
    CHECK_FALSE(m.Contains(1));
    CHECK(m.Contains(2));
  }
}

TEST_CASE("ContentMap::Subtract removes every granule of the other map") {
  auto a = MapOf({{0, 10}, {20, 30}, {40, 41}});
  auto b = MapOf({{5, 25}, {40, 50}, {100, 200}});
  a.Subtract(b);
  CHECK(a.Extents() == R({{0, 5}, {25, 30}}));
  // b is unchanged.
  CHECK(b.Extents() == R({{5, 25}, {40, 50}, {100, 200}}));

  auto c = MapOf({{1, 3}});
  c.Subtract(ContentMap{});
  CHECK(c.Extents() == R({{1, 3}}));
  c.Subtract(c);  // subtracting itself empties it
  CHECK(c.empty());
}

TEST_CASE("ContentMap::Contains and ContainsAll") {
  auto m = MapOf({{2, 5}, {8, 10}});
  CHECK_FALSE(m.Contains(1));
  CHECK(m.Contains(2));
  CHECK(m.Contains(4));
  CHECK_FALSE(m.Contains(5));
  CHECK_FALSE(m.Contains(7));
  CHECK(m.Contains(8));
  CHECK(m.Contains(9));
  CHECK_FALSE(m.Contains(10));
  CHECK_FALSE(m.Contains(kMax));

  CHECK(m.ContainsAll(2, 5));
  CHECK(m.ContainsAll(3, 4));
  CHECK_FALSE(m.ContainsAll(1, 3));   // starts before
  CHECK_FALSE(m.ContainsAll(4, 6));   // runs past the end
  CHECK_FALSE(m.ContainsAll(2, 10));  // spans a hole
  CHECK_FALSE(m.ContainsAll(5, 8));   // entirely in a hole
  CHECK(m.ContainsAll(8, 10));
  CHECK_FALSE(m.ContainsAll(8, 11));
  CHECK(m.ContainsAll(100, 100));  // empty range
}

TEST_CASE("ContentMap::Contains of the highest granule index is false when absent") {
  // Granule kMax can never be present (end is exclusive); asking must not wrap.
  ContentMap m;
  CHECK_FALSE(m.Contains(kMax));
  m.Add(0, kMax);
  CHECK(m.Contains(kMax - 1));
  CHECK_FALSE(m.Contains(kMax));
  CHECK(m.CountGranules() == kMax);
  CHECK(m.End() == kMax);
}

TEST_CASE("ContentMap::Clear and equality") {
  auto a = MapOf({{1, 4}, {6, 7}});
  auto b = MapOf({{6, 7}, {1, 2}, {2, 4}});
  CHECK(a == b);
  b.Add(7, 8);
  CHECK_FALSE(a == b);
  a.Clear();
  CHECK(a.empty());
  CHECK(a == ContentMap{});
}

TEST_CASE("ContentMap handles huge granule indices (files of any size)") {
  const uint64_t g40 = 1ULL << 40;
  ContentMap m;
  m.Add(g40, g40 + 3);
  m.Add(0, 1);
  m.Add(kMax - 2, kMax);
  CHECK(m.Extents() == R({{0, 1}, {g40, g40 + 3}, {kMax - 2, kMax}}));
  CHECK(m.CountGranules() == 6);
  CHECK(m.End() == kMax);
  CHECK(m.Contains(g40 + 2));
  CHECK_FALSE(m.Contains(g40 + 3));
  CHECK(m.ContainsAll(kMax - 2, kMax));

  auto decoded = ContentMap::Decode(m.Encode());
  REQUIRE(decoded);
  CHECK(*decoded == m);
  CHECK(decoded->Extents() == m.Extents());

  m.Remove(g40 + 1, g40 + 2);
  CHECK(m.Extents() == R({{0, 1}, {g40, g40 + 1}, {g40 + 2, g40 + 3}, {kMax - 2, kMax}}));
}

TEST_CASE("ContentMap encoding: exact bytes") {
  // count, then (gap from the previous end, length) pairs, LEB128 varints.
  CHECK(ContentMap{}.Encode() == Bytes({0x00}));
  CHECK(MapOf({{0, 1}}).Encode() == Bytes({0x01, 0x00, 0x01}));
  CHECK(MapOf({{3, 5}, {10, 11}}).Encode() == Bytes({0x02, 0x03, 0x02, 0x05, 0x01}));
  // 300 = 0xAC 0x02 as a varint.
  CHECK(MapOf({{300, 301}}).Encode() == Bytes({0x01, 0xAC, 0x02, 0x01}));
  // A gap of 2^40: six 7-bit groups, the last one 0x20.
  CHECK(MapOf({{1ULL << 40, (1ULL << 40) + 1}}).Encode() == Bytes({0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x01}));
  // A length of 2^64-1: ten bytes, nine 0xFF and a final 0x01.
  CHECK(MapOf({{0, kMax}}).Encode() == Bytes({0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
}

TEST_CASE("ContentMap Encode/Decode round trip on random sets against a std::set model") {
  std::mt19937_64 rng(12345);
  for (int iter = 0; iter < 300; ++iter) {
    std::set<uint64_t> model;
    ContentMap m;
    const uint64_t universe = 1 + rng() % 200;
    const int ops = static_cast<int>(rng() % 40);
    for (int op = 0; op < ops; ++op) {
      uint64_t a = rng() % universe;
      uint64_t b = a + rng() % 20;
      if (rng() % 3 != 0) {
        m.Add(a, b);
        for (uint64_t g = a; g < b; ++g) model.insert(g);
      } else {
        m.Remove(a, b);
        for (uint64_t g = a; g < b; ++g) model.erase(g);
      }
    }
    INFO("iteration " << iter);
    REQUIRE(m.Extents() == ExtentsOf(model));
    REQUIRE(m.CountGranules() == model.size());
    REQUIRE(m.End() == (model.empty() ? 0 : *model.rbegin() + 1));
    REQUIRE(m.empty() == model.empty());
    for (uint64_t g = 0; g < universe + 20; ++g) REQUIRE(m.Contains(g) == (model.count(g) == 1));

    auto decoded = ContentMap::Decode(m.Encode());
    REQUIRE(decoded);
    REQUIRE(*decoded == m);
    REQUIRE(decoded->Encode() == m.Encode());
  }
}

TEST_CASE("ContentMap Subtract and ContainsAll against a std::set model") {
  std::mt19937_64 rng(777);
  for (int iter = 0; iter < 200; ++iter) {
    std::set<uint64_t> ma, mb;
    ContentMap a, b;
    for (int op = 0; op < 8; ++op) {
      uint64_t s = rng() % 100;
      uint64_t e = s + rng() % 15;
      a.Add(s, e);
      for (uint64_t g = s; g < e; ++g) ma.insert(g);
      s = rng() % 100;
      e = s + rng() % 15;
      b.Add(s, e);
      for (uint64_t g = s; g < e; ++g) mb.insert(g);
    }
    for (int q = 0; q < 20; ++q) {
      uint64_t s = rng() % 120;
      uint64_t e = s + rng() % 10;
      bool all = true;
      for (uint64_t g = s; g < e; ++g) all = all && ma.count(g);
      INFO("iteration " << iter << " query [" << s << "," << e << ")");
      REQUIRE(a.ContainsAll(s, e) == all);
    }
    a.Subtract(b);
    for (uint64_t g : mb) ma.erase(g);
    INFO("iteration " << iter);
    REQUIRE(a.Extents() == ExtentsOf(ma));
  }
}

TEST_CASE("ContentMap round trip with sparse islands spread over 64-bit indices") {
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 100; ++iter) {
    std::vector<uint64_t> starts;
    for (int i = 0; i < 20; ++i) starts.push_back(rng() >> (rng() % 64));
    ContentMap m;
    for (uint64_t s : starts) {
      uint64_t len = 1 + rng() % 1000;
      m.Add(s, s > kMax - len ? kMax : s + len);
    }
    auto decoded = ContentMap::Decode(m.Encode());
    REQUIRE(decoded);
    REQUIRE(*decoded == m);
  }
}

TEST_CASE("ContentMap::Decode rejects every truncation of a valid encoding") {
  auto m = MapOf({{0, 3}, {1000, 100000}, {1ULL << 40, (1ULL << 40) + 7}, {kMax - 1, kMax}});
  const std::string enc = m.Encode();
  REQUIRE(ContentMap::Decode(enc));
  for (size_t n = 0; n < enc.size(); ++n) {
    INFO("truncated to " << n << " of " << enc.size() << " bytes");
    CHECK_FALSE(ContentMap::Decode(std::string_view(enc).substr(0, n)));
  }
}

TEST_CASE("ContentMap::Decode rejects trailing bytes") {
  auto enc = MapOf({{2, 4}}).Encode();
  CHECK_FALSE(ContentMap::Decode(enc + '\0'));
  CHECK_FALSE(ContentMap::Decode(enc + "\x01\x01"));
  CHECK_FALSE(ContentMap::Decode(Bytes({0x00, 0x00})));  // empty map plus a byte
}

TEST_CASE("ContentMap::Decode rejects non-canonical extents") {
  SECTION("zero-length first extent") {
    CHECK_FALSE(ContentMap::Decode(Bytes({0x01, 0x05, 0x00})));
  }
  SECTION("zero-length later extent") {
    CHECK_FALSE(ContentMap::Decode(Bytes({0x02, 0x00, 0x02, 0x03, 0x00})));
  }
  SECTION("adjacent extents (gap 0 after the first)") {
    CHECK_FALSE(ContentMap::Decode(Bytes({0x02, 0x00, 0x02, 0x00, 0x03})));
  }
  SECTION("a gap of 0 before the first extent is fine (it starts at granule 0)") {
    auto m = ContentMap::Decode(Bytes({0x02, 0x00, 0x02, 0x01, 0x03}));
    REQUIRE(m);
    CHECK(m->Extents() == R({{0, 2}, {3, 6}}));
  }
}

TEST_CASE("ContentMap::Decode rejects counts larger than the data") {
  CHECK_FALSE(ContentMap::Decode(Bytes({0x05, 0x00, 0x01})));
  // A count of 2^63 must fail fast, not loop or allocate.
  CHECK_FALSE(ContentMap::Decode(Bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00, 0x01})));
}

TEST_CASE("ContentMap::Decode rejects overflowing varints") {
  // Ten bytes whose last carries more than bit 63.
  CHECK_FALSE(ContentMap::Decode(Bytes({0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02})));
  // Ten bytes with a continuation bit on the tenth.
  CHECK_FALSE(
      ContentMap::Decode(Bytes({0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x81, 0x00})));
  // Eleven bytes.
  CHECK_FALSE(
      ContentMap::Decode(Bytes({0x01, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})));
  // A varint that never ends.
  CHECK_FALSE(ContentMap::Decode(Bytes({0x01, 0x80, 0x80, 0x80})));
  // The largest length that fits is accepted.
  CHECK(ContentMap::Decode(Bytes({0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})));
}

TEST_CASE("ContentMap::Decode rejects extents that run past 2^64") {
  // One extent at 2^64-1 of length 1 would end at 2^64.
  CHECK_FALSE(ContentMap::Decode(Bytes({0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x01})));
  // A second extent whose start wraps around: [0, 2) then a gap of 2^64-1.
  CHECK_FALSE(
      ContentMap::Decode(Bytes({0x02, 0x00, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x01})));
  // Two extents whose lengths together pass 2^64.
  // [0, 2^63-1), then a gap of 1 and a length of 2^63: the end wraps to 0.
  CHECK_FALSE(ContentMap::Decode(Bytes({0x02, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F,
                                        0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})));
  // The same with a length of 2^63-1 ends exactly at 2^64-1 and is fine.
  auto edge = ContentMap::Decode(Bytes({0x02, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F,
                                        0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}));
  REQUIRE(edge);
  CHECK(edge->Extents() == R({{0, (1ULL << 63) - 1}, {1ULL << 63, kMax}}));
}

TEST_CASE("ContentMap::Decode of garbage never crashes and only accepts canonical maps") {
  // Whatever random bytes decode to must be a canonical map that survives a
  // second round trip.
  std::mt19937 rng(4242);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string data(rng() % 12, '\0');
    for (auto& c : data) c = static_cast<char>(rng() % 4 == 0 ? rng() & 0xFF : rng() & 0x07);
    auto m = ContentMap::Decode(data);
    if (!m) continue;
    ++accepted;
    auto again = ContentMap::Decode(m->Encode());
    REQUIRE(again);
    REQUIRE(*again == *m);
    // Canonical: extents are non-empty, sorted and separated by holes.
    auto ext = m->Extents();
    for (size_t i = 0; i < ext.size(); ++i) {
      REQUIRE(ext[i].start < ext[i].end);
      if (i > 0) REQUIRE(ext[i - 1].end < ext[i].start);
    }
  }
  CHECK(accepted > 0);
}
