// PosixBackend: every call is one *at() syscall relative to the source's root fd.
#include "netfs_backends/posix/posix_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cachefuse::netfs {
namespace {

// An open file of the posix source: the fd, closed when the last holder lets
// go, and the path it was opened by (for messages; it may have moved since).
class PosixFile final : public OpenFile {
 public:
  PosixFile(Attr attr, UniqueFd fd, std::string path)
      : OpenFile(std::move(attr)), fd_(std::move(fd)), path_(std::move(path)) {}
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  const UniqueFd fd_;
  const std::string path_;
};

// The posix file behind f. Files go back to the stack that opened them; one
// from another source is a bug in the caller, not an error to answer.
PosixFile& Posix(OpenFile& f) {
  auto* p = dynamic_cast<PosixFile*>(&f);
  if (p == nullptr) {
    std::fprintf(stderr, "cachefuse: PosixBackend given an open file of another backend\n");
    std::abort();
  }
  return *p;
}

void PutLe64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

std::string ProcPath(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace

Result<std::unique_ptr<PosixBackend>> PosixBackend::Open(const std::string& root) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOTDIR) return Status::FromErrno(err, "source '" + root + "' is not a directory");
    return Status::FromErrno(err, "cannot open source '" + root + "'");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat of source '" + root + "'");
  struct statvfs vfs {};
  bool read_only = ::fstatvfs(fd.get(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
  Capabilities caps;
  caps.writable = !read_only;
  caps.hard_links = true;
  caps.symlinks = true;
  caps.xattrs = true;
  caps.rename_noreplace = true;  // the source filesystem answers EINVAL if it cannot
  caps.rename_exchange = true;
  caps.special_files = true;
  caps.max_name = vfs.f_namemax ? static_cast<uint32_t>(vfs.f_namemax) : 255;
  char real[PATH_MAX];
  std::string canonical = ::realpath(root.c_str(), real) ? real : root;
  return std::unique_ptr<PosixBackend>(new PosixBackend(canonical, std::move(fd), st.st_dev, caps));
}

bool PosixBackend::SameData(const Coherency& a, const Coherency& b) {
  // Token layout (MakeAttr): mtime [0, 8), ctime [8, 16), size [16, 24), inode [24, 32).
  if (a.bytes.size() != 32 || b.bytes.size() != 32) return a == b;
  return a.bytes.compare(0, 8, b.bytes, 0, 8) == 0 && a.bytes.compare(16, 16, b.bytes, 16, 16) == 0;
}

Attr PosixBackend::MakeAttr(const struct stat& st) const {
  Attr a;
  a.st = st;
  // Coherency: mtime, ctime, size and inode. ctime catches an mtime put back
  // by `touch -d`/`cp -p`; the inode catches a file replaced by rename.
  a.coherency.bytes.reserve(32);
  PutLe64(a.coherency.bytes, static_cast<uint64_t>(Nanos(st.st_mtim)));
  PutLe64(a.coherency.bytes, static_cast<uint64_t>(Nanos(st.st_ctim)));
  PutLe64(a.coherency.bytes, static_cast<uint64_t>(st.st_size));
  PutLe64(a.coherency.bytes, static_cast<uint64_t>(st.st_ino));
  // Identity: the inode number, plus the device only below a nested mount.
  // Anonymous device numbers (NFS, FUSE) change when the source is remounted;
  // leaving them out keeps the cache across remounts of the source.
  if (st.st_dev == root_dev_) {
    a.identity = "i" + std::to_string(st.st_ino);
  } else {
    a.identity = "d" + std::to_string(st.st_dev) + ":i" + std::to_string(st.st_ino);
  }
  return a;
}

Result<PosixBackend::At> PosixBackend::Resolve(const std::string& path) const {
  if (!IsCleanRelativePath(path)) return Status::Invalid("bad path '" + path + "'");
  if (path.empty()) return At{UniqueFd(), root_fd_.get(), "."};
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return At{UniqueFd(), root_fd_.get(), path};
  // The parent must be a directory of the source reached without any symlink:
  // a directory swapped for a symlink on the server cannot lead us outside.
  struct open_how how {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  const std::string parent = path.substr(0, slash);
  long fd = ::syscall(SYS_openat2, root_fd_.get(), parent.c_str(), &how, sizeof how);
  if (fd < 0) return ErrnoStatus("resolve " + parent);
  return At{UniqueFd(static_cast<int>(fd)), static_cast<int>(fd), path.substr(slash + 1)};
}

Result<Attr> PosixBackend::StatAt(const std::string& path) const {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  struct stat st {};
  if (::fstatat(at->dirfd, at->leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoStatus("stat " + path);
  return MakeAttr(st);
}

Result<Attr> PosixBackend::stat(const std::string& path) {
  return StatAt(path);
}

Result<std::vector<DirEntry>> PosixBackend::list(const std::string& dir) {
  auto at = Resolve(dir);
  if (!at.ok()) return at.status();
  int fd = ::openat(at->dirfd, at->leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opendir " + dir);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return ErrnoStatus("fdopendir " + dir);
  }
  std::vector<DirEntry> out;
  errno = 0;
  while (struct dirent* de = ::readdir(d)) {
    if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced with unlink
    out.push_back(DirEntry{de->d_name, MakeAttr(st)});
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno(err, "readdir " + dir);
  return out;
}

namespace {

// The open(2) flags passed on to the source. The kernel hands FUSE internal
// bits too (__FMODE_EXEC on execve), which openat2 refuses. O_APPEND is left
// out: the kernel sends each write with its offset, and the cache must know
// where the bytes landed. O_DIRECT is the cache's business, not the source's.
uint64_t SourceOpenFlags(int flags) {
  constexpr int kPassed = O_ACCMODE | O_TRUNC | O_NONBLOCK | O_SYNC | O_DSYNC | O_NOATIME | O_CREAT | O_EXCL;
  return static_cast<uint64_t>((flags & kPassed) | O_NOFOLLOW | O_CLOEXEC);
}

}  // namespace

Result<OpenFileRef> PosixBackend::OpenFileAt(const std::string& path, uint64_t flags, mode_t mode,
                                             const char* what) const {
  struct open_how how {};
  how.flags = flags;
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  long raw = ::syscall(SYS_openat2, root_fd_.get(), AtName(path), &how, sizeof how);
  if (raw < 0) return ErrnoStatus(std::string(what) + " " + path);
  UniqueFd fd(static_cast<int>(raw));
  auto attr = FstatFd(fd.get(), path);
  if (!attr.ok()) return attr.status();
  return OpenFileRef(std::make_shared<PosixFile>(std::move(attr.value()), std::move(fd), path));
}

Result<Attr> PosixBackend::FstatFd(int fd, const std::string& what) const {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat " + what);
  return MakeAttr(st);
}

Result<OpenFileRef> PosixBackend::open(const std::string& path, int flags) {
  if (!IsCleanRelativePath(path)) return Status::Invalid("bad path '" + path + "'");
  return OpenFileAt(path, SourceOpenFlags(flags & ~(O_CREAT | O_EXCL)), 0, "open");
}

Result<OpenFileRef> PosixBackend::create(const std::string& path, int flags, mode_t mode) {
  if (!IsCleanRelativePath(path)) return Status::Invalid("bad path '" + path + "'");
  if (path.empty()) return Status::FromErrno(EEXIST, "create of the root");
  return OpenFileAt(path, SourceOpenFlags(flags) | O_CREAT, mode & 07777, "create");
}

Result<Attr> PosixBackend::fstat(OpenFile& f) {
  PosixFile& pf = Posix(f);
  return FstatFd(pf.fd(), pf.path());
}

Result<size_t> PosixBackend::read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                                        const ReadOptions& options) {
  PosixFile& pf = Posix(f);
  size_t got = 0;
  for (;;) {
    ssize_t n = ::preadv(pf.fd(), bufs.data(), static_cast<int>(bufs.size()), static_cast<off_t>(offset));
    if (n >= 0) {
      got = static_cast<size_t>(n);
      break;
    }
    if (errno != EINTR) return ErrnoStatus("read " + pf.path());
  }
  if (options.expect != nullptr) {
    // Were these bytes of the expected version? The caller took the token
    // (mtime and ctime in ns, size, inode) before this read began. Every
    // write moves mtime forward (6.13+ kernels give an observed file
    // fine-grained timestamps, so two writes in one tick differ too), so if
    // mtime, size and inode after the read equal the expected ones, nothing
    // wrote the file between then and now and the bytes are of that version.
    // ctime is left out here: a rename, unlink, link or chmod at the source
    // moves it without touching the data (the old file of a replace-by-rename
    // stays readable through its open fd). What this cannot see: a writer
    // that changes the data and puts mtime back (utimes) within the read;
    // the next open's full token (ctime included) sees that one. A changed
    // token fails the read even if the change was elsewhere in the file (an
    // append): the caller decides what that means.
    auto now = FstatFd(pf.fd(), pf.path());
    if (!now.ok()) return now.status();
    if (!SameData(now->coherency, *options.expect)) return Status::Stale(pf.path() + ": changed on the source");
  }
  return got;
}

Result<WriteResult> PosixBackend::write(OpenFile& f, uint64_t offset, std::span<const char> data) {
  PosixFile& pf = Posix(f);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(pf.fd(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done > 0) break;
      return ErrnoStatus("write " + pf.path());
    }
    done += static_cast<size_t>(n);
  }
  auto attr = FstatFd(pf.fd(), pf.path());
  if (!attr.ok()) return attr.status();
  return WriteResult{done, std::move(attr.value())};
}

Status PosixBackend::fsync(OpenFile& f, bool datasync) {
  PosixFile& pf = Posix(f);
  int rc = datasync ? ::fdatasync(pf.fd()) : ::fsync(pf.fd());
  return rc == 0 ? Status::Ok() : ErrnoStatus("fsync " + pf.path());
}

// Closing a duplicate reports what close(2) of the file would (write-back
// errors of NFS, quota) and leaves the file open: libfuse's passthrough_hp
// flush does the same.
Status PosixBackend::flush(OpenFile& f) {
  PosixFile& pf = Posix(f);
  int copy = ::fcntl(pf.fd(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoStatus("flush " + pf.path());
  return ::close(copy) == 0 ? Status::Ok() : ErrnoStatus("flush " + pf.path());
}

Status PosixBackend::fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) {
  PosixFile& pf = Posix(f);
  if (::fallocate(pf.fd(), mode, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
    return ErrnoStatus("fallocate " + pf.path());
  }
  return Status::Ok();
}

Result<Attr> PosixBackend::setattr(const std::string& path, const SetAttr& c, OpenFile* f) {
  const int fd = f != nullptr ? Posix(*f).fd() : -1;
  At at;
  if (fd < 0) {
    auto r = Resolve(path);
    if (!r.ok()) return r.status();
    at = std::move(r.value());
  }
  const char* name = at.leaf.c_str();
  if (c.mode) {
    int rc = fd >= 0 ? ::fchmod(fd, *c.mode) : ::fchmodat(at.dirfd, name, *c.mode, 0);
    if (rc != 0) return ErrnoStatus("chmod " + path);
  }
  if (c.uid || c.gid) {
    uid_t uid = c.uid ? *c.uid : static_cast<uid_t>(-1);
    gid_t gid = c.gid ? *c.gid : static_cast<gid_t>(-1);
    int rc = fd >= 0 ? ::fchown(fd, uid, gid) : ::fchownat(at.dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return ErrnoStatus("chown " + path);
  }
  if (c.size) {
    int rc;
    if (fd >= 0) {
      rc = ::ftruncate(fd, static_cast<off_t>(*c.size));
    } else {
      UniqueFd tfd(::openat(at.dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
      rc = tfd.valid() ? ::ftruncate(tfd.get(), static_cast<off_t>(*c.size)) : -1;
    }
    if (rc != 0) return ErrnoStatus("truncate " + path);
  }
  if (c.atime || c.mtime) {
    struct timespec times[2];
    times[0] = c.atime ? *c.atime : timespec{0, UTIME_OMIT};
    times[1] = c.mtime ? *c.mtime : timespec{0, UTIME_OMIT};
    int rc = fd >= 0 ? ::futimens(fd, times) : ::utimensat(at.dirfd, name, times, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return ErrnoStatus("utimens " + path);
  }
  if (fd >= 0) return FstatFd(fd, path);
  struct stat st {};
  if (::fstatat(at.dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoStatus("stat " + path);
  return MakeAttr(st);
}

Result<Attr> PosixBackend::mkdir(const std::string& path, mode_t mode) {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  if (::mkdirat(at->dirfd, at->leaf.c_str(), mode) != 0) return ErrnoStatus("mkdir " + path);
  return StatAt(path);
}

Result<Attr> PosixBackend::mknod(const std::string& path, mode_t mode, dev_t rdev) {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  if (::mknodat(at->dirfd, at->leaf.c_str(), mode, rdev) != 0) return ErrnoStatus("mknod " + path);
  return StatAt(path);
}

Result<Attr> PosixBackend::symlink(const std::string& target, const std::string& path) {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  if (::symlinkat(target.c_str(), at->dirfd, at->leaf.c_str()) != 0) return ErrnoStatus("symlink " + path);
  return StatAt(path);
}

Result<std::string> PosixBackend::readlink(const std::string& path) {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  std::string buf(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(at->dirfd, at->leaf.c_str(), buf.data(), buf.size());
  if (n < 0) return ErrnoStatus("readlink " + path);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

Status PosixBackend::unlink(const std::string& path) {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  return ::unlinkat(at->dirfd, at->leaf.c_str(), 0) == 0 ? Status::Ok() : ErrnoStatus("unlink " + path);
}

Status PosixBackend::rmdir(const std::string& path) {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  return ::unlinkat(at->dirfd, at->leaf.c_str(), AT_REMOVEDIR) == 0 ? Status::Ok() : ErrnoStatus("rmdir " + path);
}

Status PosixBackend::rename(const std::string& from, const std::string& to, unsigned flags) {
  auto a = Resolve(from);
  if (!a.ok()) return a.status();
  auto b = Resolve(to);
  if (!b.ok()) return b.status();
  if (::renameat2(a->dirfd, a->leaf.c_str(), b->dirfd, b->leaf.c_str(), flags) != 0) {
    return ErrnoStatus("rename " + from + " -> " + to);
  }
  return Status::Ok();
}

Result<Attr> PosixBackend::link(const std::string& existing, const std::string& newpath) {
  auto a = Resolve(existing);
  if (!a.ok()) return a.status();
  auto b = Resolve(newpath);
  if (!b.ok()) return b.status();
  if (::linkat(a->dirfd, a->leaf.c_str(), b->dirfd, b->leaf.c_str(), 0) != 0) {
    return ErrnoStatus("link " + existing + " -> " + newpath);
  }
  return StatAt(newpath);
}

Result<struct statvfs> PosixBackend::statfs(const std::string& path) {
  if (!IsCleanRelativePath(path)) return Status::Invalid("bad path '" + path + "'");
  struct statvfs s {};
  if (::fstatvfs(root_fd_.get(), &s) != 0) return ErrnoStatus("statfs");
  return s;
}

Status PosixBackend::access(const std::string& path, int mask) {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  return ::faccessat(at->dirfd, at->leaf.c_str(), mask, 0) == 0 ? Status::Ok() : ErrnoStatus("access " + path);
}

Result<UniqueFd> PosixBackend::OpenPath(const std::string& path) const {
  auto at = Resolve(path);
  if (!at.ok()) return at.status();
  UniqueFd fd(::openat(at->dirfd, at->leaf.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  return fd;
}

namespace {

// The xattr calls through /proc/self/fd/N work for O_PATH fds and open files alike.
Result<std::string> GetXattrAt(const std::string& proc, const std::string& name, const std::string& what) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    ssize_t n = ::getxattr(proc.c_str(), name.c_str(), nullptr, 0);
    if (n < 0) return ErrnoStatus("getxattr " + what);
    std::string value(static_cast<size_t>(n), '\0');
    ssize_t m = ::getxattr(proc.c_str(), name.c_str(), value.data(), value.size());
    if (m >= 0) {
      value.resize(static_cast<size_t>(m));
      return value;
    }
    if (errno != ERANGE) return ErrnoStatus("getxattr " + what);
  }
  return Status::FromErrno(ERANGE, "getxattr " + what);
}

Result<std::vector<std::string>> ListXattrAt(const std::string& proc, const std::string& what) {
  std::string buf;
  for (int attempt = 0; attempt < 3; ++attempt) {
    ssize_t n = ::listxattr(proc.c_str(), nullptr, 0);
    if (n < 0) return ErrnoStatus("listxattr " + what);
    buf.assign(static_cast<size_t>(n), '\0');
    ssize_t m = ::listxattr(proc.c_str(), buf.data(), buf.size());
    if (m >= 0) {
      buf.resize(static_cast<size_t>(m));
      std::vector<std::string> names;
      for (size_t pos = 0; pos < buf.size();) {
        size_t end = buf.find('\0', pos);
        if (end == std::string::npos) end = buf.size();
        if (end > pos) names.emplace_back(buf.substr(pos, end - pos));
        pos = end + 1;
      }
      return names;
    }
    if (errno != ERANGE) return ErrnoStatus("listxattr " + what);
  }
  return Status::FromErrno(ERANGE, "listxattr " + what);
}

Status SetXattrAt(const std::string& proc, const std::string& name, const std::string& value, int flags,
                  const std::string& what) {
  if (::setxattr(proc.c_str(), name.c_str(), value.data(), value.size(), flags) != 0) {
    return ErrnoStatus("setxattr " + what);
  }
  return Status::Ok();
}

Status RemoveXattrAt(const std::string& proc, const std::string& name, const std::string& what) {
  if (::removexattr(proc.c_str(), name.c_str()) != 0) return ErrnoStatus("removexattr " + what);
  return Status::Ok();
}

}  // namespace

Result<std::string> PosixBackend::getxattr(const std::string& path, const std::string& name, OpenFile* f) {
  if (f != nullptr) return GetXattrAt(ProcPath(Posix(*f).fd()), name, path);
  auto fd = OpenPath(path);
  if (!fd.ok()) return fd.status();
  return GetXattrAt(ProcPath(fd->get()), name, path);
}

Result<std::vector<std::string>> PosixBackend::listxattr(const std::string& path, OpenFile* f) {
  if (f != nullptr) return ListXattrAt(ProcPath(Posix(*f).fd()), path);
  auto fd = OpenPath(path);
  if (!fd.ok()) return fd.status();
  return ListXattrAt(ProcPath(fd->get()), path);
}

Status PosixBackend::setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                              OpenFile* f) {
  if (f != nullptr) return SetXattrAt(ProcPath(Posix(*f).fd()), name, value, flags, path);
  auto fd = OpenPath(path);
  if (!fd.ok()) return fd.status();
  return SetXattrAt(ProcPath(fd->get()), name, value, flags, path);
}

Status PosixBackend::removexattr(const std::string& path, const std::string& name, OpenFile* f) {
  if (f != nullptr) return RemoveXattrAt(ProcPath(Posix(*f).fd()), name, path);
  auto fd = OpenPath(path);
  if (!fd.ok()) return fd.status();
  return RemoveXattrAt(ProcPath(fd->get()), name, path);
}

}  // namespace cachefuse::netfs
