// FaultBackend: wraps any Backend and injects latency, errors, short reads and
// hangs into any call. Tests use it directly; the daemon builds one from the
// debug_backend_* options.
#pragma once

#include <atomic>
#include <bitset>
#include <memory>
#include <mutex>

#include "netfs_backends/backend.h"

namespace cachefuse::netfs {

struct FaultPlan {
  // Which calls the plan applies to (all by default).
  std::bitset<kOpCount> ops = std::bitset<kOpCount>().set();
  unsigned latency_ms = 0;      // added to every chosen call
  unsigned fail_every_nth = 0;  // every Nth chosen call fails (0 = never)
  unsigned fail_first_n = 0;    // the first N chosen calls fail (then they work)
  Status fail_with = Status::FromErrno(EIO, "injected failure");
  unsigned short_every_nth = 0;  // every Nth read_range returns half of the first buffer
  unsigned hang_every_nth = 0;   // every Nth chosen call hangs: until its deadline (then
                                 // kTimeout), or hang_ms where it has none
  unsigned hang_ms = 60000;
};

class FaultBackend final : public ForwardingBackend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, FaultPlan plan);

  // Counters for tests: chosen calls seen, and read_range calls and bytes that reached the inner backend.
  uint64_t calls() const { return calls_.load(); }
  uint64_t reads() const { return reads_.load(); }
  uint64_t bytes_read() const { return bytes_.load(); }
  // Replaces the plan (tests switch faults on and off between steps); its
  // schedules (fail_first_n, every Nth) count from this call. Thread-safe.
  void set_plan(const FaultPlan& plan);

  Result<size_t> read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                            const ReadOptions& options) override;

 protected:
  Status Before(Op op, Deadline deadline) override;

 private:
  // A plan and the count of calls it chose, which its schedules (every Nth,
  // the first N) run by: a new plan starts counting afresh.
  struct Active {
    explicit Active(const FaultPlan& p) : plan(p) {}
    const FaultPlan plan;
    std::atomic<uint64_t> chosen{0};
    std::atomic<uint64_t> reads{0};  // read_range calls chosen
  };
  std::shared_ptr<Active> Current() const;
  Status Apply(Active& active, Deadline deadline);

  mutable std::mutex mu_;
  std::shared_ptr<Active> active_;  // GUARDED_BY(mu_); calls in flight keep the one they began with
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace cachefuse::netfs
