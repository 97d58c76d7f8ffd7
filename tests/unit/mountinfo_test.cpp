// Tests for common/mountinfo: parsing /proc/self/mountinfo lines.
#include "common/mountinfo.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

namespace cachefuse {

TEST_CASE("mountinfo: octal escapes are undone, anything else is kept", "[mountinfo]") {
  CHECK(UnescapeMountinfo("/mnt/with\\040space") == "/mnt/with space");
  CHECK(UnescapeMountinfo("tab\\011nl\\012bs\\134") == "tab\tnl\nbs\\");
  CHECK(UnescapeMountinfo("not\\08octal\\9") == "not\\08octal\\9");
  CHECK(UnescapeMountinfo("end\\04") == "end\\04");
}

TEST_CASE("mountinfo: a line gives mountpoint, fstype and source", "[mountinfo]") {
  auto e = ParseMountinfoLine(
      "42 27 0:39 / /var/tmp/m\\040x rw,nosuid,nodev,relatime shared:1 - fuse.cachefuse /src\\040dir rw,user_id=0");
  REQUIRE(e);
  CHECK(e->mountpoint == "/var/tmp/m x");
  CHECK(e->fstype == "fuse.cachefuse");
  CHECK(e->source == "/src dir");
  CHECK_FALSE(ParseMountinfoLine("garbage"));
  CHECK_FALSE(ParseMountinfoLine("1 2 3:4 / /mnt rw no-separator fuse src"));
}

TEST_CASE("mountinfo: the mount on top wins", "[mountinfo]") {
  char path[] = "/tmp/mountinfo-test-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    std::ofstream f(path);
    f << "1 0 8:1 / / rw - ext4 /dev/vda rw\n"
      << "2 1 0:40 / /mnt rw - fuse.cachefuse /a rw\n"
      << "3 2 0:41 / /mnt rw - fuse.other /b rw\n";
  }
  auto top = FindMount("/mnt", path);
  REQUIRE(top);
  CHECK(top->fstype == "fuse.other");
  CHECK(top->source == "/b");
  CHECK_FALSE(FindMount("/elsewhere", path));
  CHECK(FindMount("/", path)->fstype == "ext4");
  std::remove(path);
}

}  // namespace cachefuse
