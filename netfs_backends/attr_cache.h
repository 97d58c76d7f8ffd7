// AttrCacheBackend: an in-memory cache of attributes and listings in front of
// a source, so repeated lookups and getattrs within their lifetime cost no
// round trip. stat results live attr_ttl, listings entry_ttl (the mount's
// attr_timeout and entry_timeout); a listing also fills the attributes of its
// entries. A change made through this layer (write, setattr, create, unlink,
// rename, ...) drops what it touches: the path, its parent's listing, and for
// renames and directory removals everything below. Negative answers (ENOENT)
// are not kept. Bounded: least recently stored entries go first past max_entries.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "netfs_backends/backend.h"

namespace cachefuse::netfs {

struct AttrCacheOptions {
  std::chrono::milliseconds attr_ttl{1000};
  std::chrono::milliseconds entry_ttl{1000};
  size_t max_entries = 200000;
};

class AttrCacheBackend final : public ForwardingBackend {
 public:
  using NowFn = std::function<Clock::time_point()>;
  AttrCacheBackend(std::unique_ptr<Backend> inner, AttrCacheOptions options, NowFn now = {});
  ~AttrCacheBackend() override;  // where Impl is complete

  // Drops what is known of path (and its parent's listing); recursive: all below too.
  void Drop(const std::string& path, bool recursive = false);
  void DropAll();
  // Counters for tests and stats: answers served from memory.
  uint64_t hits() const;
  uint64_t misses() const;

  Result<Attr> stat(const std::string& path) override;
  Result<std::vector<DirEntry>> list(const std::string& dir) override;
  Result<OpenFileRef> open(const std::string& path, int flags) override;
  Result<OpenFileRef> create(const std::string& path, int flags, mode_t mode) override;
  Result<WriteResult> write(OpenFile& f, uint64_t offset, std::span<const char> data) override;
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

 private:
  // Implementation detail left to attr_cache.cpp (maps guarded by mu_).
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AttrCacheOptions options_;
  NowFn now_;
};

}  // namespace cachefuse::netfs
