// Tests for cache/shape.h: the granules a byte range touches, granule lengths
// at the end of the file, DIO rounding and granule counts, at the edges.
#include "cache/shape.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>

namespace cachefuse::cache {
namespace {

constexpr uint64_t G = 64 * 1024;

}  // namespace

TEST_CASE("shape: ShapeRange of no bytes is empty, wherever it is", "[shape]") {
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, G, 3 * G + 5}) {
    for (uint64_t off : {uint64_t{0}, uint64_t{1}, G - 1, G, 2 * G + 7, size, size + 1}) {
      INFO("size " << size << " off " << off);
      const ReadShape r = ShapeRange(off, 0, size, G);
      CHECK(r.empty());
    }
  }
}

TEST_CASE("shape: ShapeRange at and past EOF is empty", "[shape]") {
  const uint64_t size = 3 * G + 5;
  for (uint64_t off : {size, size + 1, 4 * G, 100 * G, std::numeric_limits<uint64_t>::max() / 2}) {
    INFO("off " << off);
    const ReadShape r = ShapeRange(off, G, size, G);
    CHECK(r.empty());
    CHECK(r.byte_end == size);  // clipped to EOF
  }
  // An empty file has nothing to shape.
  CHECK(ShapeRange(0, G, 0, G).empty());
  CHECK(ShapeRange(0, 1, 0, G).empty());
}

TEST_CASE("shape: ShapeRange inside one granule and across granules", "[shape]") {
  const uint64_t size = 10 * G;
  ReadShape r = ShapeRange(0, 1, size, G);
  CHECK(r.first == 0);
  CHECK(r.end == 1);
  CHECK(r.byte_end == 1);
  CHECK_FALSE(r.empty());

  r = ShapeRange(G - 1, 1, size, G);  // the last byte of granule 0
  CHECK(r.first == 0);
  CHECK(r.end == 1);
  CHECK(r.byte_end == G);

  r = ShapeRange(G - 1, 2, size, G);  // straddles granules 0 and 1
  CHECK(r.first == 0);
  CHECK(r.end == 2);
  CHECK(r.byte_end == G + 1);

  r = ShapeRange(G + 100, G, size, G);
  CHECK(r.first == 1);
  CHECK(r.end == 3);
  CHECK(r.byte_end == 2 * G + 100);
}

TEST_CASE("shape: ShapeRange of exact granule multiples touches only those granules", "[shape]") {
  const uint64_t size = 10 * G;
  ReadShape r = ShapeRange(0, G, size, G);
  CHECK(r.first == 0);
  CHECK(r.end == 1);
  CHECK(r.byte_end == G);

  r = ShapeRange(2 * G, 3 * G, size, G);
  CHECK(r.first == 2);
  CHECK(r.end == 5);
  CHECK(r.byte_end == 5 * G);

  r = ShapeRange(0, size, size, G);  // the whole file
  CHECK(r.first == 0);
  CHECK(r.end == 10);
  CHECK(r.byte_end == size);

  r = ShapeRange(9 * G, G, size, G);  // the last granule, exactly to EOF
  CHECK(r.first == 9);
  CHECK(r.end == 10);
  CHECK(r.byte_end == size);
}

TEST_CASE("shape: ShapeRange clips at an EOF inside a granule", "[shape]") {
  const uint64_t size = 3 * G + 5;  // granule 3 holds 5 bytes
  ReadShape r = ShapeRange(3 * G, G, size, G);
  CHECK(r.first == 3);
  CHECK(r.end == 4);
  CHECK(r.byte_end == size);

  r = ShapeRange(2 * G + 10, 10 * G, size, G);  // asks far past EOF
  CHECK(r.first == 2);
  CHECK(r.end == 4);
  CHECK(r.byte_end == size);

  r = ShapeRange(size - 1, 1, size, G);  // the last byte
  CHECK(r.first == 3);
  CHECK(r.end == 4);
  CHECK(r.byte_end == size);

  // A file shorter than one granule.
  r = ShapeRange(0, G, 100, G);
  CHECK(r.first == 0);
  CHECK(r.end == 1);
  CHECK(r.byte_end == 100);
  r = ShapeRange(99, 1000, 100, G);
  CHECK(r.first == 0);
  CHECK(r.end == 1);
  CHECK(r.byte_end == 100);
}

TEST_CASE("shape: ShapeRange of a huge sparse file", "[shape]") {
  const uint64_t size = (5ULL << 40) + 12345;
  const ReadShape r = ShapeRange(size - 1000, 1 << 20, size, G);
  CHECK(r.first == (size - 1000) / G);
  CHECK(r.end == (size + G - 1) / G);
  CHECK(r.byte_end == size);
  CHECK(r.end == GranuleCount(size, G));
}

TEST_CASE("shape: GranuleBytes: whole granules, the short last one, and none past EOF", "[shape]") {
  const uint64_t size = 3 * G + 5;
  CHECK(GranuleBytes(0, size, G) == G);
  CHECK(GranuleBytes(2, size, G) == G);
  CHECK(GranuleBytes(3, size, G) == 5);
  CHECK(GranuleBytes(4, size, G) == 0);
  CHECK(GranuleBytes(1000, size, G) == 0);
  // EOF at a granule boundary: the last granule is whole, the next one empty.
  CHECK(GranuleBytes(2, 3 * G, G) == G);
  CHECK(GranuleBytes(3, 3 * G, G) == 0);
  // An empty file has no bytes in any granule.
  CHECK(GranuleBytes(0, 0, G) == 0);
  // One byte.
  CHECK(GranuleBytes(0, 1, G) == 1);
  CHECK(GranuleBytes(1, 1, G) == 0);
}

TEST_CASE("shape: DioBytes rounds up to the alignment, and keeps aligned lengths", "[shape]") {
  for (uint64_t align : {uint64_t{512}, uint64_t{4096}}) {
    INFO("align " << align);
    CHECK(DioBytes(0, align) == 0);
    CHECK(DioBytes(1, align) == align);
    CHECK(DioBytes(align - 1, align) == align);
    CHECK(DioBytes(align, align) == align);
    CHECK(DioBytes(align + 1, align) == 2 * align);
    CHECK(DioBytes(G, align) == G);
    CHECK(DioBytes(G - 1, align) == G);
    CHECK(DioBytes(5, align) % align == 0);
  }
}

TEST_CASE("shape: GranuleCount of empty, partial and exact sizes", "[shape]") {
  CHECK(GranuleCount(0, G) == 0);
  CHECK(GranuleCount(1, G) == 1);
  CHECK(GranuleCount(G - 1, G) == 1);
  CHECK(GranuleCount(G, G) == 1);
  CHECK(GranuleCount(G + 1, G) == 2);
  CHECK(GranuleCount(10 * G, G) == 10);
  CHECK(GranuleCount(10 * G + 1, G) == 11);
  CHECK(GranuleCount(4096, 4096) == 1);
  // Agrees with GranuleBytes: the last counted granule has bytes, the next has none.
  for (uint64_t size : {uint64_t{1}, G - 1, G, G + 1, 3 * G + 5, 7 * G}) {
    INFO("size " << size);
    const uint64_t n = GranuleCount(size, G);
    CHECK(GranuleBytes(n - 1, size, G) > 0);
    CHECK(GranuleBytes(n, size, G) == 0);
    uint64_t sum = 0;
    for (uint64_t g = 0; g < n; ++g) sum += GranuleBytes(g, size, G);
    CHECK(sum == size);
  }
}

}  // namespace cachefuse::cache
