// Layout: the names under CACHE_DIR (see layout.h). Pure string functions, no I/O.
#include "cache/layout.h"

#include <algorithm>

#include "common/hash.h"

namespace cachefuse::cache::layout {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool IsLowerHex(std::string_view s, size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) { return HexDigit(c) >= 0; });
}

std::string Join(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(a.size() + 1 + b.size());
  out.append(a).append("/").append(b);
  return out;
}

constexpr std::string_view kSidecarSuffix = ".map";

}  // namespace

std::string TmpName(std::string_view name) {
  return std::string(name) + ".tmp";
}

std::string VolumeName(std::string_view volume_key) {
  return ToHex(HashBytes(volume_key));
}

std::string ObjectName(std::string_view cookie_key) {
  return ToHex(HashBytes(cookie_key));
}

bool IsHashName(std::string_view name) {
  return IsLowerHex(name, kHashLen);
}

std::string VolumeDir(std::string_view vhash) {
  return Join(kVolumesDir, vhash);
}

std::string IndexPath(std::string_view name) {
  return Join(kIndexDir, name);
}

std::string GraveyardPath(std::string_view name) {
  return Join(kGraveyardDir, name);
}

std::string VolumeFilePath(std::string_view vhash) {
  return Join(vhash, kVolumeFile);
}

std::string FanoutPath(std::string_view vhash, std::string_view xx) {
  return Join(vhash, xx);
}

std::string FanoutEntryPath(std::string_view vhash, std::string_view xx, std::string_view name) {
  return Join(FanoutPath(vhash, xx), name);
}

std::string FanoutName(std::string_view ohash) {
  return std::string(ohash.substr(0, kFanoutLen));
}

std::string FanoutName(int i) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto b = static_cast<unsigned>(i) & 0xFF;
  return std::string{kDigits[b >> 4], kDigits[b & 0xF]};
}

int FanoutIndex(std::string_view ohash) {
  if (ohash.size() < kFanoutLen) return -1;
  const int hi = HexDigit(ohash[0]);
  const int lo = HexDigit(ohash[1]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

bool IsFanoutName(std::string_view name) {
  return IsLowerHex(name, kFanoutLen);
}

std::string SidecarName(std::string_view object) {
  return std::string(object) + std::string(kSidecarSuffix);
}

std::string SidecarTmpName(std::string_view ohash) {
  return SidecarName(ohash) + ".tmp";
}

std::string NewObjectName(std::string_view ohash, uint64_t n) {
  return std::string(ohash) + ".new" + std::to_string(n);
}

std::optional<std::string> SidecarOwner(std::string_view name) {
  if (name.size() != kHashLen + kSidecarSuffix.size() || name.substr(kHashLen) != kSidecarSuffix) return std::nullopt;
  if (!IsHashName(name.substr(0, kHashLen))) return std::nullopt;
  return std::string(name.substr(0, kHashLen));
}

std::string ObjectId(std::string_view vhash, std::string_view ohash) {
  return Join(vhash, ohash);
}

std::optional<IdParts> SplitObjectId(std::string_view id) {
  if (id.size() != kIdLen || id[kHashLen] != '/') return std::nullopt;
  std::string_view v = id.substr(0, kHashLen);
  std::string_view o = id.substr(kHashLen + 1);
  if (!IsHashName(v) || !IsHashName(o)) return std::nullopt;
  return IdParts{std::string(v), std::string(o)};
}

std::string ObjectPath(std::string_view vhash, std::string_view ohash) {
  return FanoutEntryPath(vhash, FanoutName(ohash), ohash);
}

std::string ObjectPathOfId(std::string_view id) {
  auto parts = SplitObjectId(id);
  return parts ? ObjectPath(parts->vhash, parts->ohash) : std::string();
}

std::string GraveName(std::string_view name, long pid, uint64_t seq) {
  return std::string(name) + "." + std::to_string(pid) + "." + std::to_string(seq);
}

}  // namespace cachefuse::cache::layout
