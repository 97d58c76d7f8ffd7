// FaultBackend: wraps any Backend and injects latency, errors and short reads.
// Tests use it directly; the daemon builds one from the debug_backend_* options.
#pragma once

#include <atomic>
#include <memory>

#include "netfs_backends/backend.h"

namespace cachefuse::netfs {

struct FaultPlan {
  unsigned latency_ms = 0;      // added to every read_range (and stat/list/open)
  unsigned fail_every_nth = 0;  // every Nth read_range fails with fail_errno (0 = never)
  int fail_errno = EIO;
  unsigned short_every_nth = 0;  // every Nth read_range returns half of what was asked
};

class FaultBackend final : public Backend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, FaultPlan plan) : inner_(std::move(inner)), plan_(plan) {}

  // Counters for tests: how many read_range calls and bytes reached the inner backend.
  uint64_t reads() const { return reads_.load(); }
  uint64_t bytes_read() const { return bytes_.load(); }

  std::string describe() const override { return inner_->describe(); }
  Capabilities capabilities() const override { return inner_->capabilities(); }
  Result<Attr> stat(const std::string& path) override;
  Result<std::vector<DirEntry>> list(const std::string& dir) override;
  Result<Handle> open(const std::string& path, int flags) override;
  Result<Handle> create(const std::string& path, int flags, mode_t mode) override {
    return inner_->create(path, flags, mode);
  }
  void close(Handle h) override { inner_->close(h); }
  Result<Attr> fstat(Handle h) override { return inner_->fstat(h); }
  Result<size_t> read_range(Handle h, uint64_t offset, std::span<const struct iovec> bufs) override;
  Result<size_t> write(Handle h, uint64_t offset, std::span<const char> data) override {
    return inner_->write(h, offset, data);
  }
  Status fsync(Handle h, bool datasync) override { return inner_->fsync(h, datasync); }
  Status fallocate(Handle h, int mode, uint64_t offset, uint64_t length) override {
    return inner_->fallocate(h, mode, offset, length);
  }
  Result<Attr> setattr(const std::string& path, const SetAttr& change, std::optional<Handle> h) override {
    return inner_->setattr(path, change, h);
  }
  Result<Attr> mkdir(const std::string& path, mode_t mode) override { return inner_->mkdir(path, mode); }
  Result<Attr> mknod(const std::string& path, mode_t mode, dev_t rdev) override {
    return inner_->mknod(path, mode, rdev);
  }
  Result<Attr> symlink(const std::string& target, const std::string& path) override {
    return inner_->symlink(target, path);
  }
  Result<std::string> readlink(const std::string& path) override { return inner_->readlink(path); }
  Status unlink(const std::string& path) override { return inner_->unlink(path); }
  Status rmdir(const std::string& path) override { return inner_->rmdir(path); }
  Status rename(const std::string& from, const std::string& to, unsigned flags) override {
    return inner_->rename(from, to, flags);
  }
  Result<Attr> link(const std::string& existing, const std::string& newpath) override {
    return inner_->link(existing, newpath);
  }
  Result<struct statvfs> statfs(const std::string& path) override { return inner_->statfs(path); }
  Status access(const std::string& path, int mask) override { return inner_->access(path, mask); }
  Result<std::string> getxattr(const std::string& path, const std::string& name,
                               std::optional<Handle> h = std::nullopt) override {
    return inner_->getxattr(path, name, h);
  }
  Result<std::vector<std::string>> listxattr(const std::string& path, std::optional<Handle> h = std::nullopt) override {
    return inner_->listxattr(path, h);
  }
  Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                  std::optional<Handle> h = std::nullopt) override {
    return inner_->setxattr(path, name, value, flags, h);
  }
  Status removexattr(const std::string& path, const std::string& name,
                     std::optional<Handle> h = std::nullopt) override {
    return inner_->removexattr(path, name, h);
  }

 private:
  void Delay() const;

  std::unique_ptr<Backend> inner_;
  const FaultPlan plan_;
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace cachefuse::netfs
