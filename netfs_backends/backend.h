// Backend: the one interface to a source file tree (posix, http, nfs, smb).
//
// A backend knows nothing of the cache or of FUSE. Paths are relative to the
// SOURCE root ("" is the root itself) and never contain "..", "." or empty
// components; backends reject anything else. Every call is safe to make from
// many threads at once. Errors are typed Status values (common/status.h): the
// kind says what callers decide on (retry, stale, read-only), the errno is the
// detail.
//
// Around a source sit layers written once (DESIGN.md section 5a), each a
// ForwardingBackend: the attribute/listing cache (attr_cache.h), the call
// policy with retries, deadlines and counters (retry_backend.h) and, for tests,
// fault injection (fault_backend.h). Sources are found by URL scheme in the
// registry (registry.h).
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cachefuse::netfs {

using Clock = std::chrono::steady_clock;
// When a call must have answered by; Deadline::max() means none.
using Deadline = Clock::time_point;
constexpr Deadline kNoDeadline = Deadline::max();

// The source's statement of a file's version. Equal tokens mean the file's data
// did not change; the cache stores the token as the object's aux data.
struct Coherency {
  std::string bytes;  // opaque, backend-defined, compared bytewise
  bool operator==(const Coherency&) const = default;
};

struct Attr {
  struct stat st {};     // as the source reports it (st_ino is the source's)
  Coherency coherency;   // meaningful for regular files
  std::string identity;  // stable file identity within this source: the cookie key
  // When the source said this, if it was not just now (an answer from the
  // attribute cache): callers that cache attributes further (the kernel)
  // shorten their lifetime by the age. The epoch means "now".
  Clock::time_point as_of{};
};

struct DirEntry {
  std::string name;
  Attr attr;
  // False when the listing gave the name and type but not attributes a
  // lookup can stand on (an HTTP index without sizes or exact times): attr
  // holds the type (and what the listing showed), no coherency token, and
  // callers stat() the entry before they use more than its type.
  bool attr_complete = true;
};

struct Capabilities {
  bool writable = false;
  bool hard_links = false;
  bool symlinks = false;
  bool xattrs = false;
  bool rename_noreplace = false;
  bool rename_exchange = false;
  bool special_files = false;  // mknod of FIFOs
  uint32_t max_name = 255;
};

// What setattr changes; unset fields stay as they are.
struct SetAttr {
  std::optional<mode_t> mode;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<uint64_t> size;
  std::optional<struct timespec> atime;  // tv_nsec may be UTIME_NOW
  std::optional<struct timespec> mtime;
};

// An open file of a source. Each source subclasses it with its own state (an
// fd, a file handle and a pooled connection, a URL); callers only hold it and
// give it back to the backend stack that opened it. Shared by a FUSE file
// handle and the I/O it started; the source closes it when the last holder
// lets go (the destructor), so in-flight reads never see a closed file.
class OpenFile {
 public:
  explicit OpenFile(Attr attr) : attr_(std::move(attr)) {}
  virtual ~OpenFile() = default;
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  // The attributes the source gave when the file was opened (or created): an
  // open costs one call, not an open and a stat.
  const Attr& attr() const { return attr_; }

 private:
  const Attr attr_;
};
using OpenFileRef = std::shared_ptr<OpenFile>;

// How read_range must answer.
struct ReadOptions {
  // When set: the bytes must come from this version of the file; if the source
  // can tell that they did not (the file changed, was truncated), the call
  // fails with Kind::kStale instead of returning them.
  const Coherency* expect = nullptr;
  // The call fails with Kind::kTimeout once this passes (sources that can
  // block honour it; a local disk may not).
  Deadline deadline = kNoDeadline;
};

struct WriteResult {
  size_t written = 0;
  Attr attr;  // the file's attributes after the write (the new coherency token)
};

// Every call the interface has, for counters and fault plans.
enum class Op : uint8_t {
  kStat,
  kList,
  kOpen,
  kCreate,
  kFstat,
  kRead,
  kWrite,
  kFsync,
  kFlush,
  kFallocate,
  kSetattr,
  kMkdir,
  kMknod,
  kSymlink,
  kReadlink,
  kUnlink,
  kRmdir,
  kRename,
  kLink,
  kStatfs,
  kAccess,
  kGetxattr,
  kListxattr,
  kSetxattr,
  kRemovexattr,
  kCount
};
constexpr size_t kOpCount = static_cast<size_t>(Op::kCount);
// "stat", "read", ... (for counters: backend.calls.stat).
const char* OpName(Op op);
// May the call be made again after a transient failure without changing what
// it does? (Reads and lookups yes; writes, creates, renames never.)
bool IsIdempotent(Op op);

class Backend {
 public:
  virtual ~Backend() = default;

  // "posix:/srv/data", "http://host/path/": for logs and the volume key. Never
  // holds credentials.
  virtual std::string describe() const = 0;
  virtual Capabilities capabilities() const = 0;

  // Attributes of path; does not follow a final symlink.
  virtual Result<Attr> stat(const std::string& path) = 0;
  // Entries of a directory with their attributes (no "." or "..").
  virtual Result<std::vector<DirEntry>> list(const std::string& dir) = 0;

  // Open an existing regular file; the result carries its attributes.
  virtual Result<OpenFileRef> open(const std::string& path, int flags) = 0;
  // Create and open a regular file (O_CREAT implied).
  virtual Result<OpenFileRef> create(const std::string& path, int flags, mode_t mode) = 0;
  // Attributes through an open file (a file whose name is gone, still open).
  virtual Result<Attr> fstat(OpenFile& f) = 0;

  // Read up to the buffers' total size at offset, filling them in order. May
  // return fewer bytes (a short read); 0 means end of file. The only call on
  // the data path; many may run at once.
  virtual Result<size_t> read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                                    const ReadOptions& options) = 0;
  // read_range into one buffer.
  Result<size_t> read_buf(OpenFile& f, uint64_t offset, std::span<char> buf, const ReadOptions& options = {}) {
    struct iovec iov {
      buf.data(), buf.size()
    };
    return read_range(f, offset, std::span<const struct iovec>(&iov, 1), options);
  }
  // Write all of data at offset (write-through).
  virtual Result<WriteResult> write(OpenFile& f, uint64_t offset, std::span<const char> data) = 0;
  virtual Status fsync(OpenFile& f, bool datasync) = 0;
  // A close(2) of one descriptor of the file (FUSE flush): reports write-back
  // errors the source keeps until close. The file stays open.
  virtual Status flush(OpenFile& f) = 0;
  // fallocate(2) modes (keep size, punch hole, zero range); ENOTSUP where the source has none.
  virtual Status fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) = 0;

  // setattr through an open file when one is given (ftruncate/fchmod), else by path.
  virtual Result<Attr> setattr(const std::string& path, const SetAttr& change, OpenFile* f) = 0;
  virtual Result<Attr> mkdir(const std::string& path, mode_t mode) = 0;
  virtual Result<Attr> mknod(const std::string& path, mode_t mode, dev_t rdev) = 0;
  virtual Result<Attr> symlink(const std::string& target, const std::string& path) = 0;
  virtual Result<std::string> readlink(const std::string& path) = 0;
  virtual Status unlink(const std::string& path) = 0;
  virtual Status rmdir(const std::string& path) = 0;
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  virtual Status rename(const std::string& from, const std::string& to, unsigned flags) = 0;
  virtual Result<Attr> link(const std::string& existing, const std::string& newpath) = 0;
  virtual Result<struct statvfs> statfs(const std::string& path) = 0;
  virtual Status access(const std::string& path, int mask) = 0;

  // Extended attributes, by path, or through an open file when one is given.
  virtual Result<std::string> getxattr(const std::string& path, const std::string& name, OpenFile* f) = 0;
  virtual Result<std::vector<std::string>> listxattr(const std::string& path, OpenFile* f) = 0;
  virtual Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                          OpenFile* f) = 0;
  virtual Status removexattr(const std::string& path, const std::string& name, OpenFile* f) = 0;

  // The source's own counters ("backend.http.requests", ...) for
  // cachefusectl stats; layers forward them. Default: none.
  virtual std::vector<std::pair<std::string, std::string>> SourceCounters() const { return {}; }
};

// Forwards every call to an inner backend: the base of every layer. A layer
// overrides what it changes; Before() runs ahead of each forwarded call and
// can fail it (fault injection) or note it (counters).
class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  Backend& inner() const { return *inner_; }

  std::string describe() const override { return inner_->describe(); }
  Capabilities capabilities() const override { return inner_->capabilities(); }
  Result<Attr> stat(const std::string& path) override;
  Result<std::vector<DirEntry>> list(const std::string& dir) override;
  Result<OpenFileRef> open(const std::string& path, int flags) override;
  Result<OpenFileRef> create(const std::string& path, int flags, mode_t mode) override;
  Result<Attr> fstat(OpenFile& f) override;
  Result<size_t> read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                            const ReadOptions& options) override;
  Result<WriteResult> write(OpenFile& f, uint64_t offset, std::span<const char> data) override;
  Status fsync(OpenFile& f, bool datasync) override;
  Status flush(OpenFile& f) override;
  Status fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) override;
  Result<Attr> setattr(const std::string& path, const SetAttr& change, OpenFile* f) override;
  Result<Attr> mkdir(const std::string& path, mode_t mode) override;
  Result<Attr> mknod(const std::string& path, mode_t mode, dev_t rdev) override;
  Result<Attr> symlink(const std::string& target, const std::string& path) override;
  Result<std::string> readlink(const std::string& path) override;
  Status unlink(const std::string& path) override;
  Status rmdir(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to, unsigned flags) override;
  Result<Attr> link(const std::string& existing, const std::string& newpath) override;
  Result<struct statvfs> statfs(const std::string& path) override;
  Status access(const std::string& path, int mask) override;
  Result<std::string> getxattr(const std::string& path, const std::string& name, OpenFile* f) override;
  Result<std::vector<std::string>> listxattr(const std::string& path, OpenFile* f) override;
  Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                  OpenFile* f) override;
  Status removexattr(const std::string& path, const std::string& name, OpenFile* f) override;
  std::vector<std::pair<std::string, std::string>> SourceCounters() const override { return inner_->SourceCounters(); }

 protected:
  // Runs before each call is forwarded; a non-ok Status is returned instead.
  // deadline: the call's (read_range), else kNoDeadline.
  virtual Status Before(Op op, Deadline deadline) {
    (void)op;
    (void)deadline;
    return Status::Ok();
  }

 private:
  std::unique_ptr<Backend> inner_;
};

// The base of sources that cannot write (http): every change answers EROFS,
// xattr changes ENOTSUP-or-EROFS as the kernel would, fsync/flush succeed.
class ReadOnlyBackend : public Backend {
 public:
  Result<OpenFileRef> create(const std::string& path, int flags, mode_t mode) override;
  Result<WriteResult> write(OpenFile& f, uint64_t offset, std::span<const char> data) override;
  Status fsync(OpenFile& f, bool datasync) override;
  Status flush(OpenFile& f) override;
  Status fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) override;
  Result<Attr> setattr(const std::string& path, const SetAttr& change, OpenFile* f) override;
  Result<Attr> mkdir(const std::string& path, mode_t mode) override;
  Result<Attr> mknod(const std::string& path, mode_t mode, dev_t rdev) override;
  Result<Attr> symlink(const std::string& target, const std::string& path) override;
  Status unlink(const std::string& path) override;
  Status rmdir(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to, unsigned flags) override;
  Result<Attr> link(const std::string& existing, const std::string& newpath) override;
  Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                  OpenFile* f) override;
  Status removexattr(const std::string& path, const std::string& name, OpenFile* f) override;
  // By default: no xattrs, readlink EINVAL (no symlinks), access by mode bits.
  Result<std::string> readlink(const std::string& path) override;
  Result<std::string> getxattr(const std::string& path, const std::string& name, OpenFile* f) override;
  Result<std::vector<std::string>> listxattr(const std::string& path, OpenFile* f) override;
  Status access(const std::string& path, int mask) override;
};

// True for a path the backends accept: "" or "a/b/c" with no "", "." or ".." component.
bool IsCleanRelativePath(const std::string& path);

// Joins a directory path and a child name ("" + "a" = "a", "a" + "b" = "a/b").
std::string JoinPath(const std::string& dir, const std::string& name);
// The parent directory of a clean path ("a/b" -> "a", "a" -> "").
std::string ParentPath(const std::string& path);

}  // namespace cachefuse::netfs
