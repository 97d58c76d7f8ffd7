// FaultEngine: an IoEngine wrapper that fails or shortens I/O on purpose (tests,
// and the daemon's debug_cache_fail option).
#pragma once

#include <atomic>
#include <memory>

#include "cache/io_engine.h"

namespace cachefuse::cache {

struct EngineFaults {
  bool fail_reads = false;   // every read completes with -fail_errno
  bool fail_writes = false;  // every write completes with -fail_errno
  bool fail_syncs = false;   // every fdatasync completes with -fail_errno
  bool short_reads = false;  // reads complete with half the bytes
  int fail_errno = EIO;
};

class FaultEngine final : public IoEngine {
 public:
  FaultEngine(std::unique_ptr<IoEngine> inner, EngineFaults faults) : inner_(std::move(inner)), faults_(faults) {}

  const char* name() const override { return inner_->name(); }
  bool direct() const override { return inner_->direct(); }
  void Read(int fd, uint64_t off, void* buf, size_t len, int buf_index, IoCompletion* done) override;
  void Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index, IoCompletion* done) override;
  void Fdatasync(int fd, IoCompletion* done) override;
  int SyncfsSync(int fd) override { return fail_syncs_ ? -fail_errno_ : inner_->SyncfsSync(fd); }
  bool RegisterBuffers(const std::vector<struct iovec>& bufs) override { return inner_->RegisterBuffers(bufs); }
  void Shutdown() override { inner_->Shutdown(); }

  // Changeable while running (tests).
  void set_faults(const EngineFaults& f) {
    fail_reads_ = f.fail_reads;
    fail_writes_ = f.fail_writes;
    fail_syncs_ = f.fail_syncs;
    short_reads_ = f.short_reads;
    fail_errno_ = f.fail_errno;
  }

 private:
  std::unique_ptr<IoEngine> inner_;
  EngineFaults faults_;
  std::atomic<bool> fail_reads_{faults_.fail_reads};
  std::atomic<bool> fail_writes_{faults_.fail_writes};
  std::atomic<bool> fail_syncs_{faults_.fail_syncs};
  std::atomic<bool> short_reads_{faults_.short_reads};
  std::atomic<int> fail_errno_{faults_.fail_errno};
};

}  // namespace cachefuse::cache
