// BufferPool: an mmap'd arena cut into equal buffers and a free list of indices.
#include "cache/buffer_pool.h"

#include <sys/mman.h>

#include <new>

namespace cachefuse::cache {

BufferPool::BufferPool(size_t buf_size, size_t count, size_t reserve)
    : buf_size_(buf_size), count_(count), reserve_(reserve < count ? reserve : count - 1) {
  void* p = ::mmap(nullptr, buf_size * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<char*>(p);
  free_.reserve(count);
  for (size_t i = count; i > 0; --i) free_.push_back(static_cast<int>(i - 1));
}

BufferPool::~BufferPool() {
  ::munmap(base_, buf_size_ * count_);
}

std::vector<struct iovec> BufferPool::Iovecs() const {
  std::vector<struct iovec> v(count_);
  for (size_t i = 0; i < count_; ++i) v[i] = {base_ + i * buf_size_, buf_size_};
  return v;
}

void BufferPool::Acquire(size_t n, int* out) {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return free_.size() >= n; });
  for (size_t i = 0; i < n; ++i) {
    out[i] = free_.back();
    free_.pop_back();
  }
}

int BufferPool::TryAcquire() {
  std::lock_guard lk(mu_);
  if (free_.size() <= reserve_) return -1;
  int idx = free_.back();
  free_.pop_back();
  return idx;
}

void BufferPool::Release(int index) {
  std::lock_guard lk(mu_);
  free_.push_back(index);
  cv_.notify_all();
}

bool BufferPool::HasSpare() const {
  std::lock_guard lk(mu_);
  return free_.size() > reserve_;
}

size_t BufferPool::free_count() const {
  std::lock_guard lk(mu_);
  return free_.size();
}

}  // namespace cachefuse::cache
