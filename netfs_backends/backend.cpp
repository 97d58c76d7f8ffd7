// Backend helpers shared by every source: path checks, op names, the
// forwarding base of the layers and the read-only base of sources.
#include "netfs_backends/backend.h"

#include <unistd.h>

#include <string_view>

namespace cachefuse::netfs {

bool IsCleanRelativePath(const std::string& path) {
  if (path.empty()) return true;
  if (path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view comp(path.data() + start, end - start);
    if (comp.empty() || comp == "." || comp == "..") return false;
    start = end + 1;
  }
  return path.find('\0') == std::string::npos;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir + "/" + name;
}

std::string ParentPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  return path.substr(0, slash);
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kStat:
      return "stat";
    case Op::kList:
      return "list";
    case Op::kOpen:
      return "open";
    case Op::kCreate:
      return "create";
    case Op::kFstat:
      return "fstat";
    case Op::kRead:
      return "read";
    case Op::kWrite:
      return "write";
    case Op::kFsync:
      return "fsync";
    case Op::kFlush:
      return "flush";
    case Op::kFallocate:
      return "fallocate";
    case Op::kSetattr:
      return "setattr";
    case Op::kMkdir:
      return "mkdir";
    case Op::kMknod:
      return "mknod";
    case Op::kSymlink:
      return "symlink";
    case Op::kReadlink:
      return "readlink";
    case Op::kUnlink:
      return "unlink";
    case Op::kRmdir:
      return "rmdir";
    case Op::kRename:
      return "rename";
    case Op::kLink:
      return "link";
    case Op::kStatfs:
      return "statfs";
    case Op::kAccess:
      return "access";
    case Op::kGetxattr:
      return "getxattr";
    case Op::kListxattr:
      return "listxattr";
    case Op::kSetxattr:
      return "setxattr";
    case Op::kRemovexattr:
      return "removexattr";
    case Op::kCount:
      break;
  }
  return "?";
}

bool IsIdempotent(Op op) {
  switch (op) {
    // Lookups and reads: asking again asks the same question. open is here
    // because IsIdempotent sees only the op; RetryBackend::open does not retry
    // an open whose flags change the file (O_TRUNC, O_CREAT).
    case Op::kStat:
    case Op::kList:
    case Op::kOpen:
    case Op::kFstat:
    case Op::kRead:
    case Op::kFsync:
    case Op::kFlush:
    case Op::kReadlink:
    case Op::kStatfs:
    case Op::kAccess:
    case Op::kGetxattr:
    case Op::kListxattr:
      return true;
    // Changes: a first attempt that failed on the way back may have been
    // applied, and applying it again is not the same (EEXIST, a second append).
    case Op::kCreate:
    case Op::kWrite:
    case Op::kFallocate:
    case Op::kSetattr:
    case Op::kMkdir:
    case Op::kMknod:
    case Op::kSymlink:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
    case Op::kLink:
    case Op::kSetxattr:
    case Op::kRemovexattr:
    case Op::kCount:
      return false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// ForwardingBackend

Result<Attr> ForwardingBackend::stat(const std::string& path) {
  if (Status s = Before(Op::kStat, kNoDeadline); !s.ok()) return s;
  return inner_->stat(path);
}

Result<std::vector<DirEntry>> ForwardingBackend::list(const std::string& dir) {
  if (Status s = Before(Op::kList, kNoDeadline); !s.ok()) return s;
  return inner_->list(dir);
}

Result<OpenFileRef> ForwardingBackend::open(const std::string& path, int flags) {
  if (Status s = Before(Op::kOpen, kNoDeadline); !s.ok()) return s;
  return inner_->open(path, flags);
}

Result<OpenFileRef> ForwardingBackend::create(const std::string& path, int flags, mode_t mode) {
  if (Status s = Before(Op::kCreate, kNoDeadline); !s.ok()) return s;
  return inner_->create(path, flags, mode);
}

Result<Attr> ForwardingBackend::fstat(OpenFile& f) {
  if (Status s = Before(Op::kFstat, kNoDeadline); !s.ok()) return s;
  return inner_->fstat(f);
}

Result<size_t> ForwardingBackend::read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                                             const ReadOptions& options) {
  if (Status s = Before(Op::kRead, options.deadline); !s.ok()) return s;
  return inner_->read_range(f, offset, bufs, options);
}

Result<WriteResult> ForwardingBackend::write(OpenFile& f, uint64_t offset, std::span<const char> data) {
  if (Status s = Before(Op::kWrite, kNoDeadline); !s.ok()) return s;
  return inner_->write(f, offset, data);
}

Status ForwardingBackend::fsync(OpenFile& f, bool datasync) {
  if (Status s = Before(Op::kFsync, kNoDeadline); !s.ok()) return s;
  return inner_->fsync(f, datasync);
}

Status ForwardingBackend::flush(OpenFile& f) {
  if (Status s = Before(Op::kFlush, kNoDeadline); !s.ok()) return s;
  return inner_->flush(f);
}

Status ForwardingBackend::fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) {
  if (Status s = Before(Op::kFallocate, kNoDeadline); !s.ok()) return s;
  return inner_->fallocate(f, mode, offset, length);
}

Result<Attr> ForwardingBackend::setattr(const std::string& path, const SetAttr& change, OpenFile* f) {
  if (Status s = Before(Op::kSetattr, kNoDeadline); !s.ok()) return s;
  return inner_->setattr(path, change, f);
}

Result<Attr> ForwardingBackend::mkdir(const std::string& path, mode_t mode) {
  if (Status s = Before(Op::kMkdir, kNoDeadline); !s.ok()) return s;
  return inner_->mkdir(path, mode);
}

Result<Attr> ForwardingBackend::mknod(const std::string& path, mode_t mode, dev_t rdev) {
  if (Status s = Before(Op::kMknod, kNoDeadline); !s.ok()) return s;
  return inner_->mknod(path, mode, rdev);
}

Result<Attr> ForwardingBackend::symlink(const std::string& target, const std::string& path) {
  if (Status s = Before(Op::kSymlink, kNoDeadline); !s.ok()) return s;
  return inner_->symlink(target, path);
}

Result<std::string> ForwardingBackend::readlink(const std::string& path) {
  if (Status s = Before(Op::kReadlink, kNoDeadline); !s.ok()) return s;
  return inner_->readlink(path);
}

Status ForwardingBackend::unlink(const std::string& path) {
  if (Status s = Before(Op::kUnlink, kNoDeadline); !s.ok()) return s;
  return inner_->unlink(path);
}

Status ForwardingBackend::rmdir(const std::string& path) {
  if (Status s = Before(Op::kRmdir, kNoDeadline); !s.ok()) return s;
  return inner_->rmdir(path);
}

Status ForwardingBackend::rename(const std::string& from, const std::string& to, unsigned flags) {
  if (Status s = Before(Op::kRename, kNoDeadline); !s.ok()) return s;
  return inner_->rename(from, to, flags);
}

Result<Attr> ForwardingBackend::link(const std::string& existing, const std::string& newpath) {
  if (Status s = Before(Op::kLink, kNoDeadline); !s.ok()) return s;
  return inner_->link(existing, newpath);
}

Result<struct statvfs> ForwardingBackend::statfs(const std::string& path) {
  if (Status s = Before(Op::kStatfs, kNoDeadline); !s.ok()) return s;
  return inner_->statfs(path);
}

Status ForwardingBackend::access(const std::string& path, int mask) {
  if (Status s = Before(Op::kAccess, kNoDeadline); !s.ok()) return s;
  return inner_->access(path, mask);
}

Result<std::string> ForwardingBackend::getxattr(const std::string& path, const std::string& name, OpenFile* f) {
  if (Status s = Before(Op::kGetxattr, kNoDeadline); !s.ok()) return s;
  return inner_->getxattr(path, name, f);
}

Result<std::vector<std::string>> ForwardingBackend::listxattr(const std::string& path, OpenFile* f) {
  if (Status s = Before(Op::kListxattr, kNoDeadline); !s.ok()) return s;
  return inner_->listxattr(path, f);
}

Status ForwardingBackend::setxattr(const std::string& path, const std::string& name, const std::string& value,
                                   int flags, OpenFile* f) {
  if (Status s = Before(Op::kSetxattr, kNoDeadline); !s.ok()) return s;
  return inner_->setxattr(path, name, value, flags, f);
}

Status ForwardingBackend::removexattr(const std::string& path, const std::string& name, OpenFile* f) {
  if (Status s = Before(Op::kRemovexattr, kNoDeadline); !s.ok()) return s;
  return inner_->removexattr(path, name, f);
}

// ---------------------------------------------------------------------------
// ReadOnlyBackend

namespace {

Status ReadOnly(const char* op, const std::string& what) {
  std::string context = op;
  if (!what.empty()) context += " " + what;
  return Status::ReadOnly(context + ": read-only source");
}

}  // namespace

Result<OpenFileRef> ReadOnlyBackend::create(const std::string& path, int, mode_t) {
  return ReadOnly("create", path);
}

Result<WriteResult> ReadOnlyBackend::write(OpenFile&, uint64_t, std::span<const char>) {
  return ReadOnly("write", "");
}

// Nothing was written, so there is nothing to make durable or to report at close.
Status ReadOnlyBackend::fsync(OpenFile&, bool) {
  return Status::Ok();
}

Status ReadOnlyBackend::flush(OpenFile&) {
  return Status::Ok();
}

Status ReadOnlyBackend::fallocate(OpenFile&, int, uint64_t, uint64_t) {
  return ReadOnly("fallocate", "");
}

Result<Attr> ReadOnlyBackend::setattr(const std::string& path, const SetAttr&, OpenFile*) {
  return ReadOnly("setattr", path);
}

Result<Attr> ReadOnlyBackend::mkdir(const std::string& path, mode_t) {
  return ReadOnly("mkdir", path);
}

Result<Attr> ReadOnlyBackend::mknod(const std::string& path, mode_t, dev_t) {
  return ReadOnly("mknod", path);
}

Result<Attr> ReadOnlyBackend::symlink(const std::string&, const std::string& path) {
  return ReadOnly("symlink", path);
}

Status ReadOnlyBackend::unlink(const std::string& path) {
  return ReadOnly("unlink", path);
}

Status ReadOnlyBackend::rmdir(const std::string& path) {
  return ReadOnly("rmdir", path);
}

Status ReadOnlyBackend::rename(const std::string& from, const std::string& to, unsigned) {
  return ReadOnly("rename", from + " -> " + to);
}

Result<Attr> ReadOnlyBackend::link(const std::string& existing, const std::string& newpath) {
  return ReadOnly("link", existing + " -> " + newpath);
}

// The kernel answers EROFS for xattr changes on a read-only filesystem.
Status ReadOnlyBackend::setxattr(const std::string& path, const std::string& name, const std::string&, int, OpenFile*) {
  return ReadOnly("setxattr", path + " " + name);
}

Status ReadOnlyBackend::removexattr(const std::string& path, const std::string& name, OpenFile*) {
  return ReadOnly("removexattr", path + " " + name);
}

Result<std::string> ReadOnlyBackend::readlink(const std::string& path) {
  return Status::Invalid("readlink " + path + ": not a symlink");
}

Result<std::string> ReadOnlyBackend::getxattr(const std::string& path, const std::string& name, OpenFile*) {
  return Status::FromErrno(ENODATA, "getxattr " + path + " " + name);
}

Result<std::vector<std::string>> ReadOnlyBackend::listxattr(const std::string&, OpenFile*) {
  return std::vector<std::string>{};
}

// Nothing can be written. Reading and searching are left to the mode bits in
// the attributes the source gave (the kernel checks them with default_permissions).
Status ReadOnlyBackend::access(const std::string& path, int mask) {
  if (mask & W_OK) return ReadOnly("access", path);
  return Status::Ok();
}

}  // namespace cachefuse::netfs
