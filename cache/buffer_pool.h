// BufferPool: a fixed set of aligned, reused buffers for data in flight.
//
// One mapping of count * size bytes made at start-up; buffers are handed out by
// index, so the data path never allocates or faults in fresh memory per request.
// A reserve is kept for demand reads: TryAcquire (read-ahead) never takes the
// last `reserve` buffers, Acquire (demand) may wait for them.
#pragma once

#include <sys/uio.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace cachefuse::cache {

class BufferPool {
 public:
  BufferPool(size_t buf_size, size_t count, size_t reserve);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  size_t buf_size() const { return buf_size_; }
  size_t count() const { return count_; }
  char* data(int index) const { return base_ + static_cast<size_t>(index) * buf_size_; }
  // One iovec per buffer, for io_uring fixed-buffer registration.
  std::vector<struct iovec> Iovecs() const;

  // Takes n buffers at once (n <= count), waiting until they are free.
  void Acquire(size_t n, int* out);
  // Takes one buffer if more than the reserve is free; returns -1 otherwise.
  int TryAcquire();
  void Release(int index);
  size_t free_count() const;
  // True if more than the reserve is free (what TryAcquire would take from).
  bool HasSpare() const;

 private:
  const size_t buf_size_;
  const size_t count_;
  const size_t reserve_;
  char* base_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> free_;  // guarded by mu_
};

}  // namespace cachefuse::cache
