// Non-cryptographic 128-bit hashing for cache object and volume names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cachefuse {

struct Hash128 {
  uint64_t hi = 0;
  uint64_t lo = 0;
  bool operator==(const Hash128&) const = default;
};

// Hashes bytes; stable across runs, builds and machines (it names files on disk).
Hash128 HashBytes(std::string_view data);

// 32 lowercase hex digits.
std::string ToHex(const Hash128& h);

}  // namespace cachefuse
