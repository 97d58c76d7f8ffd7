// Tests for cache/layout: the names under CACHE_DIR, pinned to docs/cache-format.md
// (existing caches must keep loading), fan-out, side-car and object-id parsing.
#include "cache/layout.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "common/hash.h"

namespace cachefuse::cache {
namespace {

const std::string kV = "0123456789abcdef0123456789abcdef";  // a vhash
const std::string kO = "fedcba9876543210fedcba9876543210";  // an ohash

}  // namespace

TEST_CASE("layout: the names of the tree are those of docs/cache-format.md", "[layout]") {
  CHECK(std::string(layout::kLock) == "LOCK");
  CHECK(std::string(layout::kFormat) == "FORMAT");
  CHECK(std::string(layout::kVolumesDir) == "volumes");
  CHECK(std::string(layout::kGraveyardDir) == "graveyard");
  CHECK(std::string(layout::kIndexDir) == "index");
  CHECK(std::string(layout::kVolumeFile) == "VOLUME");
  CHECK(std::string(layout::kLruSnapshot) == "lru.snap");
  CHECK(std::string(layout::kLruSnapshotTmp) == "lru.snap.tmp");
  CHECK(std::string(layout::kLruLog) == "lru.log");
  CHECK(std::string(layout::kClean) == "CLEAN");
  CHECK(layout::TmpName("FORMAT") == "FORMAT.tmp");
  CHECK(layout::VolumeDir(kV) == "volumes/" + kV);
  CHECK(layout::IndexPath(layout::kLruLog) == "index/lru.log");
  CHECK(layout::GraveyardPath("x.1.2") == "graveyard/x.1.2");
  CHECK(layout::GraveName(kO, 4242, 7) == kO + ".4242.7");
}

TEST_CASE("layout: volume and object names are the 128-bit hashes of their keys", "[layout]") {
  CHECK(layout::VolumeName("posix:/srv/data") == ToHex(HashBytes("posix:/srv/data")));
  CHECK(layout::ObjectName("i1234") == ToHex(HashBytes("i1234")));
  CHECK(layout::IsHashName(layout::ObjectName("d5:i7")));
  CHECK(layout::IsHashName(kV));
  CHECK_FALSE(layout::IsHashName(kV.substr(1)));
  CHECK_FALSE(layout::IsHashName(kV + "0"));
  CHECK_FALSE(layout::IsHashName("0123456789ABCDEF0123456789abcdef"));  // upper case is not ours
  CHECK_FALSE(layout::IsHashName("0123456789abcdeg0123456789abcdef"));
  CHECK_FALSE(layout::IsHashName(""));
}

TEST_CASE("layout: the fan-out dir is the first two hex digits of the object name", "[layout]") {
  CHECK(layout::FanoutName(kO) == "fe");
  CHECK(layout::FanoutIndex(kO) == 0xfe);
  CHECK(layout::ObjectPath(kV, kO) == kV + "/fe/" + kO);
  CHECK(layout::FanoutPath(kV, "0a") == kV + "/0a");
  CHECK(layout::FanoutEntryPath(kV, "fe", kO + ".map") == kV + "/fe/" + kO + ".map");
  CHECK(layout::VolumeFilePath(kV) == kV + "/VOLUME");
  std::set<std::string> names;
  for (int i = 0; i < layout::kFanoutDirs; ++i) {
    const std::string n = layout::FanoutName(i);
    CHECK(layout::IsFanoutName(n));
    CHECK(layout::FanoutIndex(n) == i);
    names.insert(n);
  }
  CHECK(names.size() == 256);
  CHECK(layout::FanoutName(0) == "00");
  CHECK(layout::FanoutName(10) == "0a");
  CHECK(layout::FanoutName(255) == "ff");
  CHECK(layout::FanoutIndex("a") == -1);
  CHECK(layout::FanoutIndex("") == -1);
  CHECK(layout::FanoutIndex("g0") == -1);
  CHECK(layout::FanoutIndex("AB") == -1);
  CHECK_FALSE(layout::IsFanoutName("abc"));
  CHECK_FALSE(layout::IsFanoutName("Ab"));
}

TEST_CASE("layout: side-car and temporary names; a side-car names its object", "[layout]") {
  CHECK(layout::SidecarName(kO) == kO + ".map");
  CHECK(layout::SidecarName(kV + "/fe/" + kO) == kV + "/fe/" + kO + ".map");  // a path works too
  CHECK(layout::SidecarTmpName(kO) == kO + ".map.tmp");
  CHECK(layout::NewObjectName(kO, 12) == kO + ".new12");
  CHECK(layout::SidecarOwner(kO + ".map") == kO);
  CHECK_FALSE(layout::SidecarOwner(kO));
  CHECK_FALSE(layout::SidecarOwner(kO + ".map.tmp"));
  CHECK_FALSE(layout::SidecarOwner(kO + ".new1"));
  CHECK_FALSE(layout::SidecarOwner(kO.substr(1) + "0.MAP"));
  CHECK_FALSE(layout::SidecarOwner("0123456789ABCDEF0123456789abcdef.map"));
  CHECK_FALSE(layout::SidecarOwner(".map"));
}

TEST_CASE("layout: object ids are <vhash>/<ohash> and map to their data file", "[layout]") {
  const std::string id = layout::ObjectId(kV, kO);
  CHECK(id == kV + "/" + kO);
  CHECK(id.size() == layout::kIdLen);
  auto parts = layout::SplitObjectId(id);
  REQUIRE(parts);
  CHECK(parts->vhash == kV);
  CHECK(parts->ohash == kO);
  CHECK(layout::ObjectPathOfId(id) == kV + "/fe/" + kO);
  for (const std::string& bad :
       {kV + kO, kV + "/" + kO.substr(1), kV + "-" + kO, kV + "/" + kO + "0", "0123456789ABCDEF0123456789abcdef/" + kO,
        kV + "/" + kO.substr(0, 31) + "x", std::string()}) {
    INFO(bad);
    CHECK_FALSE(layout::SplitObjectId(bad));
    CHECK(layout::ObjectPathOfId(bad).empty());
  }
}

}  // namespace cachefuse::cache
