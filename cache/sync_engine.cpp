// SyncEngine: a queue of jobs served by worker threads with plain syscalls.
#include "cache/sync_engine.h"

#include <unistd.h>

#include <cerrno>

namespace cachefuse::cache {

SyncEngine::SyncEngine(Stats* stats, bool direct, unsigned threads) : stats_(stats), direct_(direct) {
  stats_->io_engine = "sync";
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { Worker(); });
}

void SyncEngine::Enqueue(const Job& job) {
  stats_->io_submitted++;
  {
    std::lock_guard lk(mu_);
    if (!stopping_) {
      queue_.push_back(job);
      cv_.notify_one();
      return;
    }
  }
  // Stopped: no worker takes jobs any more (Cache::Close still persists maps
  // after Shutdown), so the I/O runs here, on the caller's thread.
  ssize_t r = Run(job);
  if (r < 0) stats_->io_errors++;
  stats_->io_completed++;
  job.done->OnIoComplete(r);
}

void SyncEngine::Read(int fd, uint64_t off, void* buf, size_t len, int /*buf_index*/, IoCompletion* done) {
  Enqueue({Op::kRead, fd, off, buf, len, done});
}

void SyncEngine::Write(int fd, uint64_t off, const void* buf, size_t len, int /*buf_index*/, IoCompletion* done) {
  Enqueue({Op::kWrite, fd, off, const_cast<void*>(buf), len, done});
}

void SyncEngine::Fdatasync(int fd, IoCompletion* done) {
  Enqueue({Op::kSync, fd, 0, nullptr, 0, done});
}

ssize_t SyncEngine::Run(const Job& job) {
  for (;;) {
    ssize_t r = 0;
    switch (job.op) {
      case Op::kRead:
        r = ::pread(job.fd, job.buf, job.len, static_cast<off_t>(job.off));
        break;
      case Op::kWrite:
        r = ::pwrite(job.fd, job.buf, job.len, static_cast<off_t>(job.off));
        break;
      case Op::kSync:
        r = ::fdatasync(job.fd);
        break;
    }
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

void SyncEngine::Worker() {
  for (;;) {
    Job job{};
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and the queue is drained
      job = queue_.front();
      queue_.pop_front();
    }
    ssize_t r = Run(job);
    if (r < 0) stats_->io_errors++;
    stats_->io_completed++;
    job.done->OnIoComplete(r);
  }
}

void SyncEngine::Shutdown() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace cachefuse::cache
