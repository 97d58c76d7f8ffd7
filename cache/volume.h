// Volume: the cache directory of one SOURCE, and the cookies acquired in it.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cachefuse::cache {

class Cache;
class Cookie;
using CookieRef = std::shared_ptr<Cookie>;

class Volume {
 public:
  Volume(Cache* cache, std::string key, std::string name, UniqueFd dir_fd)
      : cache_(cache), key_(std::move(key)), name_(std::move(name)), dir_fd_(std::move(dir_fd)) {}

  // The seed's fscache_acquire_cookie: at inode creation. key is the backend's
  // stable file identity, aux its coherency token, size the file size. No disk
  // I/O happens here; the backing file is opened by the first Cookie::Use.
  // A key that is already acquired returns the same cookie.
  CookieRef Acquire(const std::string& key, const std::string& aux, uint64_t size);

  // The fan-out directory for an object name, created on first use. Borrowed fd.
  Result<int> FanoutDir(const std::string& object_name);

  Cache* cache() const { return cache_; }
  const std::string& key() const { return key_; }
  // The volume's directory name under volumes/ (hash of the key).
  const std::string& name() const { return name_; }

  // Called by Cookie::Relinquish.
  void Forget(const std::string& key, const Cookie* cookie);

 private:
  Cache* const cache_;
  const std::string key_;
  const std::string name_;
  const UniqueFd dir_fd_;
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<Cookie>> cookies_;  // guarded by mu_
  std::mutex fanout_mu_;                                            // a leaf lock: taken under CacheObject::mu_
  std::array<UniqueFd, 256> fanout_;                                // guarded by fanout_mu_
};

}  // namespace cachefuse::cache
