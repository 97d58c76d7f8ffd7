// Request shaping (the seed's fscache_shape_request): which granules a byte
// range touches, how long each is at the end of the file, and how many bytes a
// direct I/O of it moves. The one place these numbers are computed.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cachefuse::cache {

struct ReadShape {
  uint64_t first = 0;     // first granule touched
  uint64_t end = 0;       // one past the last granule touched (clipped to EOF)
  uint64_t byte_end = 0;  // end of the request, clipped to EOF
  bool empty() const { return first >= end; }
};

// The granules of [off, off+len) in a file of `size` bytes, granule size G.
inline ReadShape ShapeRange(uint64_t off, uint64_t len, uint64_t size, uint64_t G) {
  ReadShape r;
  r.byte_end = std::min(off + len, size);
  if (off >= r.byte_end) return r;
  r.first = off / G;
  r.end = (r.byte_end + G - 1) / G;
  return r;
}

// Bytes of the file in granule g (shorter for the last granule).
inline uint64_t GranuleBytes(uint64_t g, uint64_t size, uint64_t G) {
  const uint64_t start = g * G;
  return start >= size ? 0 : std::min(G, size - start);
}

// Bytes a direct I/O of `len` bytes transfers (rounded up to the DIO alignment).
inline uint64_t DioBytes(uint64_t len, uint64_t align) {
  return (len + align - 1) / align * align;
}

// Granules in a file of `size` bytes.
inline uint64_t GranuleCount(uint64_t size, uint64_t G) {
  return (size + G - 1) / G;
}

}  // namespace cachefuse::cache
