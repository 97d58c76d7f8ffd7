// Layout: every name under CACHE_DIR, built in one place (docs/cache-format.md, "Tree").
//
//   CACHE_DIR/LOCK, FORMAT, graveyard/, index/{lru.snap,lru.log,CLEAN}
//   CACHE_DIR/volumes/<vhash>/VOLUME
//   CACHE_DIR/volumes/<vhash>/<xx>/<ohash>      xx = FanoutName(ohash)
//   CACHE_DIR/volumes/<vhash>/<xx>/<ohash>.map  SidecarName(ohash)
//
// vhash and ohash are 32 lowercase hex digits (common/hash.h). An object's id,
// the key of the culler's index, is "<vhash>/<ohash>". Paths below are relative
// to the directory fd named in each comment; nothing here touches the disk.
// Changing any of these strings changes the on-disk format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachefuse::cache::layout {

// --- In CACHE_DIR
inline constexpr const char* kLock = "LOCK";
inline constexpr const char* kFormat = "FORMAT";
inline constexpr const char* kVolumesDir = "volumes";
inline constexpr const char* kGraveyardDir = "graveyard";
inline constexpr const char* kIndexDir = "index";

// --- In volumes/<vhash>/
inline constexpr const char* kVolumeFile = "VOLUME";

// --- In index/
inline constexpr const char* kLruSnapshot = "lru.snap";
inline constexpr const char* kLruSnapshotTmp = "lru.snap.tmp";
inline constexpr const char* kLruLog = "lru.log";
inline constexpr const char* kClean = "CLEAN";

inline constexpr size_t kHashLen = 32;   // hex digits of a vhash or an ohash
inline constexpr size_t kFanoutLen = 2;  // hex digits of a fan-out dir name
inline constexpr int kFanoutDirs = 256;  // "00" .. "ff"
inline constexpr size_t kIdLen = 2 * kHashLen + 1;

// The temporary a small file is written to before it is renamed over `name`
// (FORMAT.tmp, VOLUME.tmp).
std::string TmpName(std::string_view name);

// --- Names from keys
// vhash: the directory name under volumes/ of a volume key ("posix:/srv/data").
std::string VolumeName(std::string_view volume_key);
// ohash: the data file name of a cookie key (the backend's file identity).
std::string ObjectName(std::string_view cookie_key);
// 32 lowercase hex digits: a vhash or an ohash.
bool IsHashName(std::string_view name);

// --- Relative to CACHE_DIR
// "volumes/<vhash>"
std::string VolumeDir(std::string_view vhash);
// "index/<name>"
std::string IndexPath(std::string_view name);
// "graveyard/<name>"
std::string GraveyardPath(std::string_view name);

// --- Relative to volumes/
// "<vhash>/VOLUME"
std::string VolumeFilePath(std::string_view vhash);
// "<vhash>/<xx>": a fan-out dir.
std::string FanoutPath(std::string_view vhash, std::string_view xx);
// "<vhash>/<xx>/<name>": any entry of a fan-out dir (data file, side-car, temporary).
std::string FanoutEntryPath(std::string_view vhash, std::string_view xx, std::string_view name);

// --- Relative to volumes/<vhash>/
// "<xx>": the fan-out dir of an object name (its first two hex digits).
std::string FanoutName(std::string_view ohash);
// The fan-out dir with index i in [0, kFanoutDirs): "%02x".
std::string FanoutName(int i);
// Index of the fan-out dir of an object name, or -1 if it does not start with two hex digits.
int FanoutIndex(std::string_view ohash);
// Two lowercase hex digits: a fan-out dir name.
bool IsFanoutName(std::string_view name);

// --- Relative to volumes/<vhash>/<xx>/ (or appended to any path of a data file)
// "<ohash>.map": the side-car content map of a data file.
std::string SidecarName(std::string_view object);
// "<ohash>.map.tmp": the side-car while it is written.
std::string SidecarTmpName(std::string_view ohash);
// "<ohash>.new<n>": a new data file being linked in over the old one.
std::string NewObjectName(std::string_view ohash, uint64_t n);
// The ohash of a side-car name "<ohash>.map"; nullopt for any other name.
std::optional<std::string> SidecarOwner(std::string_view name);

// --- Object ids: "<vhash>/<ohash>"
std::string ObjectId(std::string_view vhash, std::string_view ohash);
struct IdParts {
  std::string vhash;
  std::string ohash;
};
// The parts of a well-formed id (two hash names and a '/'); nullopt otherwise.
std::optional<IdParts> SplitObjectId(std::string_view id);
// Relative to volumes/: "<vhash>/<xx>/<ohash>".
std::string ObjectPath(std::string_view vhash, std::string_view ohash);
// Relative to volumes/: the data file of a well-formed id; "" for any other id.
std::string ObjectPathOfId(std::string_view id);

// --- In graveyard/
// "<name>.<pid>.<seq>": where Cache::Bury puts an object named `name`.
std::string GraveName(std::string_view name, long pid, uint64_t seq);

}  // namespace cachefuse::cache::layout
