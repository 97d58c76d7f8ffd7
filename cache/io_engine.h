// IoEngine: asynchronous reads, writes and fdatasync on cache backing files.
//
// Implementations: UringEngine (io_uring, O_DIRECT backing files), SyncEngine
// (pread/pwrite on worker threads), FaultEngine (tests: fails on purpose).
// Completions run on an engine thread and must be quick; they must not submit
// and wait for further I/O on the same engine. A completion may also run before
// Read/Write returns, on the caller's thread: never submit while holding a lock
// that the completion takes.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/stats.h"
#include "common/status.h"

namespace cachefuse::cache {

// The owner of an I/O embeds one of these, so a submission allocates nothing.
class IoCompletion {
 public:
  // result: bytes transferred, or -errno.
  virtual void OnIoComplete(ssize_t result) = 0;

 protected:
  ~IoCompletion() = default;
};

// One read of a batch (ReadBatchSync).
struct ReadOp {
  int fd = -1;
  uint64_t off = 0;
  void* buf = nullptr;
  size_t len = 0;
  int buf_index = -1;
  ssize_t result = 0;  // out: bytes read, or -errno
};

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  // "uring" or "sync" (what stats call io.engine).
  virtual const char* name() const = 0;
  // True if backing files should be opened with O_DIRECT for this engine.
  virtual bool direct() const = 0;

  // buf_index: index of buf in the registered buffer table, or -1.
  virtual void Read(int fd, uint64_t off, void* buf, size_t len, int buf_index, IoCompletion* done) = 0;
  virtual void Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index, IoCompletion* done) = 0;
  virtual void Fdatasync(int fd, IoCompletion* done) = 0;

  // Offers a fixed set of buffers for registration (io_uring fixed buffers).
  // Returns true if buf_index may be used with them from now on.
  virtual bool RegisterBuffers(const std::vector<struct iovec>& /*bufs*/) { return false; }
  // Waits for in-flight I/O and stops the engine's threads. Idempotent. I/O
  // submitted afterwards runs synchronously on the caller's thread.
  virtual void Shutdown() = 0;

  // Reads a batch at once and waits for all of it: for a thread that would
  // wait anyway (demand reads). The default submits with Read() and waits;
  // UringEngine uses a ring of the calling thread, so that no other thread
  // takes part (no wake-up of a reaper, no completion work in a sleeping
  // submitter).
  virtual void ReadBatchSync(ReadOp* ops, size_t n);

  // Blocking conveniences built on the async calls.
  ssize_t ReadSync(int fd, uint64_t off, void* buf, size_t len, int buf_index = -1);
  ssize_t WriteSync(int fd, uint64_t off, const void* buf, size_t len, int buf_index = -1);
  int FdatasyncSync(int fd);
  // syncfs(2) of the filesystem holding fd, synchronously: one flush for many
  // objects. 0 or -errno.
  virtual int SyncfsSync(int fd);
};

// A completion that a thread can wait on.
class WaitableCompletion final : public IoCompletion {
 public:
  void OnIoComplete(ssize_t result) override;
  ssize_t Wait();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  ssize_t result_ = 0;
};

enum class EngineChoice { kAuto, kUring, kSync };

// Builds the engine for a cache dir. `direct_ok`: O_DIRECT works on the cache
// filesystem. With kAuto, picks uring when it can, else sync; `why` says why.
Result<std::unique_ptr<IoEngine>> MakeEngine(EngineChoice choice, bool direct_ok, Stats* stats, std::string* why);

}  // namespace cachefuse::cache
