// Operations on names: mkdir, mknod, symlink, link, unlink, rmdir, rename.
#include <linux/fs.h>

#include "daemon/filesystem.h"

namespace cachefuse::daemon {

Result<Entry> Filesystem::MkDir(fuse_ino_t parent, const std::string& name, mode_t mode, const Caller& who) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto path = inodes_.ChildPath(parent, name);
  if (!path.ok()) return path.status();
  auto attr = backend_->mkdir(*path, mode);
  if (!attr.ok()) return attr.status();
  ChownToCaller(*path, who);
  auto again = backend_->stat(*path);
  return Remember(parent, name, again.ok() ? *again : *attr);
}

Result<Entry> Filesystem::MkNod(fuse_ino_t parent, const std::string& name, mode_t mode, dev_t rdev,
                                const Caller& who) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  // Regular files and FIFOs only: device nodes through a network cache are refused (as nodev).
  if (!S_ISREG(mode) && !S_ISFIFO(mode)) return Status::FromErrno(EPERM, "mknod of a device or socket");
  auto path = inodes_.ChildPath(parent, name);
  if (!path.ok()) return path.status();
  auto attr = backend_->mknod(*path, mode, rdev);
  if (!attr.ok()) return attr.status();
  ChownToCaller(*path, who);
  auto again = backend_->stat(*path);
  return Remember(parent, name, again.ok() ? *again : *attr);
}

Result<Entry> Filesystem::SymLink(const std::string& target, fuse_ino_t parent, const std::string& name,
                                  const Caller& who) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto path = inodes_.ChildPath(parent, name);
  if (!path.ok()) return path.status();
  auto attr = backend_->symlink(target, *path);
  if (!attr.ok()) return attr.status();
  ChownToCaller(*path, who);
  auto again = backend_->stat(*path);
  return Remember(parent, name, again.ok() ? *again : *attr);
}

Result<Entry> Filesystem::Link(fuse_ino_t ino, fuse_ino_t newparent, const std::string& newname) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto from = inodes_.Path(ino);
  if (!from.ok()) return from.status();
  auto to = inodes_.ChildPath(newparent, newname);
  if (!to.ok()) return to.status();
  auto attr = backend_->link(*from, *to);
  if (!attr.ok()) return attr.status();
  return Remember(newparent, newname, *attr);
}

Status Filesystem::Unlink(fuse_ino_t parent, const std::string& name) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto path = inodes_.ChildPath(parent, name);
  if (!path.ok()) return path.status();
  auto before = backend_->stat(*path);
  Status st = backend_->unlink(*path);
  if (!st.ok()) return st;
  inodes_.RemoveName(parent, name, before.ok() && before->st.st_nlink <= 1);
  return Status::Ok();
}

Status Filesystem::RmDir(fuse_ino_t parent, const std::string& name) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto path = inodes_.ChildPath(parent, name);
  if (!path.ok()) return path.status();
  Status st = backend_->rmdir(*path);
  if (!st.ok()) return st;
  inodes_.RemoveName(parent, name, true);
  return Status::Ok();
}

Status Filesystem::Rename(fuse_ino_t parent, const std::string& name, fuse_ino_t newparent, const std::string& newname,
                          unsigned flags) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return Status::Invalid("rename flags");
  const auto caps = backend_->capabilities();
  if (((flags & RENAME_NOREPLACE) && !caps.rename_noreplace) || ((flags & RENAME_EXCHANGE) && !caps.rename_exchange)) {
    return Status::Invalid("rename flags not supported by the source");
  }
  auto from = inodes_.ChildPath(parent, name);
  if (!from.ok()) return from.status();
  auto to = inodes_.ChildPath(newparent, newname);
  if (!to.ok()) return to.status();
  // A plain rename over an existing file removes that file (its last link, maybe).
  std::optional<netfs::Attr> replaced;
  if (flags == 0) {
    auto t = backend_->stat(*to);
    if (t.ok()) replaced = *t;
  }
  Status st = backend_->rename(*from, *to, flags);
  if (!st.ok()) return st;
  if (replaced) inodes_.RemoveName(newparent, newname, replaced->st.st_nlink <= 1 || S_ISDIR(replaced->st.st_mode));
  inodes_.Rename(parent, name, newparent, newname, flags);
  return Status::Ok();
}

}  // namespace cachefuse::daemon
