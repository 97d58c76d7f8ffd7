// FaultBackend: deterministic fault injection in front of a real backend.
#include "netfs_backends/fault_backend.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace cachefuse::netfs {
namespace {

// Sleeps until t in short naps, so that the wake-up is never much past t
// whatever the scheduler does with one long sleep.
void SleepUntil(Clock::time_point t) {
  constexpr auto kNap = std::chrono::milliseconds(5);
  for (auto now = Clock::now(); now < t; now = Clock::now()) {
    std::this_thread::sleep_for(std::min<Clock::duration>(t - now, kNap));
  }
}

bool Due(unsigned every_nth, uint64_t n) {
  return every_nth != 0 && n % every_nth == 0;
}

}  // namespace

FaultBackend::FaultBackend(std::unique_ptr<Backend> inner, FaultPlan plan)
    : ForwardingBackend(std::move(inner)), active_(std::make_shared<Active>(plan)) {}

void FaultBackend::set_plan(const FaultPlan& plan) {
  auto fresh = std::make_shared<Active>(plan);
  std::lock_guard lock(mu_);
  active_ = std::move(fresh);
}

std::shared_ptr<FaultBackend::Active> FaultBackend::Current() const {
  std::lock_guard lock(mu_);
  return active_;
}

// One chosen call: latency, then the first matching fault of its number.
Status FaultBackend::Apply(Active& active, Deadline deadline) {
  const FaultPlan& plan = active.plan;
  calls_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t n = active.chosen.fetch_add(1, std::memory_order_relaxed) + 1;
  if (plan.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(plan.latency_ms));
  if (n <= plan.fail_first_n || Due(plan.fail_every_nth, n)) return plan.fail_with;
  if (Due(plan.hang_every_nth, n)) {
    SleepUntil(deadline != kNoDeadline ? deadline : Clock::now() + std::chrono::milliseconds(plan.hang_ms));
    return Status::Timeout("injected hang");
  }
  return Status::Ok();
}

Status FaultBackend::Before(Op op, Deadline deadline) {
  auto active = Current();
  if (!active->plan.ops.test(static_cast<size_t>(op))) return Status::Ok();
  return Apply(*active, deadline);
}

Result<size_t> FaultBackend::read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                                        const ReadOptions& options) {
  auto active = Current();
  const FaultPlan& plan = active->plan;
  struct iovec first {};
  if (plan.ops.test(static_cast<size_t>(Op::kRead))) {
    const uint64_t nth_read = active->reads.fetch_add(1, std::memory_order_relaxed) + 1;
    if (Status s = Apply(*active, options.deadline); !s.ok()) return s;
    if (Due(plan.short_every_nth, nth_read) && !bufs.empty() && bufs[0].iov_len > 1) {
      // A short read: half of the first buffer only.
      first = {bufs[0].iov_base, bufs[0].iov_len / 2};
      bufs = std::span<const struct iovec>(&first, 1);
    }
  }
  auto r = inner().read_range(f, offset, bufs, options);
  if (r.ok()) {
    reads_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(*r, std::memory_order_relaxed);
  }
  return r;
}

}  // namespace cachefuse::netfs
