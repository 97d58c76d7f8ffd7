// Volume: cookie acquisition and the fan-out directories of one source's objects.
#include "cache/volume.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "cache/cache.h"
#include "cache/cookie.h"
#include "cache/layout.h"

namespace cachefuse::cache {

CookieRef Volume::Acquire(const std::string& key, const std::string& aux, uint64_t size) {
  CookieRef existing;  // destroyed after mu_ is released (its destructor takes mu_)
  std::lock_guard lk(mu_);
  auto it = cookies_.find(key);
  if (it != cookies_.end()) {
    existing = it->second.lock();
    if (existing) return existing;
  }
  auto cookie = std::make_shared<Cookie>(this, key, aux, size);
  cookies_[key] = cookie;
  return cookie;
}

void Volume::Forget(const std::string& key, const Cookie* cookie) {
  CookieRef holder;
  std::lock_guard lk(mu_);
  auto it = cookies_.find(key);
  if (it == cookies_.end()) return;
  holder = it->second.lock();
  if (!holder || holder.get() == cookie) cookies_.erase(it);
}

Result<int> Volume::FanoutDir(const std::string& object_name) {
  const int idx = layout::FanoutIndex(object_name);
  if (idx < 0) return Status::Invalid("object name without a fan-out prefix: " + object_name);
  std::lock_guard lk(fanout_mu_);
  UniqueFd& fd = fanout_[static_cast<size_t>(idx)];
  if (!fd.valid()) {
    const std::string sub = layout::FanoutName(object_name);
    if (::mkdirat(dir_fd_.get(), sub.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir " + sub);
    }
    fd.reset(::openat(dir_fd_.get(), sub.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus("open " + sub);
  }
  return fd.get();
}

}  // namespace cachefuse::cache
