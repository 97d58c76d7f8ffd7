// Looking up a mount in /proc/self/mountinfo.
#pragma once

#include <optional>
#include <string>

namespace cachefuse {

struct MountEntry {
  std::string mountpoint;
  std::string fstype;  // "fuse.cachefuse" for ours
  std::string source;
};

// mountinfo writes space, tab, newline and backslash as \ooo (octal).
std::string UnescapeMountinfo(const std::string& s);

// Parses one mountinfo line ("id parent major:minor root mountpoint options
// ... - fstype source superopts"); nullopt if it is not one.
std::optional<MountEntry> ParseMountinfoLine(const std::string& line);

// The topmost mount on `mountpoint` (an absolute, resolved path), if any.
std::optional<MountEntry> FindMount(const std::string& mountpoint,
                                    const std::string& mountinfo_path = "/proc/self/mountinfo");

}  // namespace cachefuse
