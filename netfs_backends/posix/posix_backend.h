// PosixBackend: a source that is a local path (a kernel NFS/SMB mount, a disk).
#pragma once

#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "netfs_backends/backend.h"

namespace cachefuse::netfs {

class PosixBackend final : public Backend {
 public:
  // Fails with a message if root is missing or not a directory.
  static Result<std::unique_ptr<PosixBackend>> Open(const std::string& root);

  std::string describe() const override { return "posix:" + root_path_; }
  Capabilities capabilities() const override { return caps_; }
  // The root as opened: absolute, symlinks resolved.
  const std::string& root_path() const { return root_path_; }

  Result<Attr> stat(const std::string& path) override;
  Result<std::vector<DirEntry>> list(const std::string& dir) override;
  Result<OpenFileRef> open(const std::string& path, int flags) override;
  Result<OpenFileRef> create(const std::string& path, int flags, mode_t mode) override;
  Result<Attr> fstat(OpenFile& f) override;
  // Local reads do not block for long: options.deadline is not checked.
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

  // The token and identity this backend derives from a stat; exposed for tests.
  Attr MakeAttr(const struct stat& st) const;
  // Whether two tokens describe the same data (mtime, size and inode equal;
  // ctime may differ): the check read_range makes against ReadOptions::expect.
  static bool SameData(const Coherency& a, const Coherency& b);

 private:
  PosixBackend(std::string root_path, UniqueFd root_fd, dev_t root_dev, Capabilities caps)
      : root_path_(std::move(root_path)), root_fd_(std::move(root_fd)), root_dev_(root_dev), caps_(caps) {}

  // "." for the root, else the path itself: the name to pass to *at() calls.
  static const char* AtName(const std::string& path) { return path.empty() ? "." : path.c_str(); }
  // A path split into its parent directory (opened beneath the root, without
  // following any symlink) and its last component; the root is (root, ".").
  struct At {
    UniqueFd owned;
    int dirfd = -1;
    std::string leaf;
  };
  Result<At> Resolve(const std::string& path) const;
  Result<Attr> StatAt(const std::string& path) const;
  // An O_PATH fd of path (final symlink not followed), for xattr calls via /proc.
  Result<UniqueFd> OpenPath(const std::string& path) const;
  // openat2 beneath the root, then the file's attributes from one fstat.
  Result<OpenFileRef> OpenFileAt(const std::string& path, uint64_t flags, mode_t mode, const char* what) const;
  Result<Attr> FstatFd(int fd, const std::string& what) const;

  const std::string root_path_;
  const UniqueFd root_fd_;
  const dev_t root_dev_;
  const Capabilities caps_;
};

}  // namespace cachefuse::netfs
