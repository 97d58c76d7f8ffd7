// UringEngine: asynchronous O_DIRECT I/O on backing files through io_uring.
//
// One ring; submitters serialize on sq_mu_; one reaper thread completes. The
// queue depth bounds I/O in flight: a submitter waits when the ring is full.
#pragma once

#include <liburing.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "cache/io_engine.h"

namespace cachefuse::cache {

class UringEngine final : public IoEngine {
 public:
  static Result<std::unique_ptr<UringEngine>> Create(Stats* stats, unsigned depth = 128);
  ~UringEngine() override;

  const char* name() const override { return "uring"; }
  bool direct() const override { return true; }
  void Read(int fd, uint64_t off, void* buf, size_t len, int buf_index, IoCompletion* done) override;
  void Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index, IoCompletion* done) override;
  void Fdatasync(int fd, IoCompletion* done) override;
  bool RegisterBuffers(const std::vector<struct iovec>& bufs) override;
  void Shutdown() override;
  // On a small ring of the calling thread (single issuer, deferred task work):
  // the thread submits its reads and reaps them itself.
  void ReadBatchSync(ReadOp* ops, size_t n) override;

 private:
  UringEngine(Stats* stats, unsigned depth) : stats_(stats), depth_(depth) {}
  // Takes a free SQE (waiting for room), lets prep fill it, submits. Once the
  // ring is stopped, runs `blocking` (the plain syscall) on the caller's thread.
  template <typename Prep, typename Blocking>
  void Submit(IoCompletion* done, Prep prep, Blocking blocking);
  void Reap();

  Stats* stats_;
  const unsigned depth_;
  struct io_uring ring_ {};
  std::mutex sq_mu_;                 // serializes SQE preparation and submission
  std::condition_variable room_cv_;  // signalled when in-flight I/O completes
  unsigned inflight_ = 0;            // guarded by sq_mu_
  bool stopping_ = false;            // guarded by sq_mu_
  bool registered_ = false;          // fixed buffers registered (set before any I/O)
  std::thread reaper_;
  const uint64_t id_ = NextId();  // tells thread-local rings of different engines apart
  static uint64_t NextId();
};

}  // namespace cachefuse::cache
