// Tests for cache/aux_xattr: the aux xattr, the map xattr and the side-car map file.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cache/aux_xattr.h"
#include "cache/content_map.h"
#include "common/crc32c.h"
#include "test_util.h"

using cachefuse::Crc32c;
using cachefuse::cache::AuxData;
using cachefuse::cache::ContentMap;
using cachefuse::cache::DecodeAux;
using cachefuse::cache::DecodeMapXattr;
using cachefuse::cache::DecodeSidecar;
using cachefuse::cache::EncodeAux;
using cachefuse::cache::EncodeMapXattr;
using cachefuse::cache::EncodeSidecar;
using cachefuse::cache::MapRecord;
using cachefuse::test::RandomBytes;

namespace {

std::string Bytes(std::initializer_list<int> l) {
  std::string s;
  for (int b : l) s.push_back(static_cast<char>(b));
  return s;
}

// Replaces the trailing CRC-32C so that a deliberately changed field is seen
// by the field check, not by the checksum.
std::string Reseal(std::string s) {
  s.resize(s.size() - 4);
  uint32_t crc = Crc32c(s);
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  return s;
}

void CheckSame(const MapRecord& a, const MapRecord& b) {
  CHECK(a.in_sidecar == b.in_sidecar);
  CHECK(a.granule_shift == b.granule_shift);
  CHECK(a.generation == b.generation);
  CHECK(a.body_len == b.body_len);
  CHECK(a.body_crc == b.body_crc);
  CHECK(a.body == b.body);
}

AuxData SampleAux() {
  AuxData aux;
  aux.flags = AuxData::kDirty;
  aux.object_size = 123456789012345ULL;
  aux.key = "i1234567";
  aux.coherency = RandomBytes(32, 1);
  return aux;
}

MapRecord SampleInline() {
  ContentMap m;
  m.Add(0, 10);
  m.Add(20, 25);
  m.Add(1ULL << 40, (1ULL << 40) + 1);
  MapRecord rec;
  rec.granule_shift = 18;
  rec.generation = 42;
  rec.body = m.Encode();
  rec.body_len = static_cast<uint32_t>(rec.body.size());
  rec.body_crc = Crc32c(rec.body);
  return rec;
}

MapRecord SidecarRecordFor(uint64_t generation, const std::string& body) {
  MapRecord rec;
  rec.in_sidecar = true;
  rec.granule_shift = 16;
  rec.generation = generation;
  rec.body_len = static_cast<uint32_t>(body.size());
  rec.body_crc = Crc32c(body);
  return rec;
}

}  // namespace

// ---------------------------------------------------------------------------
// Byte layout, pinned. Any change here is a change of the on-disk format and
// needs a new kFormatVersion.

TEST_CASE("aux xattr: the exact bytes of one small AuxData") {
  AuxData aux;
  aux.flags = AuxData::kDirty;
  aux.object_size = 0x0102030405060708ULL;
  aux.key = "k1";
  aux.coherency = "xyz";
  const std::string expected = Bytes({
      0x43, 0x46, 0x41, 0x58,                          // magic "CFAX" (0x58414643 LE)
      0x01,                                            // version
      0x01,                                            // flags: DIRTY
      0x02, 0x00,                                      // key length (u16)
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // object size (u64)
      0x03, 0x00,                                      // coherency length (u16)
      0x6B, 0x31,                                      // key
      0x78, 0x79, 0x7A,                                // coherency
      0x78, 0xF4, 0x74, 0xF9,                          // CRC-32C of all the above
  });
  CHECK(EncodeAux(aux) == expected);
  auto back = DecodeAux(expected);
  REQUIRE(back);
  CHECK(*back == aux);
  CHECK(back->dirty());
}

TEST_CASE("map xattr: the exact bytes of one inline MapRecord") {
  ContentMap m;
  m.Add(0, 4);
  MapRecord rec;
  rec.granule_shift = 18;
  rec.generation = 0x1122334455667788ULL;
  rec.body = m.Encode();
  REQUIRE(rec.body == Bytes({0x01, 0x00, 0x04}));
  const std::string expected = Bytes({
      0x43, 0x46, 0x4D, 0x50,                          // magic "CFMP" (0x504D4643 LE)
      0x01,                                            // version
      0x00,                                            // where: 0 = inline
      0x12,                                            // granule shift (18: 256 KiB)
      0x00,                                            // reserved
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  // generation (u64)
      0x03, 0x00, 0x00, 0x00,                          // body length (u32)
      0x1B, 0xA6, 0xBF, 0x02,                          // body CRC-32C (u32)
      0x01, 0x00, 0x04,                                // body: the ContentMap encoding
      0x84, 0x53, 0xA3, 0x43,                          // CRC-32C of all the above
  });
  CHECK(EncodeMapXattr(rec) == expected);
  auto back = DecodeMapXattr(expected);
  REQUIRE(back);
  CHECK_FALSE(back->in_sidecar);
  CHECK(back->granule_shift == 18);
  CHECK(back->generation == 0x1122334455667788ULL);
  CHECK(back->body_len == 3);
  CHECK(back->body_crc == 0x02BFA61Bu);
  CHECK(back->body == rec.body);
}

TEST_CASE("map xattr: the exact bytes of a side-car MapRecord") {
  MapRecord rec;
  rec.in_sidecar = true;
  rec.granule_shift = 12;
  rec.generation = 9;
  rec.body_len = 5000;
  rec.body_crc = 0xDEADBEEF;
  rec.body = "ignored: the body lives in the side-car";
  const std::string expected = Bytes({
      0x43, 0x46, 0x4D, 0x50,                          // magic "CFMP"
      0x01,                                            // version
      0x01,                                            // where: 1 = side-car
      0x0C,                                            // granule shift
      0x00,                                            // reserved
      0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // generation
      0x88, 0x13, 0x00, 0x00,                          // side-car body length (5000)
      0xEF, 0xBE, 0xAD, 0xDE,                          // side-car body CRC
      0xFF, 0x8A, 0xDE, 0x88,                          // CRC-32C of all the above
  });
  CHECK(EncodeMapXattr(rec) == expected);
}

TEST_CASE("side-car: the exact bytes of a small side-car file") {
  const std::string body = Bytes({0x02, 0x00, 0x01, 0x05, 0x02});
  const std::string expected = Bytes({
      0x43, 0x46, 0x4D, 0x53,                          // magic "CFMS" (0x534D4643 LE)
      0x01,                                            // version
      0x00,                                            // pad (u8)
      0x00, 0x00,                                      // pad (u16)
      0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // generation
      0x05, 0x00, 0x00, 0x00,                          // body length
      0x4F, 0xB2, 0x02, 0x2C,                          // body CRC-32C
      0x02, 0x00, 0x01, 0x05, 0x02,                    // body
  });
  CHECK(EncodeSidecar(7, body) == expected);
  auto back = DecodeSidecar(expected, SidecarRecordFor(7, body));
  REQUIRE(back);
  CHECK(*back == body);
}

// ---------------------------------------------------------------------------
// AuxData

TEST_CASE("aux xattr round trips") {
  SECTION("defaults: all empty") {
    AuxData aux;
    auto back = DecodeAux(EncodeAux(aux));
    REQUIRE(back);
    CHECK(*back == aux);
    CHECK_FALSE(back->dirty());
  }
  SECTION("binary key and token with NULs, the largest size") {
    AuxData aux;
    aux.object_size = UINT64_MAX;
    aux.key = std::string("a\0b\0", 4);
    aux.coherency = std::string(8, '\0') + RandomBytes(24, 7);
    auto back = DecodeAux(EncodeAux(aux));
    REQUIRE(back);
    CHECK(*back == aux);
  }
  SECTION("fields of the largest length a u16 holds") {
    AuxData aux;
    aux.key = RandomBytes(65535, 3);
    aux.coherency = RandomBytes(65535, 4);
    auto back = DecodeAux(EncodeAux(aux));
    REQUIRE(back);
    CHECK(*back == aux);
  }
  SECTION("many random values") {
    std::mt19937 rng(2024);
    for (int i = 0; i < 500; ++i) {
      AuxData aux;
      aux.flags = static_cast<uint8_t>(rng() % 2);
      aux.object_size = (static_cast<uint64_t>(rng()) << 32) | rng();
      aux.key = RandomBytes(rng() % 100, rng());
      aux.coherency = RandomBytes(rng() % 100, rng());
      auto back = DecodeAux(EncodeAux(aux));
      INFO("value " << i);
      REQUIRE(back);
      REQUIRE(*back == aux);
    }
  }
}

TEST_CASE("aux xattr: every single-byte corruption is rejected") {
  const std::string enc = EncodeAux(SampleAux());
  REQUIRE(DecodeAux(enc));
  for (size_t pos = 0; pos < enc.size(); ++pos) {
    for (int x = 1; x < 256; ++x) {
      std::string bad = enc;
      bad[pos] = static_cast<char>(bad[pos] ^ x);
      INFO("byte " << pos << " xor " << x);
      REQUIRE_FALSE(DecodeAux(bad));
    }
  }
}

TEST_CASE("aux xattr: every truncation and any extension is rejected") {
  const std::string enc = EncodeAux(SampleAux());
  for (size_t n = 0; n < enc.size(); ++n) {
    INFO("truncated to " << n);
    REQUIRE_FALSE(DecodeAux(std::string_view(enc).substr(0, n)));
  }
  CHECK_FALSE(DecodeAux(enc + '\0'));
  CHECK_FALSE(DecodeAux(enc + enc));
  CHECK_FALSE(DecodeAux(""));
}

TEST_CASE("aux xattr: wrong magic, version or flags are rejected even with a good CRC") {
  const std::string enc = EncodeAux(SampleAux());
  REQUIRE(Reseal(enc) == enc);  // Reseal is a no-op on a good value

  std::string magic = enc;
  magic[3] = 'Y';
  CHECK_FALSE(DecodeAux(Reseal(magic)));

  // The map magic in the aux xattr: the two must not be confused.
  std::string map_magic = enc;
  map_magic.replace(0, 4, "CFMP");
  CHECK_FALSE(DecodeAux(Reseal(map_magic)));

  for (int v : {0, 2, 255}) {
    std::string version = enc;
    version[4] = static_cast<char>(v);
    INFO("version " << v);
    CHECK_FALSE(DecodeAux(Reseal(version)));
  }

  for (int f : {2, 3, 0x80, 0xFF}) {
    std::string flags = enc;
    flags[5] = static_cast<char>(f);
    INFO("flags " << f);
    CHECK_FALSE(DecodeAux(Reseal(flags)));
  }
  std::string clean = enc;
  clean[5] = 0;
  auto ok = DecodeAux(Reseal(clean));
  REQUIRE(ok);
  CHECK_FALSE(ok->dirty());
}

TEST_CASE("aux xattr: lengths that disagree with the data are rejected even with a good CRC") {
  const std::string enc = EncodeAux(SampleAux());
  for (int delta : {-1, 1, 100}) {
    std::string key_len = enc;
    key_len[6] = static_cast<char>(static_cast<unsigned char>(key_len[6]) + delta);
    std::string coh_len = enc;
    coh_len[16] = static_cast<char>(static_cast<unsigned char>(coh_len[16]) + delta);
    INFO("delta " << delta);
    CHECK_FALSE(DecodeAux(Reseal(key_len)));
    CHECK_FALSE(DecodeAux(Reseal(coh_len)));
  }
}

TEST_CASE("aux xattr: values that do not fit are never decoded as something else") {
  // Unknown flags and over-long fields cannot be represented; whatever the
  // encoder writes must then fail to decode rather than come back changed.
  AuxData flags;
  flags.flags = 2;
  CHECK_FALSE(DecodeAux(EncodeAux(flags)));

  AuxData long_key;
  long_key.key = RandomBytes(65536 + 5, 9);
  long_key.coherency = "t";
  CHECK_FALSE(DecodeAux(EncodeAux(long_key)));

  AuxData long_token;
  long_token.coherency = RandomBytes(70000, 10);
  CHECK_FALSE(DecodeAux(EncodeAux(long_token)));
}

// ---------------------------------------------------------------------------
// MapRecord

TEST_CASE("map xattr round trips") {
  SECTION("inline") {
    MapRecord rec = SampleInline();
    auto back = DecodeMapXattr(EncodeMapXattr(rec));
    REQUIRE(back);
    CheckSame(*back, rec);
    auto map = ContentMap::Decode(back->body);
    REQUIRE(map);
    CHECK(map->CountGranules() == 16);
  }
  SECTION("inline: body_len and body_crc are computed from the body") {
    MapRecord rec = SampleInline();
    rec.body_len = 1;
    rec.body_crc = 2;
    auto back = DecodeMapXattr(EncodeMapXattr(rec));
    REQUIRE(back);
    CHECK(back->body_len == rec.body.size());
    CHECK(back->body_crc == Crc32c(rec.body));
    CHECK(back->body == rec.body);
  }
  SECTION("inline, empty map") {
    MapRecord rec;
    rec.body = ContentMap{}.Encode();
    auto back = DecodeMapXattr(EncodeMapXattr(rec));
    REQUIRE(back);
    CHECK(back->body == rec.body);
    CHECK_FALSE(back->in_sidecar);
  }
  SECTION("side-car: the body is not stored") {
    MapRecord rec = SidecarRecordFor(UINT64_MAX, RandomBytes(9000, 5));
    rec.body = "not written";
    auto back = DecodeMapXattr(EncodeMapXattr(rec));
    REQUIRE(back);
    CHECK(back->in_sidecar);
    CHECK(back->granule_shift == 16);
    CHECK(back->generation == UINT64_MAX);
    CHECK(back->body_len == 9000);
    CHECK(back->body_crc == rec.body_crc);
    CHECK(back->body.empty());
  }
  SECTION("many random inline maps") {
    std::mt19937_64 rng(31337);
    for (int i = 0; i < 200; ++i) {
      ContentMap m;
      const int islands = static_cast<int>(rng() % 50);
      for (int k = 0; k < islands; ++k) {
        uint64_t s = (rng() >> (rng() % 64)) & ~(1ULL << 63);
        m.Add(s, s + 1 + rng() % 100);
      }
      MapRecord rec;
      rec.granule_shift = static_cast<uint8_t>(12 + rng() % 15);
      rec.generation = rng();
      rec.body = m.Encode();
      auto back = DecodeMapXattr(EncodeMapXattr(rec));
      INFO("value " << i);
      REQUIRE(back);
      REQUIRE(back->body == rec.body);
      REQUIRE(back->generation == rec.generation);
      REQUIRE(back->granule_shift == rec.granule_shift);
      auto map = ContentMap::Decode(back->body);
      REQUIRE(map);
      REQUIRE(*map == m);
    }
  }
}

TEST_CASE("map xattr: every single-byte corruption is rejected") {
  for (bool sidecar : {false, true}) {
    MapRecord rec = sidecar ? SidecarRecordFor(77, RandomBytes(5000, 2)) : SampleInline();
    const std::string enc = EncodeMapXattr(rec);
    REQUIRE(DecodeMapXattr(enc));
    for (size_t pos = 0; pos < enc.size(); ++pos) {
      for (int x = 1; x < 256; ++x) {
        std::string bad = enc;
        bad[pos] = static_cast<char>(bad[pos] ^ x);
        INFO((sidecar ? "side-car" : "inline") << " record, byte " << pos << " xor " << x);
        REQUIRE_FALSE(DecodeMapXattr(bad));
      }
    }
  }
}

TEST_CASE("map xattr: every truncation and any extension is rejected") {
  for (bool sidecar : {false, true}) {
    MapRecord rec = sidecar ? SidecarRecordFor(77, RandomBytes(5000, 2)) : SampleInline();
    const std::string enc = EncodeMapXattr(rec);
    for (size_t n = 0; n < enc.size(); ++n) {
      INFO((sidecar ? "side-car" : "inline") << " record truncated to " << n);
      REQUIRE_FALSE(DecodeMapXattr(std::string_view(enc).substr(0, n)));
    }
    CHECK_FALSE(DecodeMapXattr(enc + 'x'));
  }
}

TEST_CASE("map xattr: bad fields are rejected even with a good outer CRC") {
  const std::string enc = EncodeMapXattr(SampleInline());
  REQUIRE(Reseal(enc) == enc);

  std::string magic = enc;
  magic.replace(0, 4, "CFAX");  // the aux magic
  CHECK_FALSE(DecodeMapXattr(Reseal(magic)));

  for (int v : {0, 2}) {
    std::string version = enc;
    version[4] = static_cast<char>(v);
    CHECK_FALSE(DecodeMapXattr(Reseal(version)));
  }

  std::string where = enc;
  where[5] = 2;
  CHECK_FALSE(DecodeMapXattr(Reseal(where)));

  std::string reserved = enc;
  reserved[7] = 1;
  CHECK_FALSE(DecodeMapXattr(Reseal(reserved)));

  // The inline body no longer matches its own CRC.
  std::string body = enc;
  body[24] = static_cast<char>(body[24] ^ 0x01);
  CHECK_FALSE(DecodeMapXattr(Reseal(body)));

  // The body length says more than there is.
  std::string len = enc;
  len[16] = static_cast<char>(len[16] + 1);
  CHECK_FALSE(DecodeMapXattr(Reseal(len)));

  // Inline flipped to side-car: the body bytes become trailing garbage.
  std::string to_sidecar = enc;
  to_sidecar[5] = 1;
  CHECK_FALSE(DecodeMapXattr(Reseal(to_sidecar)));
}

// ---------------------------------------------------------------------------
// Side-car

TEST_CASE("side-car round trips") {
  for (size_t n : {size_t{0}, size_t{1}, size_t{3501}, size_t{200000}}) {
    const std::string body = RandomBytes(n, static_cast<unsigned>(n));
    const MapRecord rec = SidecarRecordFor(1234, body);
    const std::string file = EncodeSidecar(1234, body);
    CHECK(file.size() == 24 + n);
    auto back = DecodeSidecar(file, rec);
    INFO("body of " << n << " bytes");
    REQUIRE(back);
    CHECK(*back == body);
  }
}

TEST_CASE("side-car with the record from a decoded map xattr") {
  ContentMap m;
  for (uint64_t g = 0; g < 4000; g += 2) m.Add(g, g + 1);  // too many islands for an xattr
  const std::string body = m.Encode();
  REQUIRE(body.size() > cachefuse::cache::kInlineMapLimit);
  MapRecord rec = SidecarRecordFor(5, body);
  auto stored = DecodeMapXattr(EncodeMapXattr(rec));
  REQUIRE(stored);
  auto back = DecodeSidecar(EncodeSidecar(5, body), *stored);
  REQUIRE(back);
  auto map = ContentMap::Decode(*back);
  REQUIRE(map);
  CHECK(*map == m);
}

TEST_CASE("side-car that does not match its record is rejected") {
  const std::string body = RandomBytes(100, 11);
  const MapRecord rec = SidecarRecordFor(8, body);
  const std::string file = EncodeSidecar(8, body);
  REQUIRE(DecodeSidecar(file, rec));

  SECTION("another generation (an older side-car left behind)") {
    CHECK_FALSE(DecodeSidecar(EncodeSidecar(7, body), rec));
    CHECK_FALSE(DecodeSidecar(EncodeSidecar(9, body), rec));
  }
  SECTION("record length differs") {
    MapRecord r = rec;
    r.body_len = 99;
    CHECK_FALSE(DecodeSidecar(file, r));
    r.body_len = 101;
    CHECK_FALSE(DecodeSidecar(file, r));
  }
  SECTION("record CRC differs") {
    MapRecord r = rec;
    r.body_crc ^= 1;
    CHECK_FALSE(DecodeSidecar(file, r));
  }
  SECTION("same generation, different body") {
    std::string other = body;
    other[50] = static_cast<char>(other[50] ^ 0x40);
    CHECK_FALSE(DecodeSidecar(EncodeSidecar(8, other), rec));
  }
}

TEST_CASE("side-car: every single-byte corruption is rejected") {
  const std::string body = RandomBytes(64, 12);
  const MapRecord rec = SidecarRecordFor(0x0102030405060708ULL, body);
  const std::string file = EncodeSidecar(rec.generation, body);
  REQUIRE(DecodeSidecar(file, rec));
  for (size_t pos = 0; pos < file.size(); ++pos) {
    for (int x = 1; x < 256; ++x) {
      std::string bad = file;
      bad[pos] = static_cast<char>(bad[pos] ^ x);
      INFO("byte " << pos << " xor " << x);
      REQUIRE_FALSE(DecodeSidecar(bad, rec));
    }
  }
}

TEST_CASE("side-car: every truncation and any extension is rejected") {
  const std::string body = RandomBytes(64, 13);
  const MapRecord rec = SidecarRecordFor(3, body);
  const std::string file = EncodeSidecar(3, body);
  for (size_t n = 0; n < file.size(); ++n) {
    INFO("truncated to " << n);
    REQUIRE_FALSE(DecodeSidecar(std::string_view(file).substr(0, n), rec));
  }
  CHECK_FALSE(DecodeSidecar(file + '\0', rec));
  CHECK_FALSE(DecodeSidecar(file + file, rec));
}

TEST_CASE("side-car: a map xattr or aux xattr is not a side-car") {
  const std::string body = RandomBytes(16, 14);
  MapRecord rec = SidecarRecordFor(1, body);
  CHECK_FALSE(DecodeSidecar(EncodeMapXattr(rec), rec));
  CHECK_FALSE(DecodeSidecar(EncodeAux(SampleAux()), rec));
  CHECK_FALSE(DecodeAux(EncodeSidecar(1, body)));
  CHECK_FALSE(DecodeMapXattr(EncodeSidecar(1, body)));
}
