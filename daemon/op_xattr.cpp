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
  auto target = TargetOf(ino);
  if (!target.ok()) return target.status();
  return backend_->getxattr(target->path, name, target->handle());
}

Result<std::string> Filesystem::ListXattr(fuse_ino_t ino) {
  auto target = TargetOf(ino);
  if (!target.ok()) return target.status();
  auto names = backend_->listxattr(target->path, target->handle());
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

// Our own metadata change moved the file's ctime: the cache follows the new token.
void Filesystem::NoteMetadataChange(fuse_ino_t ino, const Target& target) {
  InodeRef inode = inodes_.Get(ino);
  if (!inode || !inode->cookie) return;
  auto attr = target.file ? backend_->fstat(*target.file) : backend_->stat(target.path);
  if (attr.ok()) inode->cookie->NoteAttrChange(attr->coherency.bytes);
}

Status Filesystem::SetXattr(fuse_ino_t ino, const std::string& name, const std::string& value, int flags) {
  if (StartsWith(name, kOurPrefix)) return Status::FromErrno(EPERM, name + " is cachefuse's own");
  if (!StartsWith(name, "user.")) return Status::FromErrno(ENOTSUP, name);
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto target = TargetOf(ino);
  if (!target.ok()) return target.status();
  cache::ChangeScope scope;  // the change moves the file's ctime, so its token
  if (InodeRef inode = inodes_.Get(ino); inode && inode->cookie) scope = inode->cookie->BeginChange();
  Status st = backend_->setxattr(target->path, name, value, flags, target->handle());
  if (!st.ok()) return st;
  NoteMetadataChange(ino, *target);
  return Status::Ok();
}

Status Filesystem::RemoveXattr(fuse_ino_t ino, const std::string& name) {
  if (StartsWith(name, kOurPrefix)) return Status::FromErrno(EPERM, name + " is cachefuse's own");
  if (!StartsWith(name, "user.")) return Status::FromErrno(ENOTSUP, name);
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto target = TargetOf(ino);
  if (!target.ok()) return target.status();
  cache::ChangeScope scope;  // the change moves the file's ctime, so its token
  if (InodeRef inode = inodes_.Get(ino); inode && inode->cookie) scope = inode->cookie->BeginChange();
  Status st = backend_->removexattr(target->path, name, target->handle());
  if (!st.ok()) return st;
  NoteMetadataChange(ino, *target);
  return Status::Ok();
}

}  // namespace cachefuse::daemon
