// Looking up a mount in /proc/self/mountinfo.
#include "common/mountinfo.h"

#include <fstream>
#include <sstream>

namespace cachefuse {

std::string UnescapeMountinfo(const std::string& s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<MountEntry> ParseMountinfoLine(const std::string& line) {
  std::istringstream in(line);
  std::string id, parent, dev, root, mountpoint;
  if (!(in >> id >> parent >> dev >> root >> mountpoint)) return std::nullopt;
  size_t dash = line.find(" - ");
  if (dash == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(dash + 3));
  MountEntry e;
  if (!(rest >> e.fstype >> e.source)) return std::nullopt;
  e.mountpoint = UnescapeMountinfo(mountpoint);
  e.source = UnescapeMountinfo(e.source);
  return e;
}

std::optional<MountEntry> FindMount(const std::string& mountpoint, const std::string& mountinfo_path) {
  std::ifstream mi(mountinfo_path);
  std::optional<MountEntry> found;
  std::string line;
  // Later lines are mounted later: the last match is the one on top.
  while (std::getline(mi, line)) {
    auto e = ParseMountinfoLine(line);
    if (e && e->mountpoint == mountpoint) found = std::move(e);
  }
  return found;
}

}  // namespace cachefuse
