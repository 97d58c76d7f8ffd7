// UringEngine: io_uring submission under a mutex and a single reaper thread.
#include "cache/uring_engine.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace cachefuse::cache {
namespace {

// user_data of the NOP that tells the reaper to stop.
constexpr uint64_t kStopToken = 1;

// A syscall's result as an I/O result (-errno on failure), retried on EINTR.
template <typename F>
ssize_t Retry(F f) {
  for (;;) {
    ssize_t r = f();
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

}  // namespace

uint64_t UringEngine::NextId() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

namespace {

// A thread's own ring for ReadBatchSync: at most one per thread, remade when
// the thread works for another engine.
struct LocalRing {
  uint64_t engine = 0;
  bool ok = false;
  struct io_uring ring {};
  ~LocalRing() { Reset(); }
  void Reset() {
    if (ok) io_uring_queue_exit(&ring);
    ok = false;
    engine = 0;
  }
  bool For(uint64_t id) {
    if (ok && engine == id) return true;
    Reset();
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    ok = io_uring_queue_init_params(64, &ring, &p) == 0;
    if (!ok) ok = io_uring_queue_init(64, &ring, 0) == 0;  // kernels before 6.1
    engine = ok ? id : 0;
    return ok;
  }
};

thread_local LocalRing tl_ring;

}  // namespace

void UringEngine::ReadBatchSync(ReadOp* ops, size_t n) {
  if (n == 0) return;
  if (!tl_ring.For(id_)) {
    IoEngine::ReadBatchSync(ops, n);  // no ring for this thread: the shared one
    return;
  }
  struct io_uring* r = &tl_ring.ring;
  size_t submitted = 0;
  size_t completed = 0;
  while (completed < n) {
    while (submitted < n) {
      struct io_uring_sqe* sqe = io_uring_get_sqe(r);
      if (!sqe) break;
      io_uring_prep_read(sqe, ops[submitted].fd, ops[submitted].buf, static_cast<unsigned>(ops[submitted].len),
                         ops[submitted].off);
      io_uring_sqe_set_data64(sqe, submitted);
      ++submitted;
    }
    int rc = io_uring_submit_and_wait(r, 1);
    if (rc < 0 && rc != -EINTR) {
      // The ring failed: finish the rest as plain reads.
      for (size_t i = completed; i < n; ++i) {
        if (ops[i].result == 0) ops[i].result = -EIO;
      }
      tl_ring.Reset();
      break;
    }
    unsigned head;
    unsigned seen = 0;
    struct io_uring_cqe* cqe;
    io_uring_for_each_cqe(r, head, cqe) {
      ops[cqe->user_data].result = cqe->res;
      if (cqe->res < 0) stats_->io_errors++;
      ++seen;
    }
    io_uring_cq_advance(r, seen);
    completed += seen;
  }
  stats_->io_submitted += n;
  stats_->io_completed += n;
}

Result<std::unique_ptr<UringEngine>> UringEngine::Create(Stats* stats, unsigned depth) {
  std::unique_ptr<UringEngine> e(new UringEngine(stats, depth));
  int rc = io_uring_queue_init(depth, &e->ring_, 0);
  if (rc < 0) return Status::FromErrno(-rc, "io_uring_queue_init");
  stats->io_engine = "uring";
  e->reaper_ = std::thread([p = e.get()] { p->Reap(); });
  return e;
}

UringEngine::~UringEngine() {
  Shutdown();
  io_uring_queue_exit(&ring_);
}

bool UringEngine::RegisterBuffers(const std::vector<struct iovec>& bufs) {
  std::lock_guard lk(sq_mu_);
  if (registered_ || inflight_ != 0 || bufs.empty()) return registered_;
  int rc = io_uring_register_buffers(&ring_, bufs.data(), static_cast<unsigned>(bufs.size()));
  registered_ = rc == 0;
  return registered_;
}

template <typename Prep, typename Blocking>
void UringEngine::Submit(IoCompletion* done, Prep prep, Blocking blocking) {
  std::unique_lock lk(sq_mu_);
  room_cv_.wait(lk, [&] { return inflight_ < depth_ || stopping_; });
  struct io_uring_sqe* sqe = stopping_ ? nullptr : io_uring_get_sqe(&ring_);
  if (!sqe) {
    // Stopped: Cache::Close still persists maps after Shutdown, so the I/O
    // runs here, on the caller's thread, instead of failing.
    lk.unlock();
    stats_->io_submitted++;
    ssize_t res = blocking();
    if (res < 0) stats_->io_errors++;
    stats_->io_completed++;
    done->OnIoComplete(res);
    return;
  }
  prep(sqe);
  io_uring_sqe_set_data(sqe, done);
  int rc = io_uring_submit(&ring_);
  if (rc < 0) {
    // The SQE stays queued and goes with the next submit; count it in flight.
    stats_->io_errors++;
  }
  ++inflight_;
  stats_->io_submitted++;
}

void UringEngine::Read(int fd, uint64_t off, void* buf, size_t len, int buf_index, IoCompletion* done) {
  Submit(
      done,
      [&](struct io_uring_sqe* sqe) {
        if (registered_ && buf_index >= 0) {
          io_uring_prep_read_fixed(sqe, fd, buf, static_cast<unsigned>(len), off, buf_index);
        } else {
          io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), off);
        }
      },
      [&] { return Retry([&] { return ::pread(fd, buf, len, static_cast<off_t>(off)); }); });
}

void UringEngine::Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index, IoCompletion* done) {
  Submit(
      done,
      [&](struct io_uring_sqe* sqe) {
        if (registered_ && buf_index >= 0) {
          io_uring_prep_write_fixed(sqe, fd, buf, static_cast<unsigned>(len), off, buf_index);
        } else {
          io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), off);
        }
      },
      [&] { return Retry([&] { return ::pwrite(fd, buf, len, static_cast<off_t>(off)); }); });
}

void UringEngine::Fdatasync(int fd, IoCompletion* done) {
  Submit(
      done, [&](struct io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); },
      [&] { return Retry([&] { return static_cast<ssize_t>(::fdatasync(fd)); }); });
}

void UringEngine::Reap() {
  for (;;) {
    struct io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&ring_, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) {
      // The ring is broken; nothing more will complete. Should not happen.
      std::lock_guard lk(sq_mu_);
      stopping_ = true;
      room_cv_.notify_all();
      return;
    }
    uint64_t data = cqe->user_data;
    ssize_t res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    if (data == kStopToken) return;
    auto* done = reinterpret_cast<IoCompletion*>(data);
    if (res < 0) stats_->io_errors++;
    stats_->io_completed++;
    done->OnIoComplete(res);
    std::lock_guard lk(sq_mu_);
    --inflight_;
    room_cv_.notify_all();
  }
}

void UringEngine::Shutdown() {
  std::unique_lock lk(sq_mu_);
  if (!reaper_.joinable()) return;
  // Let in-flight I/O finish so no completion touches freed memory.
  room_cv_.wait(lk, [&] { return inflight_ == 0 || stopping_; });
  stopping_ = true;
  room_cv_.notify_all();
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe) {
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, kStopToken);
    io_uring_submit(&ring_);
  }
  lk.unlock();
  reaper_.join();
}

}  // namespace cachefuse::cache
