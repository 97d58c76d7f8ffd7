// IoEngine: blocking helpers and the choice of engine for a cache dir.
#include "cache/io_engine.h"

#include <unistd.h>

#include <cerrno>

#include "cache/sync_engine.h"
#include "cache/uring_engine.h"

namespace cachefuse::cache {

void WaitableCompletion::OnIoComplete(ssize_t result) {
  std::lock_guard lk(mu_);
  result_ = result;
  done_ = true;
  cv_.notify_all();
}

ssize_t WaitableCompletion::Wait() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return done_; });
  return result_;
}

ssize_t IoEngine::ReadSync(int fd, uint64_t off, void* buf, size_t len, int buf_index) {
  WaitableCompletion c;
  Read(fd, off, buf, len, buf_index, &c);
  return c.Wait();
}

ssize_t IoEngine::WriteSync(int fd, uint64_t off, const void* buf, size_t len, int buf_index) {
  WaitableCompletion c;
  Write(fd, off, buf, len, buf_index, &c);
  return c.Wait();
}

int IoEngine::SyncfsSync(int fd) {
  return ::syncfs(fd) == 0 ? 0 : -errno;
}

int IoEngine::FdatasyncSync(int fd) {
  WaitableCompletion c;
  Fdatasync(fd, &c);
  return static_cast<int>(c.Wait());
}

Result<std::unique_ptr<IoEngine>> MakeEngine(EngineChoice choice, bool direct_ok, Stats* stats, std::string* why) {
  if (choice == EngineChoice::kSync) {
    *why = "io_engine=sync was asked for";
    return std::unique_ptr<IoEngine>(std::make_unique<SyncEngine>(stats, direct_ok));
  }
  if (!direct_ok) {
    if (choice == EngineChoice::kUring) {
      return Status::NotSupported("io_engine=uring needs O_DIRECT, which the cache filesystem does not support");
    }
    if (why->empty()) *why = "the cache filesystem does not support O_DIRECT";
    return std::unique_ptr<IoEngine>(std::make_unique<SyncEngine>(stats, false));
  }
  auto uring = UringEngine::Create(stats);
  if (uring.ok()) {
    *why = "io_uring and O_DIRECT work on the cache filesystem";
    return std::unique_ptr<IoEngine>(std::move(uring.value()));
  }
  if (choice == EngineChoice::kUring) return uring.status();
  *why = "io_uring is unavailable (" + uring.status().ToString() + ")";
  return std::unique_ptr<IoEngine>(std::make_unique<SyncEngine>(stats, true));
}

}  // namespace cachefuse::cache
