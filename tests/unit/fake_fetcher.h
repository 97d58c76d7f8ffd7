// FakeFetcher: the cache's Fetcher over a local file, for the cache core's
// unit tests (which build without netfs_backends/). It reads with preadv from
// a descriptor opened at construction, injects the faults tests used the
// FaultBackend for (latency, failures, short reads), counts what it does, and
// can check versions as a real source does: given a function that says the
// file's current coherency token, a fetch whose bytes are not of the version
// the cache expects fails with Status::Kind::kStale.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cache/fetcher.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace cachefuse::test {

// What goes wrong, and when. Every Nth counts the calls to Fetch of all the
// fetchers that share one FetchCounters.
struct FetchPlan {
  unsigned latency_ms = 0;      // slept at the start of every fetch
  unsigned fail_every_nth = 0;  // every Nth fetch fails with fail_with (0 = never)
  unsigned fail_first_n = 0;    // the first N fetches fail with fail_with (then they work)
  Status fail_with = Status::FromErrno(EIO, "injected fetch failure");
  unsigned short_every_nth = 0;  // every Nth fetch returns half of its first buffer
};

// What the fetchers did. Shared by all the fetchers a test harness opens, so
// that a test counts the source's work as the FaultBackend did.
struct FetchCounters {
  std::atomic<uint64_t> calls{0};   // Fetch calls
  std::atomic<uint64_t> reads{0};   // fetches that reached the file and read from it
  std::atomic<uint64_t> bytes{0};   // bytes those read
  std::atomic<uint64_t> stale{0};   // fetches failed as stale by the version check
  std::atomic<uint64_t> failed{0};  // fetches failed by the plan
  std::atomic<unsigned> inflight{0};
  std::atomic<unsigned> max_inflight{0};  // most fetches inside Fetch at once

  uint64_t bytes_read() const { return bytes.load(); }
};

// A coherency token for a file as the posix source makes it: mtime ns, ctime
// ns, size and inode number, little-endian. Writing a file in place moves
// mtime/ctime (and the size, if it changes); replacing it moves the inode.
inline std::string TokenOfStat(const struct stat& st) {
  std::string out;
  out.reserve(32);
  auto put = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto nanos = [](const struct timespec& ts) {
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
  };
  put(nanos(st.st_mtim));
  put(nanos(st.st_ctim));
  put(static_cast<uint64_t>(st.st_size));
  put(static_cast<uint64_t>(st.st_ino));
  return out;
}

// The token of an open file (of the inode it holds, whatever its name is now).
inline std::string FdToken(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "fstat failed";
  return TokenOfStat(st);
}

// The token of whatever is at path now.
inline std::string PathToken(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("stat " + path);
  return TokenOfStat(st);
}

class FakeFetcher final : public cache::Fetcher {
 public:
  using TokenFn = std::function<std::string()>;
  using Hook = std::function<void(uint64_t offset)>;

  // Opens path for reading. counters: shared with other fetchers, or nullptr for its own.
  explicit FakeFetcher(const std::string& path, FetchPlan plan = {}, std::shared_ptr<FetchCounters> counters = nullptr)
      : path_(path),
        fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)),
        plan_(std::move(plan)),
        counters_(counters ? std::move(counters) : std::make_shared<FetchCounters>()) {
    if (!fd_.valid()) throw std::runtime_error("FakeFetcher: cannot open " + path);
  }

  // Version checking: after each read, a token different from the expected one fails the fetch as stale.
  void set_token(TokenFn token) {
    std::lock_guard lk(mu_);
    token_ = std::move(token);
  }
  // The usual version check: the token of the open file, from fstat.
  void CheckVersions() {
    set_token([fd = fd_.get()] { return FdToken(fd); });
  }
  void set_plan(const FetchPlan& plan) {
    std::lock_guard lk(mu_);
    plan_ = plan;
  }
  // Runs in every fetch after the latency, before the file is read (tests use
  // it to hold fetches or to change the file in the middle of one).
  void set_before_read(Hook hook) {
    std::lock_guard lk(mu_);
    before_read_ = std::move(hook);
  }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  FetchCounters& counters() { return *counters_; }
  // The last `expect` a fetch was given.
  std::string last_expect() {
    std::lock_guard lk(mu_);
    return last_expect_;
  }

  Result<size_t> Fetch(uint64_t offset, std::span<const struct iovec> bufs, const std::string& expect) override {
    FetchPlan plan;
    TokenFn token;
    Hook hook;
    {
      std::lock_guard lk(mu_);
      plan = plan_;
      token = token_;
      hook = before_read_;
      last_expect_ = expect;
    }
    FetchCounters& c = *counters_;
    const unsigned now = ++c.inflight;
    unsigned seen = c.max_inflight.load();
    while (now > seen && !c.max_inflight.compare_exchange_weak(seen, now)) {
    }
    struct Leave {
      FetchCounters& c;
      ~Leave() { --c.inflight; }
    } leave{c};

    if (plan.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(plan.latency_ms));
    const uint64_t n = ++c.calls;
    if ((plan.fail_every_nth != 0 && n % plan.fail_every_nth == 0) || n <= plan.fail_first_n) {
      ++c.failed;
      return plan.fail_with;
    }
    struct iovec first {};
    if (plan.short_every_nth != 0 && n % plan.short_every_nth == 0 && !bufs.empty() && bufs[0].iov_len > 1) {
      first = {bufs[0].iov_base, bufs[0].iov_len / 2};
      bufs = std::span<const struct iovec>(&first, 1);
    }
    if (hook) hook(offset);
    ssize_t r = ::preadv(fd_.get(), bufs.data(), static_cast<int>(std::min<size_t>(bufs.size(), IOV_MAX)),
                         static_cast<off_t>(offset));
    if (r < 0) return ErrnoStatus("preadv " + path_);
    ++c.reads;
    c.bytes += static_cast<uint64_t>(r);
    // After the read: bytes read while the file was of another version are never returned.
    if (token && token() != expect) {
      ++c.stale;
      return Status::Stale("fake source: " + path_ + " is not of the expected version");
    }
    return static_cast<size_t>(r);
  }

 private:
  const std::string path_;
  UniqueFd fd_;
  std::mutex mu_;
  FetchPlan plan_;           // guarded by mu_
  TokenFn token_;            // guarded by mu_
  Hook before_read_;         // guarded by mu_
  std::string last_expect_;  // guarded by mu_
  std::shared_ptr<FetchCounters> counters_;
};

using FakeFetcherRef = std::shared_ptr<FakeFetcher>;

}  // namespace cachefuse::test
