// SyncEngine: pread/pwrite/fdatasync on a few worker threads; the fallback engine.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "cache/io_engine.h"

namespace cachefuse::cache {

class SyncEngine final : public IoEngine {
 public:
  // direct: whether backing files get O_DIRECT (alignment is then the caller's job).
  SyncEngine(Stats* stats, bool direct, unsigned threads = 4);
  ~SyncEngine() override { Shutdown(); }

  const char* name() const override { return "sync"; }
  bool direct() const override { return direct_; }
  void Read(int fd, uint64_t off, void* buf, size_t len, int buf_index, IoCompletion* done) override;
  void Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index, IoCompletion* done) override;
  void Fdatasync(int fd, IoCompletion* done) override;
  void Shutdown() override;

 private:
  enum class Op { kRead, kWrite, kSync };
  struct Job {
    Op op;
    int fd;
    uint64_t off;
    void* buf;
    size_t len;
    IoCompletion* done;
  };
  void Enqueue(const Job& job);
  void Worker();
  ssize_t Run(const Job& job);

  Stats* stats_;
  const bool direct_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace cachefuse::cache
