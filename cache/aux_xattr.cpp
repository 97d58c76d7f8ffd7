// Packed little-endian encodings of the aux xattr, the map xattr and the side-car.
#include "cache/aux_xattr.h"

#include "common/crc32c.h"

namespace cachefuse::cache {
namespace {

constexpr uint32_t kAuxMagic = 0x58414643;      // "CFAX"
constexpr uint32_t kMapMagic = 0x504D4643;      // "CFMP"
constexpr uint32_t kSidecarMagic = 0x534D4643;  // "CFMS"

class Writer {
 public:
  void U8(uint8_t v) { s_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void Bytes(std::string_view b) { s_.append(b); }
  void Crc() { U32(Crc32c(s_)); }
  std::string Take() { return std::move(s_); }

 private:
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  std::string s_;
};

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool U8(uint8_t* v) { return Le(v, 1); }
  bool U16(uint16_t* v) { return Le(v, 2); }
  bool U32(uint32_t* v) { return Le(v, 4); }
  bool U64(uint64_t* v) { return Le(v, 8); }
  bool Bytes(size_t n, std::string* out) {
    if (d_.size() - pos_ < n) return false;
    out->assign(d_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  // Checks the trailing CRC over everything before it, and that nothing follows.
  bool CrcAndEnd() {
    uint32_t stored = 0;
    size_t covered = pos_;
    return U32(&stored) && pos_ == d_.size() && stored == Crc32c(d_.substr(0, covered));
  }

 private:
  template <typename T>
  bool Le(T* v, int n) {
    if (d_.size() - pos_ < static_cast<size_t>(n)) return false;
    uint64_t r = 0;
    for (int i = 0; i < n; ++i) r |= static_cast<uint64_t>(static_cast<unsigned char>(d_[pos_ + i])) << (8 * i);
    pos_ += n;
    *v = static_cast<T>(r);
    return true;
  }
  std::string_view d_;
  size_t pos_ = 0;
};

}  // namespace

std::string EncodeAux(const AuxData& aux) {
  Writer w;
  w.U32(kAuxMagic);
  w.U8(kFormatVersion);
  w.U8(aux.flags);
  w.U16(static_cast<uint16_t>(aux.key.size()));
  w.U64(aux.object_size);
  w.U16(static_cast<uint16_t>(aux.coherency.size()));
  w.Bytes(aux.key);
  w.Bytes(aux.coherency);
  w.Crc();
  return w.Take();
}

std::optional<AuxData> DecodeAux(std::string_view data) {
  Reader r(data);
  uint32_t magic = 0;
  uint8_t version = 0;
  uint16_t key_len = 0;
  uint16_t coh_len = 0;
  AuxData aux;
  if (!r.U32(&magic) || magic != kAuxMagic) return std::nullopt;
  if (!r.U8(&version) || version != kFormatVersion) return std::nullopt;
  if (!r.U8(&aux.flags) || (aux.flags & ~AuxData::kDirty)) return std::nullopt;
  if (!r.U16(&key_len) || !r.U64(&aux.object_size) || !r.U16(&coh_len)) return std::nullopt;
  if (!r.Bytes(key_len, &aux.key) || !r.Bytes(coh_len, &aux.coherency)) return std::nullopt;
  if (!r.CrcAndEnd()) return std::nullopt;
  return aux;
}

std::string EncodeMapXattr(const MapRecord& rec) {
  Writer w;
  w.U32(kMapMagic);
  w.U8(kFormatVersion);
  w.U8(rec.in_sidecar ? 1 : 0);
  w.U8(rec.granule_shift);
  w.U8(0);
  w.U64(rec.generation);
  w.U32(rec.in_sidecar ? rec.body_len : static_cast<uint32_t>(rec.body.size()));
  w.U32(rec.in_sidecar ? rec.body_crc : Crc32c(rec.body));
  if (!rec.in_sidecar) w.Bytes(rec.body);
  w.Crc();
  return w.Take();
}

std::optional<MapRecord> DecodeMapXattr(std::string_view data) {
  Reader r(data);
  uint32_t magic = 0;
  uint8_t version = 0;
  uint8_t where = 0;
  uint8_t reserved = 0;
  MapRecord rec;
  if (!r.U32(&magic) || magic != kMapMagic) return std::nullopt;
  if (!r.U8(&version) || version != kFormatVersion) return std::nullopt;
  if (!r.U8(&where) || where > 1) return std::nullopt;
  rec.in_sidecar = where == 1;
  if (!r.U8(&rec.granule_shift) || !r.U8(&reserved) || reserved != 0) return std::nullopt;
  if (!r.U64(&rec.generation) || !r.U32(&rec.body_len) || !r.U32(&rec.body_crc)) return std::nullopt;
  if (!rec.in_sidecar) {
    if (!r.Bytes(rec.body_len, &rec.body) || Crc32c(rec.body) != rec.body_crc) return std::nullopt;
  }
  if (!r.CrcAndEnd()) return std::nullopt;
  return rec;
}

std::string EncodeSidecar(uint64_t generation, std::string_view body) {
  Writer w;
  w.U32(kSidecarMagic);
  w.U8(kFormatVersion);
  w.U8(0);
  w.U16(0);
  w.U64(generation);
  w.U32(static_cast<uint32_t>(body.size()));
  w.U32(Crc32c(body));
  w.Bytes(body);
  return w.Take();
}

std::optional<std::string> DecodeSidecar(std::string_view data, const MapRecord& rec) {
  Reader r(data);
  uint32_t magic = 0;
  uint8_t version = 0;
  uint8_t pad8 = 0;
  uint16_t pad16 = 0;
  uint64_t generation = 0;
  uint32_t len = 0;
  uint32_t crc = 0;
  std::string body;
  if (!r.U32(&magic) || magic != kSidecarMagic) return std::nullopt;
  if (!r.U8(&version) || version != kFormatVersion || !r.U8(&pad8) || !r.U16(&pad16)) return std::nullopt;
  if (pad8 != 0 || pad16 != 0) return std::nullopt;  // no CRC covers the header: check every byte
  if (!r.U64(&generation) || generation != rec.generation) return std::nullopt;
  if (!r.U32(&len) || len != rec.body_len || !r.U32(&crc) || crc != rec.body_crc) return std::nullopt;
  if (!r.Bytes(len, &body) || Crc32c(body) != crc) return std::nullopt;
  if (data.size() != 24 + static_cast<size_t>(len)) return std::nullopt;
  return body;
}

}  // namespace cachefuse::cache
