// Operations on entries and attributes: lookup, forget, getattr, setattr, readlink, statfs, access.
#include <spdlog/spdlog.h>

#include "daemon/filesystem.h"

namespace cachefuse::daemon {

Result<Entry> Filesystem::Lookup(fuse_ino_t parent, const std::string& name) {
  if (name.size() > backend_->capabilities().max_name) return Status::FromErrno(ENAMETOOLONG, name);
  auto path = inodes_.ChildPath(parent, name);
  if (!path.ok()) return path.status();
  auto attr = backend_->stat(*path);
  if (!attr.ok()) return attr.status();
  return Remember(parent, name, *attr);
}

void Filesystem::Forget(fuse_ino_t ino, uint64_t nlookup) {
  InodeRef gone = inodes_.Forget(ino, nlookup);
  if (gone && gone->cookie) gone->cookie->Relinquish(gone->unlinked);
}

Result<AttrReply> Filesystem::GetAttr(fuse_ino_t ino, FileHandle* fh) {
  Result<netfs::Attr> attr = Status::FromErrno(ENOENT, "");
  if (fh) {
    attr = backend_->fstat(*fh->file);
  } else {
    auto target = TargetOf(ino);
    if (!target.ok()) return target.status();
    attr = target->file ? backend_->fstat(*target->file) : backend_->stat(target->path);
  }
  if (!attr.ok()) return attr.status();
  if (InodeRef inode = inodes_.Get(ino)) Revalidate(inode, *attr);
  return AttrReply{attr->st, Remaining(options_.attr_timeout, *attr)};
}

Result<struct stat> Filesystem::SetAttr(fuse_ino_t ino, const struct stat& in, int to_set, FileHandle* fh) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto target = TargetOf(ino);
  if (!target.ok() && !fh) return target.status();
  netfs::SetAttr change;
  if (to_set & FUSE_SET_ATTR_MODE) change.mode = in.st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) change.uid = in.st_uid;
  if (to_set & FUSE_SET_ATTR_GID) change.gid = in.st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) change.size = static_cast<uint64_t>(in.st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    change.atime = timespec{0, UTIME_NOW};
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    change.atime = in.st_atim;
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    change.mtime = timespec{0, UTIME_NOW};
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    change.mtime = in.st_mtim;
  }
  netfs::OpenFile* handle = nullptr;
  if (fh) {
    handle = fh->file.get();
  } else if (target.ok()) {
    handle = target->handle();
  }
  InodeRef inode = inodes_.Get(ino);
  const bool resize = change.size.has_value();
  // Any change moves the source's token (ctime): reads racing with it retry.
  cache::ChangeScope scope;
  if (inode && inode->cookie) scope = inode->cookie->BeginChange();
  auto attr = backend_->setattr(target.ok() ? target->path : std::string(), change, handle);
  if (!attr.ok()) return attr.status();
  if (inode && inode->cookie) {
    // Our own change: the cache follows it instead of discarding the data.
    if (resize) {
      inode->cookie->NoteResize(attr->coherency.bytes, static_cast<uint64_t>(attr->st.st_size));
    } else {
      inode->cookie->NoteAttrChange(attr->coherency.bytes);
    }
  }
  return attr->st;
}

Result<std::string> Filesystem::ReadLink(fuse_ino_t ino) {
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  return backend_->readlink(*path);
}

Result<struct statvfs> Filesystem::StatFs(fuse_ino_t /*ino*/) {
  return backend_->statfs("");
}

Status Filesystem::Access(fuse_ino_t ino, int mask) {
  if ((mask & W_OK) && (options_.read_only || !backend_->capabilities().writable)) {
    return Status::ReadOnly("read-only");
  }
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  return backend_->access(*path, mask);
}

}  // namespace cachefuse::daemon
