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

namespace {

// Completion of one read of a batch: counts down the batch.
struct BatchDone final : IoCompletion {
  ReadOp* op = nullptr;
  std::mutex* mu = nullptr;
  std::condition_variable* cv = nullptr;
  size_t* left = nullptr;
  void OnIoComplete(ssize_t result) override {
    std::lock_guard lk(*mu);
    op->result = result;
    if (--*left == 0) cv->notify_all();
  }
};

}  // namespace

void IoEngine::ReadBatchSync(ReadOp* ops, size_t n) {
  if (n == 0) return;
  std::mutex mu;
  std::condition_variable cv;
  size_t left = n;
  thread_local std::vector<BatchDone> done;
  done.resize(n);
  for (size_t i = 0; i < n; ++i) {
    done[i].op = &ops[i];
    done[i].mu = &mu;
    done[i].cv = &cv;
    done[i].left = &left;
  }
  for (size_t i = 0; i < n; ++i) Read(ops[i].fd, ops[i].off, ops[i].buf, ops[i].len, ops[i].buf_index, &done[i]);
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return left == 0; });
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
