// FaultBackend: deterministic fault injection in front of a real backend.
#include "netfs_backends/fault_backend.h"

#include <chrono>
#include <thread>

namespace cachefuse::netfs {

void FaultBackend::Delay() const {
  if (plan_.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(plan_.latency_ms));
}

Result<Attr> FaultBackend::stat(const std::string& path) {
  Delay();
  return inner_->stat(path);
}

Result<std::vector<DirEntry>> FaultBackend::list(const std::string& dir) {
  Delay();
  return inner_->list(dir);
}

Result<Handle> FaultBackend::open(const std::string& path, int flags) {
  Delay();
  return inner_->open(path, flags);
}

Result<size_t> FaultBackend::read_range(Handle h, uint64_t offset, std::span<const struct iovec> bufs) {
  Delay();
  uint64_t n = ++calls_;
  if (plan_.fail_every_nth != 0 && n % plan_.fail_every_nth == 0) {
    return Status::FromErrno(plan_.fail_errno, "injected read failure");
  }
  struct iovec first {};
  if (plan_.short_every_nth != 0 && n % plan_.short_every_nth == 0 && !bufs.empty() && bufs[0].iov_len > 1) {
    // A short read: half of the first buffer only.
    first = {bufs[0].iov_base, bufs[0].iov_len / 2};
    bufs = std::span<const struct iovec>(&first, 1);
  }
  auto r = inner_->read_range(h, offset, bufs);
  if (r.ok()) {
    ++reads_;
    bytes_ += *r;
  }
  return r;
}

}  // namespace cachefuse::netfs
