// Extended attributes: user.* passed through; user.cachefuse.* are ours and read-only.
#include <sys/xattr.h>

#include <cinttypes>
#include <cstdio>

#include "daemon/filesystem.h"

namespace cachefuse::daemon {
namespace {

constexpr const char* kOurPrefix = "user.cachefuse.";
constexpr const char* kCachedName = "user.cachefuse.cached";
constexpr const char* kControlName = "user.cachefuse.control";

bool StartsWith(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

Result<std::string> Filesystem::GetXattr(fuse_ino_t ino, const std::string& name) {
  if (name == kCachedName) {
    InodeRef inode = inodes_.Get(ino);
    if (!inode || !inode->cookie) return Status::FromErrno(ENODATA, name);
    // "START-END,START-END" (END exclusive); "none" when nothing is cached.
    std::string out;
    for (const auto& r : inode->cookie->CachedRanges()) {
      char range[48];
      std::snprintf(range, sizeof range, "%s%" PRIu64 "-%" PRIu64, out.empty() ? "" : ",", r.start, r.end);
      out += range;
    }
    return out.empty() ? std::string("none") : out;
  }
  if (name == kControlName && ino == FUSE_ROOT_ID && !control_socket_.empty()) return control_socket_;
  if (StartsWith(name, kOurPrefix)) return Status::FromErrno(ENODATA, name);
  if (!StartsWith(name, "user.")) return Status::FromErrno(ENOTSUP, name);
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  return backend_->getxattr(*path, name);
}

Result<std::string> Filesystem::ListXattr(fuse_ino_t ino) {
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  auto names = backend_->listxattr(*path);
  if (!names.ok()) return names.status();
  std::string out;
  for (const auto& n : *names) {
    if (StartsWith(n, "user.") && !StartsWith(n, kOurPrefix)) {
      out += n;
      out.push_back('\0');
    }
  }
  return out;
}

Status Filesystem::SetXattr(fuse_ino_t ino, const std::string& name, const std::string& value, int flags) {
  if (StartsWith(name, kOurPrefix)) return Status::FromErrno(EPERM, name + " is cachefuse's own");
  if (!StartsWith(name, "user.")) return Status::FromErrno(ENOTSUP, name);
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  Status st = backend_->setxattr(*path, name, value, flags);
  if (!st.ok()) return st;
  if (InodeRef inode = inodes_.Get(ino); inode && inode->cookie) {
    if (auto attr = backend_->stat(*path); attr.ok()) inode->cookie->NoteAttrChange(attr->coherency.bytes);
  }
  return Status::Ok();
}

Status Filesystem::RemoveXattr(fuse_ino_t ino, const std::string& name) {
  if (StartsWith(name, kOurPrefix)) return Status::FromErrno(EPERM, name + " is cachefuse's own");
  if (!StartsWith(name, "user.")) return Status::FromErrno(ENOTSUP, name);
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  Status st = backend_->removexattr(*path, name);
  if (!st.ok()) return st;
  if (InodeRef inode = inodes_.Get(ino); inode && inode->cookie) {
    if (auto attr = backend_->stat(*path); attr.ok()) inode->cookie->NoteAttrChange(attr->coherency.bytes);
  }
  return Status::Ok();
}

}  // namespace cachefuse::daemon
