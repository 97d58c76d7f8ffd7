// Operations on open files: open, create, read, write, fsync, flush, release.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include "daemon/backend_fetcher.h"
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
  auto opened = backend_->open(*path, flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
  if (!opened.ok()) return opened.status();
  netfs::OpenFileRef file = std::move(opened.value());
  *keep_cache = false;
  cache::UseToken use;
  if (inode->cookie) {
    // The open's own answer carries the attributes: one call, not open + stat.
    const netfs::Attr& attr = file->attr();
    if (attr.identity != inode->identity) {
      // The name now leads to another file (replaced by rename on the source).
      // ESTALE makes the kernel look the name up again (LOOKUP_REVAL) and open
      // the new file's inode, so the old inode's page cache never mixes versions.
      return Status::Stale("file replaced on the source");
    }
    // Close-to-open: the source's token at open decides whether the cached
    // data (ours and the kernel's page cache) is still the file's data.
    const bool coherent = inode->cookie->coherent_with(attr.coherency.bytes) &&
                          inode->cookie->size() == static_cast<uint64_t>(attr.st.st_size);
    if (!coherent) {
      inode->cookie->Invalidate(attr.coherency.bytes, static_cast<uint64_t>(attr.st.st_size));
      QueueKernelInval(ino);  // the kernel's cached size may be stale too
    }
    // Kept only if nothing invalidated the file since the kernel cached it.
    *keep_cache = coherent && !inode->page_cache_stale.exchange(false);
    use = inode->cookie->Use(writing);
  }
  auto* fh = new FileHandle;
  fh->use = std::move(use);
  fh->fetcher = std::make_shared<BackendFetcher>(backend_, file);
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
  auto created = backend_->create(*path, flags, mode);
  if (!created.ok()) return created.status();
  netfs::OpenFileRef file = std::move(created.value());
  netfs::Attr attr = file->attr();
  if (::geteuid() == 0 && (who.uid != 0 || who.gid != 0)) {
    ChownToCaller(*path, who);
    if (auto again = backend_->fstat(*file); again.ok()) attr = *again;  // the owner (and ctime) changed
  }
  auto entry = Remember(parent, name, attr);
  if (!entry.ok()) return entry.status();
  InodeRef inode = inodes_.Get(entry->param.ino);
  auto* fh = new FileHandle;
  if (inode && inode->cookie) fh->use = inode->cookie->Use(true);
  fh->fetcher = std::make_shared<BackendFetcher>(backend_, file);
  if (inode) inodes_.AddOpenFile(inode, file);
  fh->inode = std::move(inode);
  fh->file = std::move(file);
  fh->writable = true;
  return std::make_pair(*entry, Track(fh));
}

Status Filesystem::Read(FileHandle* fh, uint64_t off, size_t size, cache::ReadReply* out) {
  if (!fh->use.valid()) return Status::FromErrno(EINVAL, "read of a file without a cookie");
  Status st = read_helper_->Read(fh->use, fh->fetcher, &fh->stream, off, size, out);
  if (st.kind() == Status::Kind::kStale && !fh->stale_logged.exchange(true)) {
    auto path = inodes_.Path(fh->inode->ino);
    spdlog::warn(
        "{}: changed on the source while open here; this open fails its reads (ESTALE), a new open "
        "reads the new version",
        path.ok() ? "/" + *path : "(a removed file)");
  } else if (!st.ok() && st.kind() != Status::Kind::kStale) {
    auto path = inodes_.Path(fh->inode->ino);
    spdlog::warn("read of {} at {}: {} ({})", path.ok() ? "/" + *path : "(a removed file)", off, st.ToString(),
                 KindName(st.kind()));
  }
  return st;
}

void Filesystem::FollowWrite(FileHandle* fh, uint64_t off, uint64_t len, const netfs::Attr& attr) {
  fh->wrote = true;
  if (fh->inode && fh->inode->cookie) {
    fh->inode->cookie->NoteWrite(off, len, attr.coherency.bytes, static_cast<uint64_t>(attr.st.st_size));
  }
}

Result<size_t> Filesystem::Write(FileHandle* fh, uint64_t off, const char* data, size_t size) {
  cache::ChangeScope change;
  if (fh->inode && fh->inode->cookie) change = fh->inode->cookie->BeginChange();
  auto w = backend_->write(*fh->file, off, std::span<const char>(data, size));
  if (!w.ok()) {
    // Some bytes may have reached the source: whatever the cache held of them
    // is not to be trusted; the token is unknown until the next stat.
    fh->wrote = true;
    if (fh->inode && fh->inode->cookie) {
      auto& cookie = *fh->inode->cookie;
      cookie.NoteWrite(off, size, std::string(), std::max<uint64_t>(cookie.size(), off + size));
    }
    return w.status();
  }
  FollowWrite(fh, off, w->written, w->attr);
  return w->written;
}

Status Filesystem::Fallocate(FileHandle* fh, int mode, uint64_t off, uint64_t len) {
  Status w = CheckWritable();
  if (!w.ok()) return w;
  cache::ChangeScope change;
  if (fh->inode && fh->inode->cookie) change = fh->inode->cookie->BeginChange();
  Status st = backend_->fallocate(*fh->file, mode, off, len);
  if (!st.ok()) return st;
  // Punched or zeroed bytes change the data; allocation may change the size.
  auto attr = backend_->fstat(*fh->file);
  if (attr.ok()) {
    FollowWrite(fh, off, len, *attr);
  } else if (fh->inode && fh->inode->cookie) {
    fh->wrote = true;
    fh->inode->cookie->NoteWrite(off, len, std::string(), fh->inode->cookie->size());
  }
  return Status::Ok();
}

Status Filesystem::Fsync(FileHandle* fh, bool datasync) {
  return backend_->fsync(*fh->file, datasync);
}

Status Filesystem::Flush(FileHandle* fh) {
  if (!fh->writable) return Status::Ok();
  return backend_->flush(*fh->file);
}

void Filesystem::Release(FileHandle* fh) {
  {
    std::lock_guard lk(handles_mu_);
    if (open_handles_.erase(fh) == 0) return;  // already released (at shutdown)
  }
  if (fh->inode && fh->inode->cookie && fh->use.valid()) {
    auto& cookie = *fh->inode->cookie;
    if (fh->wrote) {
      auto attr = backend_->fstat(*fh->file);
      if (attr.ok()) {
        cookie.Unuse(fh->use, attr->coherency.bytes, static_cast<uint64_t>(attr->st.st_size));
      } else {
        cookie.Unuse(fh->use, cookie.aux(), cookie.size());
      }
    } else {
      cookie.Unuse(fh->use, cookie.aux(), cookie.size());
    }
    read_helper_->Release(fh->use);
  }
  delete fh;
}

}  // namespace cachefuse::daemon
