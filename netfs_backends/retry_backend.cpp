// RetryBackend: retries of idempotent calls with backoff and jitter, per-attempt
// deadlines, an overall budget, and the backend.* counters.
#include "netfs_backends/retry_backend.h"

#include <fcntl.h>

#include <algorithm>
#include <random>
#include <thread>

namespace cachefuse::netfs {
namespace {

using std::chrono::milliseconds;

const Status& StatusOf(const Status& s) {
  return s;
}
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

// Full jitter (a uniform wait in [0, cap]): clients that failed together do
// not come back together.
milliseconds Jittered(milliseconds cap) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (cap.count() <= 0) return milliseconds(0);
  std::uniform_int_distribution<int64_t> dist(0, cap.count());
  return milliseconds(dist(rng));
}

// t + d, or kNoDeadline where that would overflow (a budget of "forever").
Deadline After(Clock::time_point t, milliseconds d) {
  if (d >= std::chrono::duration_cast<milliseconds>(kNoDeadline - t)) return kNoDeadline;
  return t + d;
}

}  // namespace

uint64_t BackendCounters::total_calls() const {
  uint64_t n = 0;
  for (const Counter& c : calls) n += c.load(std::memory_order_relaxed);
  return n;
}

std::vector<std::pair<std::string, std::string>> BackendCounters::Snapshot() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(kOpCount + 4);
  for (size_t i = 0; i < kOpCount; ++i) {
    out.emplace_back(std::string("backend.calls.") + OpName(static_cast<Op>(i)),
                     std::to_string(calls[i].load(std::memory_order_relaxed)));
  }
  out.emplace_back("backend.calls", std::to_string(total_calls()));
  out.emplace_back("backend.retries", std::to_string(retries.load(std::memory_order_relaxed)));
  out.emplace_back("backend.timeouts", std::to_string(timeouts.load(std::memory_order_relaxed)));
  out.emplace_back("backend.errors", std::to_string(errors.load(std::memory_order_relaxed)));
  return out;
}

RetryBackend::RetryBackend(std::unique_ptr<Backend> inner, RetryPolicy policy, SleepFn sleep)
    : ForwardingBackend(std::move(inner)), policy_(policy), sleep_(std::move(sleep)) {
  if (!sleep_) sleep_ = [](milliseconds d) { std::this_thread::sleep_for(d); };
  if (policy_.max_attempts == 0) policy_.max_attempts = 1;
}

// The wait before retry number `retry` (1 for the first): a random time up to
// initial_backoff * 2^(retry-1), capped at max_backoff.
milliseconds RetryBackend::Backoff(unsigned retry) const {
  milliseconds cap = policy_.initial_backoff;
  for (unsigned i = 1; i < retry && cap < policy_.max_backoff; ++i) cap *= 2;
  return Jittered(std::min(cap, policy_.max_backoff));
}

// Runs attempt(deadline of this attempt) until it succeeds, fails for good, or
// the attempts or the budget run out. retry: the call may be made again.
// end: when the whole call must be over (the budget, or the caller's deadline).
template <typename Attempt>
auto RetryBackend::Run(Op op, bool retry, Deadline end, Attempt&& attempt) -> decltype(attempt(kNoDeadline)) {
  BackendCounters::Counter& calls = counters_.calls[static_cast<size_t>(op)];
  for (unsigned n = 1;; ++n) {
    calls.fetch_add(1, std::memory_order_relaxed);
    const Deadline attempt_deadline = std::min(end, After(Clock::now(), policy_.call_timeout));
    auto r = attempt(attempt_deadline);
    const Status& s = StatusOf(r);
    if (s.ok()) return r;
    if (s.kind() == Status::Kind::kTimeout) counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
    bool again = retry && s.retryable() && n < policy_.max_attempts;
    milliseconds wait{0};
    if (again) {
      wait = Backoff(n);
      // Room for the wait and then some of the next attempt.
      again = Clock::now() + wait < end;
    }
    if (!again) {
      if (s.kind() != Status::Kind::kNotFound) counters_.errors.fetch_add(1, std::memory_order_relaxed);
      return r;
    }
    counters_.retries.fetch_add(1, std::memory_order_relaxed);
    sleep_(wait);
  }
}

template <typename Attempt>
auto RetryBackend::Call(Op op, Attempt&& attempt) -> decltype(attempt()) {
  const Deadline end = After(Clock::now(), policy_.budget);
  return Run(op, IsIdempotent(op), end, [&](Deadline) { return attempt(); });
}

Result<Attr> RetryBackend::stat(const std::string& path) {
  return Call(Op::kStat, [&] { return inner().stat(path); });
}

Result<std::vector<DirEntry>> RetryBackend::list(const std::string& dir) {
  return Call(Op::kList, [&] { return inner().list(dir); });
}

Result<OpenFileRef> RetryBackend::open(const std::string& path, int flags) {
  // An open that truncates or creates changes the file: not made twice.
  const bool retry = (flags & (O_TRUNC | O_CREAT)) == 0;
  return Run(Op::kOpen, retry, After(Clock::now(), policy_.budget),
             [&](Deadline) { return inner().open(path, flags); });
}

Result<OpenFileRef> RetryBackend::create(const std::string& path, int flags, mode_t mode) {
  return Call(Op::kCreate, [&] { return inner().create(path, flags, mode); });
}

Result<Attr> RetryBackend::fstat(OpenFile& f) {
  return Call(Op::kFstat, [&] { return inner().fstat(f); });
}

Result<size_t> RetryBackend::read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                                        const ReadOptions& options) {
  // Each attempt answers by min(the caller's deadline, now + call_timeout,
  // the end of the budget).
  const Deadline end = std::min(options.deadline, After(Clock::now(), policy_.budget));
  return Run(Op::kRead, true, end, [&](Deadline deadline) {
    ReadOptions attempt = options;
    attempt.deadline = deadline;
    return inner().read_range(f, offset, bufs, attempt);
  });
}

Result<WriteResult> RetryBackend::write(OpenFile& f, uint64_t offset, std::span<const char> data) {
  return Call(Op::kWrite, [&] { return inner().write(f, offset, data); });
}

Status RetryBackend::fsync(OpenFile& f, bool datasync) {
  return Call(Op::kFsync, [&] { return inner().fsync(f, datasync); });
}

Status RetryBackend::flush(OpenFile& f) {
  return Call(Op::kFlush, [&] { return inner().flush(f); });
}

Status RetryBackend::fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) {
  return Call(Op::kFallocate, [&] { return inner().fallocate(f, mode, offset, length); });
}

Result<Attr> RetryBackend::setattr(const std::string& path, const SetAttr& change, OpenFile* f) {
  return Call(Op::kSetattr, [&] { return inner().setattr(path, change, f); });
}

Result<Attr> RetryBackend::mkdir(const std::string& path, mode_t mode) {
  return Call(Op::kMkdir, [&] { return inner().mkdir(path, mode); });
}

Result<Attr> RetryBackend::mknod(const std::string& path, mode_t mode, dev_t rdev) {
  return Call(Op::kMknod, [&] { return inner().mknod(path, mode, rdev); });
}

Result<Attr> RetryBackend::symlink(const std::string& target, const std::string& path) {
  return Call(Op::kSymlink, [&] { return inner().symlink(target, path); });
}

Result<std::string> RetryBackend::readlink(const std::string& path) {
  return Call(Op::kReadlink, [&] { return inner().readlink(path); });
}

Status RetryBackend::unlink(const std::string& path) {
  return Call(Op::kUnlink, [&] { return inner().unlink(path); });
}

Status RetryBackend::rmdir(const std::string& path) {
  return Call(Op::kRmdir, [&] { return inner().rmdir(path); });
}

Status RetryBackend::rename(const std::string& from, const std::string& to, unsigned flags) {
  return Call(Op::kRename, [&] { return inner().rename(from, to, flags); });
}

Result<Attr> RetryBackend::link(const std::string& existing, const std::string& newpath) {
  return Call(Op::kLink, [&] { return inner().link(existing, newpath); });
}

Result<struct statvfs> RetryBackend::statfs(const std::string& path) {
  return Call(Op::kStatfs, [&] { return inner().statfs(path); });
}

Status RetryBackend::access(const std::string& path, int mask) {
  return Call(Op::kAccess, [&] { return inner().access(path, mask); });
}

Result<std::string> RetryBackend::getxattr(const std::string& path, const std::string& name, OpenFile* f) {
  return Call(Op::kGetxattr, [&] { return inner().getxattr(path, name, f); });
}

Result<std::vector<std::string>> RetryBackend::listxattr(const std::string& path, OpenFile* f) {
  return Call(Op::kListxattr, [&] { return inner().listxattr(path, f); });
}

Status RetryBackend::setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                              OpenFile* f) {
  return Call(Op::kSetxattr, [&] { return inner().setxattr(path, name, value, flags, f); });
}

Status RetryBackend::removexattr(const std::string& path, const std::string& name, OpenFile* f) {
  return Call(Op::kRemovexattr, [&] { return inner().removexattr(path, name, f); });
}

}  // namespace cachefuse::netfs
