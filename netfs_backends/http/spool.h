// Spool: the whole body of one open file from a server that ignores Range,
// streamed once into an unlinked temporary file (O_TMPFILE in $TMPDIR or
// /var/tmp) and read from there: a read anywhere in the file waits until the
// stream has passed it, and the file is fetched once per open, not once per
// granule. A fill that fails transiently is started again by the next read
// (the bytes already spooled stay); a fill that finds another version of the
// file fails every read of this open (kStale).
//
// Thread safety: every call may come from any thread; mu_ guards the state,
// the fill runs on a thread of its own, which the destructor cancels and joins.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <span>
#include <thread>

#include "common/status.h"
#include "common/unique_fd.h"
#include "netfs_backends/backend.h"

namespace cachefuse::netfs::http {

class Spool {
 public:
  // fill: streams the file from byte 0, handing every piece to Accept; runs on
  // the spool's thread; returns why it stopped (Ok at the end of the body).
  using FillFn = std::function<Status(Spool&)>;
  Spool(uint64_t size, FillFn fill) : size_(size), fill_(std::move(fill)) {}
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // want bytes at offset (offset + want <= size) into bufs, once the stream
  // has brought them; starts the fill if it is not running. Fails with the
  // fill's error, or kTimeout at deadline (the fill goes on).
  Result<size_t> Read(uint64_t offset, std::span<const struct iovec> bufs, size_t want, Deadline deadline);

  // For the fill: the piece of the body at pos (pos counts from byte 0 of
  // this stream). What is already spooled is skipped. False: stop (cancelled,
  // or the temporary file cannot be written: the reason is kept).
  bool Accept(uint64_t pos, const char* data, size_t n);
  const std::atomic<bool>& cancelled() const { return cancel_; }
  uint64_t size() const { return size_; }

 private:
  Status OpenFileLocked();
  void Run();

  const uint64_t size_;
  const FillFn fill_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  UniqueFd fd_;           // GUARDED_BY(mu_) for opening; then only read
  uint64_t filled_ = 0;   // GUARDED_BY(mu_): bytes [0, filled_) are in fd_
  bool running_ = false;  // GUARDED_BY(mu_)
  Status failed_;         // GUARDED_BY(mu_): why the last fill stopped short
  Status write_error_;    // written by the fill thread only (Accept)
  std::thread thread_;    // GUARDED_BY(mu_)
};

}  // namespace cachefuse::netfs::http
