// RetryBackend: the one call policy in front of every source. Idempotent calls
// (IsIdempotent) that fail with a retryable error (transient, timeout) are tried
// again with exponential backoff and full jitter, each attempt under a per-call
// deadline, all attempts under an overall budget; other calls go through once.
// Counts every call that reaches the source, by kind, and the retries,
// time-outs and errors (backend.* in cachefusectl stats).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "netfs_backends/backend.h"

namespace cachefuse::netfs {

struct RetryPolicy {
  unsigned max_attempts = 5;                       // retry_max + 1 (1: no retries)
  std::chrono::milliseconds initial_backoff{100};  // before the first retry
  std::chrono::milliseconds max_backoff{5000};     // cap of one wait
  std::chrono::milliseconds call_timeout{30000};   // deadline of one attempt (read_range)
  std::chrono::milliseconds budget{60000};         // all attempts and waits of one call
};

struct BackendCounters {
  using Counter = std::atomic<uint64_t>;
  Counter calls[kOpCount] = {};  // calls that reached the source, each attempt counted
  Counter retries{0};            // attempts after the first
  Counter timeouts{0};           // attempts that ended in Kind::kTimeout
  Counter errors{0};             // calls that failed for good (after any retries), not counting
                                 // not-found answers to lookups (those are answers, not errors)
  uint64_t total_calls() const;
  // ("backend.calls.stat", "12"), ..., ("backend.retries", ...): every kind, fixed order.
  std::vector<std::pair<std::string, std::string>> Snapshot() const;
};

class RetryBackend final : public ForwardingBackend {
 public:
  // sleep: how to wait between attempts (tests pass a fake that records the waits).
  using SleepFn = std::function<void(std::chrono::milliseconds)>;
  RetryBackend(std::unique_ptr<Backend> inner, RetryPolicy policy, SleepFn sleep = {});

  const BackendCounters& counters() const { return counters_; }
  const RetryPolicy& policy() const { return policy_; }

  // Every call of the Backend interface is overridden (each counts), the
  // idempotent ones retried.
  Result<Attr> stat(const std::string& path) override;
  Result<std::vector<DirEntry>> list(const std::string& dir) override;
  Result<OpenFileRef> open(const std::string& path, int flags) override;
  Result<OpenFileRef> create(const std::string& path, int flags, mode_t mode) override;
  Result<Attr> fstat(OpenFile& f) override;
  Result<size_t> read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                            const ReadOptions& options) override;
  Result<WriteResult> write(OpenFile& f, uint64_t offset, std::span<const char> data) override;
  Status fsync(OpenFile& f, bool datasync) override;
  Status flush(OpenFile& f) override;
  Status fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) override;
  Result<Attr> setattr(const std::string& path, const SetAttr& change, OpenFile* f) override;
  Result<Attr> mkdir(const std::string& path, mode_t mode) override;
  Result<Attr> mknod(const std::string& path, mode_t mode, dev_t rdev) override;
  Result<Attr> symlink(const std::string& target, const std::string& path) override;
  Result<std::string> readlink(const std::string& path) override;
  Status unlink(const std::string& path) override;
  Status rmdir(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to, unsigned flags) override;
  Result<Attr> link(const std::string& existing, const std::string& newpath) override;
  Result<struct statvfs> statfs(const std::string& path) override;
  Status access(const std::string& path, int mask) override;
  Result<std::string> getxattr(const std::string& path, const std::string& name, OpenFile* f) override;
  Result<std::vector<std::string>> listxattr(const std::string& path, OpenFile* f) override;
  Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                  OpenFile* f) override;
  Status removexattr(const std::string& path, const std::string& name, OpenFile* f) override;

 private:
  std::chrono::milliseconds Backoff(unsigned retry) const;
  template <typename Attempt>
  auto Run(Op op, bool retry, Deadline end, Attempt&& attempt) -> decltype(attempt(kNoDeadline));
  template <typename Attempt>
  auto Call(Op op, Attempt&& attempt) -> decltype(attempt());

  RetryPolicy policy_;
  SleepFn sleep_;
  BackendCounters counters_;
};

}  // namespace cachefuse::netfs
