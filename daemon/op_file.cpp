// Operations on open files: open, create, read, write, fsync, release.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include "daemon/filesystem.h"

namespace cachefuse::daemon {

Result<FileHandle*> Filesystem::Open(fuse_ino_t ino, int flags, bool* keep_cache) {
  InodeRef inode = inodes_.Get(ino);
  if (!inode) return Status::FromErrno(ESTALE, "open of a forgotten inode");
  const bool writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  if (writing) {
    Status w = CheckWritable();
    if (!w.ok()) return w;
  }
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  auto h = backend_->open(*path, flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
  if (!h.ok()) return h.status();
  auto file = std::make_shared<netfs::OpenFile>(backend_.get(), *h);
  *keep_cache = false;
  if (inode->cookie) {
    auto attr = backend_->fstat(*h);
    if (!attr.ok()) return attr.status();
    if (attr->identity != inode->identity) {
      // The name now leads to another file (replaced by rename on the source).
      // ESTALE makes the kernel look the name up again (LOOKUP_REVAL) and open
      // the new file's inode, so the old inode's page cache never mixes versions.
      return Status::FromErrno(ESTALE, "file replaced on the source");
    }
    // Close-to-open: the source's token at open decides whether the cached
    // data (ours and the kernel's page cache) is still the file's data.
    const bool coherent = inode->cookie->coherent_with(attr->coherency.bytes) &&
                          inode->cookie->size() == static_cast<uint64_t>(attr->st.st_size);
    if (!coherent) {
      inode->cookie->Invalidate(attr->coherency.bytes, static_cast<uint64_t>(attr->st.st_size));
      QueueKernelInval(ino);  // the kernel's cached size may be stale too
    }
    // Kept only if nothing invalidated the file since the kernel cached it.
    *keep_cache = coherent && !inode->page_cache_stale.exchange(false);
    inode->cookie->Use(writing);
  }
  auto* fh = new FileHandle;
  if (inode->cookie) fh->generation = inode->cookie->object();
  inodes_.AddOpenFile(inode, file);
  fh->inode = std::move(inode);
  fh->file = std::move(file);
  fh->writable = writing;
  return Track(fh);
}

Result<std::pair<Entry, FileHandle*>> Filesystem::Create(fuse_ino_t parent, const std::string& name, mode_t mode,
                                                         int flags, const Caller& who) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto path = inodes_.ChildPath(parent, name);
  if (!path.ok()) return path.status();
  auto h = backend_->create(*path, flags, mode);
  if (!h.ok()) return h.status();
  auto file = std::make_shared<netfs::OpenFile>(backend_.get(), *h);
  ChownToCaller(*path, who);
  auto attr = backend_->fstat(*h);
  if (!attr.ok()) return attr.status();
  auto entry = Remember(parent, name, *attr);
  if (!entry.ok()) return entry.status();
  InodeRef inode = inodes_.Get(entry->param.ino);
  if (inode && inode->cookie) inode->cookie->Use(true);
  auto* fh = new FileHandle;
  if (inode && inode->cookie) fh->generation = inode->cookie->object();
  if (inode) inodes_.AddOpenFile(inode, file);
  fh->inode = std::move(inode);
  fh->file = std::move(file);
  fh->writable = true;
  return std::make_pair(*entry, Track(fh));
}

Status Filesystem::Read(FileHandle* fh, uint64_t off, size_t size, cache::ReadReply* out) {
  if (!fh->generation) return Status::FromErrno(EINVAL, "read of a file without a cookie");
  return read_helper_->Read(fh->generation, fh->file, &fh->stream, off, size, out);
}

Result<size_t> Filesystem::Write(FileHandle* fh, uint64_t off, const char* data, size_t size) {
  auto& backend = fh->file->backend();
  auto n = backend.write(fh->file->handle(), off, std::span<const char>(data, size));
  if (!n.ok()) return n.status();
  fh->wrote = true;
  if (fh->inode && fh->inode->cookie) {
    auto attr = backend.fstat(fh->file->handle());
    auto& cookie = *fh->inode->cookie;
    if (attr.ok()) {
      cookie.NoteWrite(off, *n, attr->coherency.bytes, static_cast<uint64_t>(attr->st.st_size));
    } else {
      // Token unknown: any later open sees a mismatch and starts afresh.
      cookie.NoteWrite(off, *n, std::string(), std::max<uint64_t>(cookie.size(), off + *n));
    }
  }
  return *n;
}

Status Filesystem::Fallocate(FileHandle* fh, int mode, uint64_t off, uint64_t len) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  auto& backend = fh->file->backend();
  Status st = backend.fallocate(fh->file->handle(), mode, off, len);
  if (!st.ok()) return st;
  fh->wrote = true;
  if (fh->inode && fh->inode->cookie) {
    // Punched or zeroed bytes change the data; allocation may change the size.
    auto attr = backend.fstat(fh->file->handle());
    auto& cookie = *fh->inode->cookie;
    if (attr.ok()) {
      cookie.NoteWrite(off, len, attr->coherency.bytes, static_cast<uint64_t>(attr->st.st_size));
    } else {
      cookie.NoteWrite(off, len, std::string(), cookie.size());
    }
  }
  return Status::Ok();
}

Status Filesystem::Fsync(FileHandle* fh, bool datasync) {
  return fh->file->backend().fsync(fh->file->handle(), datasync);
}

void Filesystem::Release(FileHandle* fh) {
  {
    std::lock_guard lk(handles_mu_);
    if (open_handles_.erase(fh) == 0) return;  // already released (at shutdown)
  }
  if (fh->inode && fh->inode->cookie) {
    auto& cookie = *fh->inode->cookie;
    if (fh->wrote) {
      auto attr = fh->file->backend().fstat(fh->file->handle());
      if (attr.ok()) {
        cookie.Unuse(attr->coherency.bytes, static_cast<uint64_t>(attr->st.st_size));
      } else {
        cookie.Unuse(cookie.aux(), cookie.size());
      }
    } else {
      cookie.Unuse(cookie.aux(), cookie.size());
    }
  }
  delete fh;
}

}  // namespace cachefuse::daemon
