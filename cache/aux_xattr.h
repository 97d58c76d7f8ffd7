// The on-disk encodings of a cache object's metadata: the aux xattr, the map
// xattr and the side-car map file (docs/cache-format.md describes every byte).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/content_map.h"

namespace cachefuse::cache {

inline constexpr const char* kAuxXattr = "user.cachefuse.aux";
inline constexpr const char* kMapXattr = "user.cachefuse.map";
inline constexpr uint8_t kFormatVersion = 1;

// Maps whose encoding exceeds this go to the side-car file. ext4 keeps all of an
// inode's xattrs in one 4 KiB block, shared with the aux xattr.
inline constexpr size_t kInlineMapLimit = 3500;

struct AuxData {
  enum Flags : uint8_t { kDirty = 1 };
  uint8_t flags = 0;
  uint64_t object_size = 0;
  std::string key;        // the cookie key, checked on open (hash collisions)
  std::string coherency;  // the backend's token when the data was cached
  bool dirty() const { return flags & kDirty; }
  bool operator==(const AuxData&) const = default;
};

std::string EncodeAux(const AuxData& aux);
// nullopt on bad magic, version, length or checksum.
std::optional<AuxData> DecodeAux(std::string_view data);

// What the map xattr says: the map itself, or where the side-car is and what it must hold.
struct MapRecord {
  bool in_sidecar = false;
  uint8_t granule_shift = 0;
  uint64_t generation = 0;  // ties a side-car to this record
  uint32_t body_len = 0;
  uint32_t body_crc = 0;
  std::string body;  // the encoded ContentMap when inline
};

std::string EncodeMapXattr(const MapRecord& rec);
std::optional<MapRecord> DecodeMapXattr(std::string_view data);

// Side-car file contents for a map too big for the xattr.
std::string EncodeSidecar(uint64_t generation, std::string_view body);
// The body, if the side-car is whole and matches the record; nullopt if torn.
std::optional<std::string> DecodeSidecar(std::string_view data, const MapRecord& rec);

}  // namespace cachefuse::cache
