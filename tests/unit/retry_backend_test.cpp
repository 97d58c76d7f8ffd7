// Tests for netfs_backends/retry_backend: which calls are retried, backoff with
// jitter, per-attempt deadlines, the overall budget, counters.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "netfs_backends/fault_backend.h"
#include "netfs_backends/posix/posix_backend.h"
#include "netfs_backends/retry_backend.h"
#include "test_util.h"

using cachefuse::Status;
using cachefuse::netfs::Backend;
using cachefuse::netfs::Clock;
using cachefuse::netfs::FaultBackend;
using cachefuse::netfs::FaultPlan;
using cachefuse::netfs::IsIdempotent;
using cachefuse::netfs::kOpCount;
using cachefuse::netfs::Op;
using cachefuse::netfs::OpenFile;
using cachefuse::netfs::OpenFileRef;
using cachefuse::netfs::OpName;
using cachefuse::netfs::ReadOptions;
using cachefuse::netfs::RetryBackend;
using cachefuse::netfs::RetryPolicy;
using cachefuse::test::TempDir;
using cachefuse::test::WriteFile;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

namespace {

// RetryBackend over FaultBackend over a posix source holding "data"; waits are
// recorded, not slept.
struct Fixture {
  TempDir tmp;
  FaultBackend* fault = nullptr;  // owned by be
  std::unique_ptr<RetryBackend> be;
  OpenFileRef file;  // "data", read-write, opened before any fault
  std::mutex mu;
  std::vector<milliseconds> waits;

  explicit Fixture(RetryPolicy policy, FaultPlan plan = {}) {
    WriteFile(tmp / "data", "0123456789");
    auto inner = cachefuse::netfs::PosixBackend::Open(tmp.path());
    REQUIRE(inner.ok());
    auto opened = (*inner)->open("data", O_RDWR);
    REQUIRE(opened.ok());
    file = *opened;
    auto f = std::make_unique<FaultBackend>(std::move(inner.value()), plan);
    fault = f.get();
    be = std::make_unique<RetryBackend>(std::move(f), policy, [this](milliseconds d) {
      std::lock_guard lock(mu);
      waits.push_back(d);
    });
  }
  uint64_t calls(Op op) const { return be->counters().calls[static_cast<size_t>(op)].load(); }
  uint64_t retries() const { return be->counters().retries.load(); }
  uint64_t timeouts() const { return be->counters().timeouts.load(); }
  uint64_t errors() const { return be->counters().errors.load(); }
};

FaultPlan Failing(Status with, unsigned first_n = 0) {
  FaultPlan plan;
  plan.fail_with = std::move(with);
  if (first_n > 0) {
    plan.fail_first_n = first_n;
  } else {
    plan.fail_every_nth = 1;
  }
  return plan;
}

Status Reset() {
  return Status::Transient(ECONNRESET, "injected reset");
}

// Makes the call of kind op once against the fixture's tree.
Status CallOne(Backend& be, OpenFile& file, Op op) {
  char buf[4];
  struct iovec iov {
    buf, sizeof buf
  };
  const std::string x = "x";
  switch (op) {
    case Op::kStat:
      return be.stat("data").status();
    case Op::kList:
      return be.list("").status();
    case Op::kOpen:
      return be.open("data", O_RDONLY).status();
    case Op::kCreate:
      return be.create("made", O_RDWR, 0644).status();
    case Op::kFstat:
      return be.fstat(file).status();
    case Op::kRead:
      return be.read_range(file, 0, std::span<const struct iovec>(&iov, 1), {}).status();
    case Op::kWrite:
      return be.write(file, 0, std::span<const char>(x.data(), x.size())).status();
    case Op::kFsync:
      return be.fsync(file, false);
    case Op::kFlush:
      return be.flush(file);
    case Op::kFallocate:
      return be.fallocate(file, 0, 0, 1);
    case Op::kSetattr:
      return be.setattr("data", cachefuse::netfs::SetAttr{}, nullptr).status();
    case Op::kMkdir:
      return be.mkdir("dir", 0755).status();
    case Op::kMknod:
      return be.mknod("fifo", S_IFIFO | 0644, 0).status();
    case Op::kSymlink:
      return be.symlink("data", "ln").status();
    case Op::kReadlink:
      return be.readlink("ln").status();
    case Op::kUnlink:
      return be.unlink("data");
    case Op::kRmdir:
      return be.rmdir("dir");
    case Op::kRename:
      return be.rename("data", "data2", 0);
    case Op::kLink:
      return be.link("data", "data3").status();
    case Op::kStatfs:
      return be.statfs("").status();
    case Op::kAccess:
      return be.access("data", F_OK);
    case Op::kGetxattr:
      return be.getxattr("data", "user.none", nullptr).status();
    case Op::kListxattr:
      return be.listxattr("data", nullptr).status();
    case Op::kSetxattr:
      return be.setxattr("data", "user.x", "v", 0, nullptr);
    case Op::kRemovexattr:
      return be.removexattr("data", "user.x", nullptr);
    case Op::kCount:
      break;
  }
  return Status::Invalid("no such op");
}

// The most a wait before retry number n (1-based) may be.
milliseconds Cap(const RetryPolicy& p, unsigned n) {
  milliseconds cap = p.initial_backoff;
  for (unsigned i = 1; i < n; ++i) cap = std::min(cap * 2, p.max_backoff);
  return std::min(cap, p.max_backoff);
}

}  // namespace

TEST_CASE("RetryBackend retries transient errors of idempotent calls until they succeed") {
  RetryPolicy policy;
  Fixture f(policy, Failing(Reset(), 3));
  auto r = f.be->stat("data");
  REQUIRE(r.ok());
  CHECK(r->st.st_size == 10);
  CHECK(f.fault->calls() == 4);
  CHECK(f.calls(Op::kStat) == 4);
  CHECK(f.retries() == 3);
  CHECK(f.errors() == 0);
  CHECK(f.timeouts() == 0);
  REQUIRE(f.waits.size() == 3);
  for (unsigned i = 0; i < 3; ++i) CHECK(f.waits[i] <= Cap(policy, i + 1));
}

TEST_CASE("RetryBackend retries time-outs too, and counts them") {
  Fixture f(RetryPolicy{}, Failing(Status::Timeout("slow"), 2));
  std::string buf(4, '\0');
  auto r = f.be->read_buf(*f.file, 0, std::span<char>(buf.data(), buf.size()));
  REQUIRE(r.ok());
  CHECK(buf == "0123");
  CHECK(f.calls(Op::kRead) == 3);
  CHECK(f.retries() == 2);
  CHECK(f.timeouts() == 2);
  CHECK(f.errors() == 0);
}

TEST_CASE("RetryBackend gives up after max_attempts") {
  RetryPolicy policy;
  policy.max_attempts = 4;
  Fixture f(policy, Failing(Reset()));
  auto r = f.be->list("");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().kind() == Status::Kind::kTransient);
  CHECK(r.err() == ECONNRESET);
  CHECK(f.fault->calls() == 4);
  CHECK(f.calls(Op::kList) == 4);
  CHECK(f.retries() == 3);
  CHECK(f.errors() == 1);
  CHECK(f.waits.size() == 3);

  SECTION("max_attempts 1: no retries") {
    RetryPolicy once;
    once.max_attempts = 1;
    Fixture g(once, Failing(Reset()));
    CHECK_FALSE(g.be->stat("data").ok());
    CHECK(g.fault->calls() == 1);
    CHECK(g.retries() == 0);
    CHECK(g.waits.empty());
  }
}

TEST_CASE("RetryBackend never retries a call that is not idempotent, and retries every one that is") {
  RetryPolicy policy;
  policy.max_attempts = 3;
  for (size_t i = 0; i < kOpCount; ++i) {
    const Op op = static_cast<Op>(i);
    INFO(OpName(op));
    FaultPlan plan = Failing(Reset());
    plan.ops.reset().set(i);
    Fixture f(policy, plan);
    Status s = CallOne(*f.be, *f.file, op);
    CHECK(s.err() == ECONNRESET);
    const uint64_t expect = IsIdempotent(op) ? 3 : 1;
    CHECK(f.fault->calls() == expect);
    CHECK(f.calls(op) == expect);
    CHECK(f.retries() == expect - 1);
    CHECK(f.errors() == 1);
    CHECK(f.be->counters().total_calls() == expect);
  }
  // The ones named in the design, spelled out.
  for (Op op : {Op::kWrite, Op::kCreate, Op::kRename, Op::kUnlink, Op::kMkdir}) CHECK_FALSE(IsIdempotent(op));
}

TEST_CASE("RetryBackend::open is not retried when it truncates or creates") {
  RetryPolicy policy;
  policy.max_attempts = 3;
  FaultPlan plan = Failing(Reset());
  for (int flags : {O_RDWR | O_TRUNC, O_WRONLY | O_CREAT, O_RDWR | O_CREAT | O_EXCL, O_WRONLY | O_TRUNC | O_CREAT}) {
    INFO(flags);
    Fixture f(policy, plan);
    CHECK(f.be->open("data", flags).err() == ECONNRESET);
    CHECK(f.fault->calls() == 1);
    CHECK(f.retries() == 0);
  }
  for (int flags : {O_RDONLY, O_RDWR, O_WRONLY | O_APPEND}) {
    INFO(flags);
    Fixture f(policy, plan);
    CHECK(f.be->open("data", flags).err() == ECONNRESET);
    CHECK(f.fault->calls() == 3);
  }
}

TEST_CASE("RetryBackend: errors that are answers are not retried") {
  RetryPolicy policy;
  Fixture f(policy);
  SECTION("not found: not retried, not an error") {
    auto r = f.be->stat("missing");
    CHECK(r.status().kind() == Status::Kind::kNotFound);
    CHECK(f.calls(Op::kStat) == 1);
    CHECK(f.retries() == 0);
    CHECK(f.errors() == 0);
    CHECK(f.be->list("missing").err() == ENOENT);
    CHECK(f.errors() == 0);
  }
  SECTION("other kinds: not retried, counted as errors") {
    for (Status s : {Status::FromErrno(EACCES, "no"), Status::FromErrno(EIO, "io"), Status::Stale("changed"),
                     Status::Fatal(EPROTO, "bad server"), Status::NotSupported("no")}) {
      INFO(s.ToString());
      f.fault->set_plan(Failing(s));
      const uint64_t before = f.fault->calls();
      const uint64_t errors = f.errors();
      CHECK(f.be->stat("data").status().kind() == s.kind());
      CHECK(f.fault->calls() == before + 1);
      CHECK(f.errors() == errors + 1);
    }
    CHECK(f.retries() == 0);
    CHECK(f.waits.empty());
  }
}

TEST_CASE("RetryBackend: each read attempt has call_timeout to answer") {
  RetryPolicy policy;
  policy.max_attempts = 1;
  policy.call_timeout = 200ms;
  FaultPlan plan;
  plan.hang_every_nth = 1;  // hangs until the deadline (hang_ms is a minute)
  Fixture f(policy, plan);
  std::string buf(4, '\0');
  auto t0 = Clock::now();
  auto r = f.be->read_buf(*f.file, 0, std::span<char>(buf.data(), buf.size()));  // no deadline of its own
  auto took = Clock::now() - t0;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().kind() == Status::Kind::kTimeout);
  CHECK(took >= 190ms);
  CHECK(took < 2s);
  CHECK(f.timeouts() == 1);
  CHECK(f.errors() == 1);

  SECTION("the caller's deadline when it comes first") {
    RetryPolicy slow;
    slow.call_timeout = 30s;
    Fixture g(slow, plan);
    ReadOptions options;
    options.deadline = Clock::now() + 200ms;
    t0 = Clock::now();
    r = g.be->read_buf(*g.file, 0, std::span<char>(buf.data(), buf.size()), options);
    took = Clock::now() - t0;
    CHECK(r.status().kind() == Status::Kind::kTimeout);
    CHECK(took < 2s);
    // Past the caller's deadline there is no point in another attempt.
    CHECK(g.calls(Op::kRead) == 1);
  }
}

TEST_CASE("RetryBackend: the budget caps all attempts of one call") {
  RetryPolicy policy;
  policy.max_attempts = 1000;
  policy.call_timeout = 200ms;
  policy.budget = 500ms;
  policy.initial_backoff = 0ms;  // no waits: the time is the attempts'
  FaultPlan plan;
  plan.hang_every_nth = 1;
  Fixture f(policy, plan);
  std::string buf(4, '\0');
  auto t0 = Clock::now();
  auto r = f.be->read_buf(*f.file, 0, std::span<char>(buf.data(), buf.size()));
  auto took = Clock::now() - t0;
  CHECK(r.status().kind() == Status::Kind::kTimeout);
  CHECK(took >= 450ms);
  CHECK(took < 3s);
  // About 500 / 200 attempts, each a time-out; the last one cut at the budget's end.
  const uint64_t attempts = f.calls(Op::kRead);
  CHECK(attempts >= 2);
  CHECK(attempts <= 4);
  CHECK(f.timeouts() == attempts);
  CHECK(f.retries() == attempts - 1);
  CHECK(f.errors() == 1);

  SECTION("no room for the next wait: no retry") {
    RetryPolicy none;
    none.budget = 0ms;
    Fixture g(none, Failing(Reset()));
    CHECK_FALSE(g.be->stat("data").ok());
    CHECK(g.fault->calls() == 1);
    CHECK(g.waits.empty());
  }
}

TEST_CASE("RetryBackend: limits of \"forever\" do not overflow") {
  RetryPolicy policy;
  policy.call_timeout = milliseconds::max();
  policy.budget = milliseconds::max();
  Fixture f(policy, Failing(Status::Timeout("slow"), 2));
  std::string buf(4, '\0');
  auto r = f.be->read_buf(*f.file, 0, std::span<char>(buf.data(), buf.size()));
  REQUIRE(r.ok());
  CHECK(f.calls(Op::kRead) == 3);
  CHECK(f.be->stat("data").ok());
}

TEST_CASE("RetryBackend backoff grows exponentially to max_backoff, with full jitter") {
  RetryPolicy policy;
  policy.max_attempts = 8;
  policy.initial_backoff = 100ms;
  policy.max_backoff = 1000ms;
  policy.budget = 1h;  // waits are not slept: the budget never runs out here
  Fixture f(policy, Failing(Reset()));
  constexpr int kTrials = 60;
  std::map<unsigned, std::vector<milliseconds>> by_retry;  // retry number -> waits seen
  for (int t = 0; t < kTrials; ++t) {
    f.waits.clear();
    CHECK_FALSE(f.be->stat("data").ok());
    REQUIRE(f.waits.size() == 7);
    for (unsigned i = 0; i < 7; ++i) by_retry[i + 1].push_back(f.waits[i]);
  }
  CHECK(f.retries() == 7u * kTrials);
  CHECK(Cap(policy, 1) == 100ms);
  CHECK(Cap(policy, 4) == 800ms);
  CHECK(Cap(policy, 5) == 1000ms);
  for (auto& [n, waits] : by_retry) {
    INFO("retry " << n);
    const milliseconds cap = Cap(policy, n);
    for (milliseconds w : waits) {
      CHECK(w >= 0ms);
      CHECK(w <= cap);
    }
    // Jittered: the waits differ. Growing: some wait is past the previous cap
    // (each is uniform in [0, cap]; the chance that all 60 are not is 2^-60).
    std::set<milliseconds> distinct(waits.begin(), waits.end());
    CHECK(distinct.size() > 10);
    if (n >= 2 && n <= 4) CHECK(*std::max_element(waits.begin(), waits.end()) > Cap(policy, n - 1));
  }
}

TEST_CASE("RetryBackend counters: every op by name, then the totals") {
  Fixture f(RetryPolicy{}, Failing(Reset(), 1));
  CHECK(f.be->stat("data").ok());  // 2 attempts
  CHECK(f.be->list("").ok());
  CHECK(f.be->stat("missing").err() == ENOENT);
  std::string buf(4, '\0');
  CHECK(f.be->read_buf(*f.file, 0, std::span<char>(buf.data(), buf.size())).ok());
  f.fault->set_plan(Failing(Status::FromErrno(EIO, "io")));
  CHECK_FALSE(f.be->mkdir("d", 0755).ok());

  auto snap = f.be->counters().Snapshot();
  REQUIRE(snap.size() == kOpCount + 4);
  for (size_t i = 0; i < kOpCount; ++i) {
    CHECK(snap[i].first == std::string("backend.calls.") + OpName(static_cast<Op>(i)));
  }
  std::map<std::string, std::string> m(snap.begin(), snap.end());
  CHECK(m["backend.calls.stat"] == "3");
  CHECK(m["backend.calls.list"] == "1");
  CHECK(m["backend.calls.read"] == "1");
  CHECK(m["backend.calls.mkdir"] == "1");
  CHECK(m["backend.calls.write"] == "0");
  CHECK(snap[kOpCount].first == "backend.calls");
  CHECK(snap[kOpCount].second == "6");
  CHECK(snap[kOpCount + 1] == std::make_pair(std::string("backend.retries"), std::string("1")));
  CHECK(snap[kOpCount + 2] == std::make_pair(std::string("backend.timeouts"), std::string("0")));
  CHECK(snap[kOpCount + 3] == std::make_pair(std::string("backend.errors"), std::string("1")));
  CHECK(f.be->counters().total_calls() == 6);
}

TEST_CASE("RetryBackend passes results and the expected version through") {
  Fixture f(RetryPolicy{});
  CHECK(f.be->describe().rfind("posix:", 0) == 0);
  auto st = f.be->stat("data");
  REQUIRE(st.ok());
  std::string buf(10, '\0');
  ReadOptions options;
  options.expect = &st->coherency;
  auto r = f.be->read_buf(*f.file, 0, std::span<char>(buf.data(), buf.size()), options);
  REQUIRE(r.ok());
  CHECK(buf == "0123456789");
  const std::string x = "X";
  auto w = f.be->write(*f.file, 0, std::span<const char>(x.data(), 1));
  REQUIRE(w.ok());
  CHECK(w->written == 1);
  // The write changed the file (size unchanged; ctime may tick or not): a
  // stale answer, if any, is not retried.
  auto again = f.be->read_buf(*f.file, 0, std::span<char>(buf.data(), buf.size()), options);
  if (!again.ok()) {
    CHECK(again.status().kind() == Status::Kind::kStale);
    CHECK(f.calls(Op::kRead) == 2);
  }
  CHECK(f.retries() == 0);
}
