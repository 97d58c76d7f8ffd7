// Backend: the one interface to a source file tree (posix, later http/nfs/smb).
//
// A backend knows nothing of the cache or of FUSE. Paths are relative to the
// SOURCE root ("" is the root itself) and never contain "..", "." or empty
// components; backends reject anything else. Every call is safe to make from
// many threads at once. Errors are Status values carrying an errno.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace cachefuse::netfs {

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
};

struct DirEntry {
  std::string name;
  Attr attr;
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

using Handle = uint64_t;

class Backend {
 public:
  virtual ~Backend() = default;

  // "posix:/srv/data" and the like, for logs and the volume key.
  virtual std::string describe() const = 0;
  virtual Capabilities capabilities() const = 0;

  // Attributes of path; does not follow a final symlink.
  virtual Result<Attr> stat(const std::string& path) = 0;
  // Entries of a directory with their attributes (no "." or "..").
  virtual Result<std::vector<DirEntry>> list(const std::string& dir) = 0;

  // Open an existing regular file. Handles are cheap to hold.
  virtual Result<Handle> open(const std::string& path, int flags) = 0;
  // Create and open a regular file (O_CREAT implied).
  virtual Result<Handle> create(const std::string& path, int flags, mode_t mode) = 0;
  virtual void close(Handle h) = 0;
  // Attributes through an open handle (after writes, to learn the new token).
  virtual Result<Attr> fstat(Handle h) = 0;

  // Read up to the buffers' total size at offset, filling them in order. May
  // return fewer bytes (a short read); 0 means end of file. The only call on
  // the data path; many may run at once.
  virtual Result<size_t> read_range(Handle h, uint64_t offset, std::span<const struct iovec> bufs) = 0;
  // read_range into one buffer.
  Result<size_t> read_buf(Handle h, uint64_t offset, std::span<char> buf) {
    struct iovec iov {
      buf.data(), buf.size()
    };
    return read_range(h, offset, std::span<const struct iovec>(&iov, 1));
  }
  // Write all of data at offset (write-through); returns the bytes written.
  virtual Result<size_t> write(Handle h, uint64_t offset, std::span<const char> data) = 0;
  virtual Status fsync(Handle h, bool datasync) = 0;
  // fallocate(2) modes (keep size, punch hole, zero range); ENOTSUP where the source has none.
  virtual Status fallocate(Handle h, int mode, uint64_t offset, uint64_t length) = 0;

  // setattr through a handle when one is given (ftruncate/fchmod), else by path.
  virtual Result<Attr> setattr(const std::string& path, const SetAttr& change, std::optional<Handle> h) = 0;
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

  // Extended attributes, by path, or through an open handle when one is given
  // (a file whose name is gone, still open).
  virtual Result<std::string> getxattr(const std::string& path, const std::string& name,
                                       std::optional<Handle> h = std::nullopt) = 0;
  virtual Result<std::vector<std::string>> listxattr(const std::string& path,
                                                     std::optional<Handle> h = std::nullopt) = 0;
  virtual Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                          std::optional<Handle> h = std::nullopt) = 0;
  virtual Status removexattr(const std::string& path, const std::string& name,
                             std::optional<Handle> h = std::nullopt) = 0;
};

// An open backend handle shared by a file handle and the I/O it started;
// closed when the last holder lets go.
class OpenFile {
 public:
  OpenFile(Backend* backend, Handle handle) : backend_(backend), handle_(handle) {}
  ~OpenFile() { backend_->close(handle_); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  Backend& backend() const { return *backend_; }
  Handle handle() const { return handle_; }

 private:
  Backend* const backend_;
  const Handle handle_;
};
using OpenFileRef = std::shared_ptr<OpenFile>;

// True for a path the backends accept: "" or "a/b/c" with no "", "." or ".." component.
bool IsCleanRelativePath(const std::string& path);

// Joins a directory path and a child name ("" + "a" = "a", "a" + "b" = "a/b").
std::string JoinPath(const std::string& dir, const std::string& name);

// Opens the backend for SOURCE; fails with a message naming the problem.
Result<std::unique_ptr<Backend>> OpenBackend(const std::string& source);

}  // namespace cachefuse::netfs
