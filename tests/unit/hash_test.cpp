// Tests for common/hash (object and volume names on disk) and common/crc32c.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/crc32c.h"
#include "common/hash.h"
#include "test_util.h"

using namespace std::string_literals;

using cachefuse::Crc32c;
using cachefuse::Hash128;
using cachefuse::HashBytes;
using cachefuse::ToHex;
using cachefuse::test::RandomBytes;

namespace {

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("ToHex gives 32 lowercase hex digits, hi then lo, zero-padded") {
  CHECK(ToHex(Hash128{}) == std::string(32, '0'));
  CHECK(ToHex(Hash128{0x0123456789ABCDEFULL, 0xFEDCBA9876543210ULL}) == "0123456789abcdeffedcba9876543210");
  CHECK(ToHex(Hash128{0, 1}) == "00000000000000000000000000000001");
  CHECK(ToHex(Hash128{1, 0}) == "00000000000000010000000000000000");
  CHECK(ToHex(Hash128{UINT64_MAX, UINT64_MAX}) == std::string(32, 'f'));
  for (unsigned seed = 0; seed < 100; ++seed) {
    std::string h = ToHex(HashBytes(RandomBytes(seed, seed)));
    INFO("seed " << seed << " hex " << h);
    REQUIRE(h.size() == 32);
    REQUIRE(IsLowerHex(h));
  }
}

TEST_CASE("HashBytes is stable: pinned values (they name files in existing caches)") {
  // Computed once by the implementation; a change here orphans every cache on disk.
  struct Known {
    std::string in;
    const char* hex;
  };
  const std::vector<Known> known = {
      {"", "b74258dccd9a85f64302a1bffdd6a673"},
      {"a", "c026b82871b8149a9843da4053808c80"},
      {"b", "329e90d8fdcd88ef6507f0c56f127ee4"},
      {"abc", "98b62e47733c090e5e953a16a3082060"},
      {"1234567", "799c67d9587bcbf041f323b79b489f18"},
      {"12345678", "cdea70db85c55406524b049d06ebe8c0"},
      {"123456789", "297fd962f88a97081ea9021fa7d27e5e"},
      {"i1234567", "05ca222770e6ec639bfb6154ea01108d"},
      {"posix:/srv/data", "d598caaafb7b0b945679a78376ba1942"},
      {std::string(1, '\0'), "3ef2571c87c6a73a76135808da18c70e"},
  };
  for (const auto& k : known) {
    INFO("input of " << k.in.size() << " bytes: '" << k.in << "'");
    CHECK(ToHex(HashBytes(k.in)) == k.hex);
  }
}

TEST_CASE("HashBytes is deterministic and independent of the buffer's address") {
  const std::string data = RandomBytes(1000, 5);
  CHECK(HashBytes(data) == HashBytes(std::string(data)));
  // The same bytes at every alignment.
  std::string padded = "xxxxxxxx" + data;
  for (size_t off = 0; off < 8; ++off) {
    std::string shifted = padded.substr(8 - off);  // off junk bytes, then data
    std::string_view view(shifted);
    view.remove_prefix(off);
    REQUIRE(view == data);
    CHECK(HashBytes(view) == HashBytes(data));
  }
}

TEST_CASE("HashBytes tells apart inputs that differ only in length or zero padding") {
  // The last word is zero-padded, so the length must count.
  std::vector<std::string> inputs;
  for (size_t n = 0; n <= 40; ++n) inputs.push_back(std::string(n, '\0'));
  for (size_t n = 1; n <= 40; ++n) inputs.push_back(std::string(n, 'a'));
  inputs.push_back("a\0"s);
  inputs.push_back("ab");
  inputs.push_back("ba");
  std::unordered_set<std::string> seen;
  for (const auto& in : inputs) {
    INFO("input of " << in.size() << " bytes");
    CHECK(seen.insert(ToHex(HashBytes(in))).second);
  }
}

TEST_CASE("HashBytes: one flipped bit anywhere changes the hash") {
  const std::string base = RandomBytes(67, 8);  // not a multiple of 8
  const Hash128 h = HashBytes(base);
  for (size_t pos = 0; pos < base.size(); ++pos) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string s = base;
      s[pos] = static_cast<char>(s[pos] ^ (1 << bit));
      Hash128 g = HashBytes(s);
      INFO("byte " << pos << " bit " << bit);
      // Both 64-bit halves must change, not just one.
      REQUIRE(g.hi != h.hi);
      REQUIRE(g.lo != h.lo);
    }
  }
}

TEST_CASE("HashBytes: no collisions over 200k distinct short keys") {
  std::unordered_set<std::string> keys;
  for (int i = 0; i < 150000; ++i) keys.insert("i" + std::to_string(i));  // posix identities
  for (int i = 0; i < 40000; ++i) keys.insert("d2049:i" + std::to_string(i));
  for (int a = 0; a < 256; ++a) {
    keys.insert(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; b += 5) keys.insert({static_cast<char>(a), static_cast<char>(b)});
  }
  REQUIRE(keys.size() >= 200000);
  // Not even one 64-bit half collides (so neither does the whole): each is a well-mixed value.
  std::unordered_set<uint64_t> his;
  std::unordered_set<uint64_t> los;
  his.reserve(keys.size());
  los.reserve(keys.size());
  for (const auto& key : keys) {
    Hash128 h = HashBytes(key);
    his.insert(h.hi);
    los.insert(h.lo);
  }
  CHECK(his.size() == keys.size());
  CHECK(los.size() == keys.size());
}

TEST_CASE("HashBytes spreads sequential keys evenly over the 256 fan-out directories") {
  // The first two hex digits pick the xx/ fan-out directory.
  std::vector<int> buckets(256, 0);
  const int kKeys = 256 * 256;
  for (int i = 0; i < kKeys; ++i) {
    std::string hex = ToHex(HashBytes("i" + std::to_string(i)));
    buckets[std::stoi(hex.substr(0, 2), nullptr, 16)]++;
  }
  // 256 expected per bucket, standard deviation about 16; these bounds are 8 deviations out.
  for (int b = 0; b < 256; ++b) {
    INFO("bucket " << b);
    CHECK(buckets[b] > 128);
    CHECK(buckets[b] < 384);
  }
}

TEST_CASE("CRC-32C standard check values") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(Crc32c(std::string(32, '\xFF')) == 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) up.push_back(static_cast<char>(i));
  for (int i = 31; i >= 0; --i) down.push_back(static_cast<char>(i));
  CHECK(Crc32c(up) == 0x46DD794Eu);
  CHECK(Crc32c(down) == 0x113FDB5Cu);
}

TEST_CASE("CRC-32C can be computed in pieces") {
  const std::string data = RandomBytes(1000, 21);
  const uint32_t whole = Crc32c(data);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, size_t{500}, size_t{999}, size_t{1000}}) {
    std::string_view v(data);
    INFO("cut at " << cut);
    CHECK(Crc32c(v.substr(cut), Crc32c(v.substr(0, cut))) == whole);
  }
}

TEST_CASE("CRC-32C detects every single-bit error in a short message") {
  const std::string base = RandomBytes(40, 22);
  const uint32_t crc = Crc32c(base);
  for (size_t pos = 0; pos < base.size(); ++pos) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string s = base;
      s[pos] = static_cast<char>(s[pos] ^ (1 << bit));
      INFO("byte " << pos << " bit " << bit);
      REQUIRE(Crc32c(s) != crc);
    }
  }
}
