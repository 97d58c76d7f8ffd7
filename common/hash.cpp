// Hash128: two independently seeded 64-bit multiply-xorshift lanes over 8-byte words.
// Not cryptographic: a collision is detected by the key check in the aux xattr,
// so the hash only has to spread names evenly and be stable on disk.
#include "common/hash.h"

#include <cstring>

namespace cachefuse {
namespace {

constexpr uint64_t kMulA = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kMulB = 0xC2B2AE3D27D4EB4FULL;

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDULL;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t LoadLe64(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

Hash128 HashBytes(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint64_t a = 0x243F6A8885A308D3ULL ^ n;
  uint64_t b = 0x13198A2E03707344ULL ^ (n * kMulB);
  while (n > 0) {
    size_t take = n < 8 ? n : 8;
    uint64_t w = LoadLe64(p, take);
    a = Mix(a ^ (w * kMulA)) + 0x452821E638D01377ULL;
    b = Mix(b + (w ^ kMulB)) ^ (a >> 7);
    p += take;
    n -= take;
  }
  return Hash128{Mix(a ^ (b << 1)), Mix(b ^ (a >> 1) ^ kMulA)};
}

std::string ToHex(const Hash128& h) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[15 - i] = kDigits[(h.hi >> (4 * i)) & 0xF];
    s[31 - i] = kDigits[(h.lo >> (4 * i)) & 0xF];
  }
  return s;
}

}  // namespace cachefuse
