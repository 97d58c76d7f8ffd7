// Tests for netfs_backends/fault_backend: injected failures of any call, hangs,
// short reads, counters.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "netfs_backends/fault_backend.h"
#include "netfs_backends/posix/posix_backend.h"
#include "test_util.h"

using cachefuse::Status;
using cachefuse::netfs::Backend;
using cachefuse::netfs::Clock;
using cachefuse::netfs::FaultBackend;
using cachefuse::netfs::FaultPlan;
using cachefuse::netfs::kOpCount;
using cachefuse::netfs::Op;
using cachefuse::netfs::OpenFile;
using cachefuse::netfs::OpenFileRef;
using cachefuse::netfs::OpName;
using cachefuse::netfs::ReadOptions;
using namespace std::chrono_literals;
using cachefuse::netfs::PosixBackend;
using cachefuse::test::RandomBytes;
using cachefuse::test::ReadFile;
using cachefuse::test::TempDir;
using cachefuse::test::WriteFile;

namespace {

constexpr size_t kFileSize = 64 * 1024;

// A FaultBackend over a posix source holding one file "data" of kFileSize random bytes.
struct Fixture {
  TempDir tmp;
  std::string data = RandomBytes(kFileSize, 77);
  std::unique_ptr<FaultBackend> be;
  OpenFileRef h;  // "data", opened before the faults (through the source itself)

  explicit Fixture(FaultPlan plan) {
    WriteFile(tmp / "data", data);
    auto inner = PosixBackend::Open(tmp.path());
    REQUIRE(inner.ok());
    auto opened = (*inner)->open("data", O_RDONLY);
    REQUIRE(opened.ok());
    h = *opened;
    be = std::make_unique<FaultBackend>(std::move(inner.value()), plan);
  }

  // One read_range of n bytes at off into a fresh buffer; the buffer is
  // trimmed to what was read.
  cachefuse::Result<std::string> Read(uint64_t off, size_t n) {
    std::string buf(n, '\0');
    auto r = be->read_buf(*h, off, std::span<char>(buf.data(), buf.size()));
    if (!r.ok()) return r.status();
    buf.resize(*r);
    return buf;
  }
};

}  // namespace

TEST_CASE("FaultBackend without faults passes reads through and counts them") {
  Fixture f(FaultPlan{});
  for (int i = 0; i < 10; ++i) {
    auto r = f.Read(static_cast<uint64_t>(i) * 1000, 1000);
    REQUIRE(r.ok());
    CHECK(*r == f.data.substr(static_cast<size_t>(i) * 1000, 1000));
  }
  CHECK(f.be->reads() == 10);
  CHECK(f.be->bytes_read() == 10000);

  // A read across the end counts the bytes actually read.
  auto tail = f.Read(kFileSize - 100, 1000);
  REQUIRE(tail.ok());
  CHECK(tail->size() == 100);
  CHECK(f.be->reads() == 11);
  CHECK(f.be->bytes_read() == 10100);

  // At the end: a successful read of 0 bytes.
  auto eof = f.Read(kFileSize, 10);
  REQUIRE(eof.ok());
  CHECK(eof->empty());
  CHECK(f.be->reads() == 12);
  CHECK(f.be->bytes_read() == 10100);
}

TEST_CASE("FaultBackend fail_every_nth fails exactly every Nth read") {
  FaultPlan plan;
  plan.fail_every_nth = 3;
  Fixture f(plan);
  std::vector<int> failed;
  for (int call = 1; call <= 10; ++call) {
    auto r = f.Read(0, 100);
    if (!r.ok()) {
      failed.push_back(call);
      CHECK(r.err() == EIO);  // the default
      CHECK(r.status().kind() == Status::Kind::kIo);
    } else {
      CHECK(*r == f.data.substr(0, 100));
    }
  }
  CHECK(failed == std::vector<int>{3, 6, 9});
  // Failed reads never reached the inner backend.
  CHECK(f.be->reads() == 7);
  CHECK(f.be->bytes_read() == 700);
}

TEST_CASE("FaultBackend fail_every_nth with a chosen status") {
  FaultPlan plan;
  plan.fail_every_nth = 1;
  plan.fail_with = Status::FromErrno(ECONNRESET, "reset");
  SECTION("transient") {}
  SECTION("time-out") {
    plan.fail_with = Status::FromErrno(ETIMEDOUT, "slow");
  }
  SECTION("stale") {
    plan.fail_with = Status::Stale("changed");
  }
  Fixture f(plan);
  for (int i = 0; i < 3; ++i) {
    auto r = f.Read(0, 10);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err() == plan.fail_with.err());
    CHECK(r.status().kind() == plan.fail_with.kind());
    CHECK(r.status().context() == plan.fail_with.context());
  }
  CHECK(f.be->reads() == 0);
  CHECK(f.be->bytes_read() == 0);
  CHECK(f.be->calls() == 3);
}

TEST_CASE("FaultBackend short_every_nth returns half of the first buffer") {
  FaultPlan plan;
  plan.short_every_nth = 2;
  Fixture f(plan);
  std::vector<size_t> sizes;
  for (int call = 1; call <= 6; ++call) {
    auto r = f.Read(1000, 1000);
    REQUIRE(r.ok());
    sizes.push_back(r->size());
    // Whatever comes back is the right data.
    CHECK(*r == f.data.substr(1000, r->size()));
  }
  CHECK(sizes == std::vector<size_t>{1000, 500, 1000, 500, 1000, 500});
  CHECK(f.be->reads() == 6);
  CHECK(f.be->bytes_read() == 4500);
}

TEST_CASE("FaultBackend short read over several buffers fills only half of the first") {
  FaultPlan plan;
  plan.short_every_nth = 1;
  Fixture f(plan);
  std::string b1(101, 'x'), b2(50, 'y');
  struct iovec iov[2] = {{b1.data(), b1.size()}, {b2.data(), b2.size()}};
  auto n = f.be->read_range(*f.h, 200, std::span<const struct iovec>(iov, 2), {});
  REQUIRE(n.ok());
  CHECK(*n == 50);  // 101 / 2
  CHECK(b1.substr(0, 50) == f.data.substr(200, 50));
  CHECK(b1.substr(50) == std::string(51, 'x'));  // untouched
  CHECK(b2 == std::string(50, 'y'));             // untouched
  CHECK(f.be->bytes_read() == 50);
}

TEST_CASE("FaultBackend does not shorten a read of a single byte") {
  FaultPlan plan;
  plan.short_every_nth = 1;
  Fixture f(plan);
  auto r = f.Read(5, 1);
  REQUIRE(r.ok());
  CHECK(*r == f.data.substr(5, 1));
  // A first buffer of one byte followed by more: not shortened either.
  std::string b1(1, '\0'), b2(9, '\0');
  struct iovec iov[2] = {{b1.data(), b1.size()}, {b2.data(), b2.size()}};
  auto n = f.be->read_range(*f.h, 10, std::span<const struct iovec>(iov, 2), {});
  REQUIRE(n.ok());
  CHECK(*n == 10);
  CHECK(b1 + b2 == f.data.substr(10, 10));
}

TEST_CASE("FaultBackend: a call due both to fail and to be short fails") {
  FaultPlan plan;
  plan.fail_every_nth = 2;
  plan.short_every_nth = 2;
  Fixture f(plan);
  auto r1 = f.Read(0, 100);
  REQUIRE(r1.ok());
  CHECK(r1->size() == 100);
  auto r2 = f.Read(0, 100);
  CHECK_FALSE(r2.ok());
  auto r3 = f.Read(0, 100);
  REQUIRE(r3.ok());
  CHECK(r3->size() == 100);
  CHECK(f.be->reads() == 2);
  CHECK(f.be->bytes_read() == 200);
}

TEST_CASE("FaultBackend: schedules of fail and short reads interleave by call number") {
  FaultPlan plan;
  plan.fail_every_nth = 4;
  plan.short_every_nth = 3;
  Fixture f(plan);
  std::string outcome;
  for (int call = 1; call <= 12; ++call) {
    auto r = f.Read(0, 64);
    outcome += !r.ok() ? 'F' : (r->size() == 32 ? 'S' : '.');
  }
  // Calls 4, 8, 12 fail; 3, 6, 9 are short (12 is both: it fails).
  CHECK(outcome == "..SF.S.FS..F");
  CHECK(f.be->reads() == 9);
  CHECK(f.be->bytes_read() == 6 * 64 + 3 * 32);
}

TEST_CASE("FaultBackend counters add up across threads") {
  FaultPlan plan;
  plan.fail_every_nth = 5;
  Fixture f(plan);
  constexpr int kThreads = 4;
  constexpr int kReads = 250;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  std::vector<int> bad_data(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string buf(256, '\0');
      for (int i = 0; i < kReads; ++i) {
        uint64_t off = static_cast<uint64_t>((t * kReads + i) % 200) * 256;
        auto r = f.be->read_buf(*f.h, off, std::span<char>(buf.data(), buf.size()));
        if (!r.ok()) {
          ++failures[t];
        } else if (*r != 256 || buf != f.data.substr(off, 256)) {
          ++bad_data[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  int total_failures = 0;
  for (int t = 0; t < kThreads; ++t) {
    total_failures += failures[t];
    CHECK(bad_data[t] == 0);
  }
  // Every 5th of the 1000 calls failed, however the threads interleaved.
  CHECK(total_failures == 200);
  CHECK(f.be->reads() == 800);
  CHECK(f.be->bytes_read() == 800 * 256);
}

TEST_CASE("FaultBackend with latency still returns the right data") {
  FaultPlan plan;
  plan.latency_ms = 1;
  Fixture f(plan);
  auto r = f.Read(100, 200);
  REQUIRE(r.ok());
  CHECK(*r == f.data.substr(100, 200));
  auto st = f.be->stat("data");
  REQUIRE(st.ok());
  CHECK(st->st.st_size == static_cast<off_t>(kFileSize));
  auto ls = f.be->list("");
  REQUIRE(ls.ok());
  REQUIRE(ls->size() == 1);
  CHECK((*ls)[0].name == "data");
}

TEST_CASE("FaultBackend passes the calls its plan does not choose to the inner backend untouched") {
  FaultPlan plan;
  plan.ops.reset().set(static_cast<size_t>(Op::kRead));  // only reads are affected
  plan.fail_every_nth = 1;
  plan.short_every_nth = 1;
  Fixture f(plan);
  CHECK(f.be->describe().rfind("posix:", 0) == 0);
  CHECK(f.be->capabilities().writable);

  auto h = f.be->create("new", O_RDWR, 0644);
  REQUIRE(h.ok());
  const std::string text = "written through";
  auto n = f.be->write(**h, 0, std::span<const char>(text.data(), text.size()));
  REQUIRE(n.ok());
  CHECK(n->written == text.size());
  CHECK(f.be->fsync(**h, true).ok());
  CHECK(f.be->flush(**h).ok());
  auto fst = f.be->fstat(**h);
  REQUIRE(fst.ok());
  CHECK(fst->st.st_size == static_cast<off_t>(text.size()));
  h->reset();
  CHECK(ReadFile(f.tmp / "new") == text);

  CHECK(f.be->mkdir("d", 0755).ok());
  CHECK(f.be->symlink("new", "d/ln").ok());
  CHECK(*f.be->readlink("d/ln") == "new");
  CHECK(f.be->link("new", "d/hard")->identity == f.be->stat("new")->identity);
  CHECK(f.be->rename("d/hard", "d/hard2", 0).ok());
  cachefuse::netfs::SetAttr ch;
  ch.size = 3;
  CHECK(f.be->setattr("new", ch, nullptr)->st.st_size == 3);
  CHECK(f.be->access("new", F_OK).ok());
  CHECK(f.be->statfs("").ok());
  CHECK(f.be->unlink("d/hard2").ok());
  CHECK(f.be->unlink("d/ln").ok());
  CHECK(f.be->rmdir("d").ok());
  CHECK(f.be->stat("d").err() == ENOENT);
  // Bad paths are still rejected by the inner backend.
  CHECK(f.be->stat("../x").err() == EINVAL);
  // None of this was chosen, nor counted as a read.
  CHECK(f.be->calls() == 0);
  CHECK(f.be->reads() == 0);
  CHECK(f.be->bytes_read() == 0);
  // Reads are.
  CHECK_FALSE(f.Read(0, 10).ok());
  CHECK(f.be->calls() == 1);
}

namespace {

// Makes every call of the interface once, in Op order, against the fixture's
// tree, and returns each call's status.
std::vector<Status> CallEach(Backend& be, OpenFile& file) {
  char buf[4];
  struct iovec iov {
    buf, sizeof buf
  };
  const std::string x = "x";
  std::vector<Status> out;
  out.push_back(be.stat("data").status());
  out.push_back(be.list("").status());
  out.push_back(be.open("data", O_RDONLY).status());
  out.push_back(be.create("made", O_RDWR, 0644).status());
  out.push_back(be.fstat(file).status());
  out.push_back(be.read_range(file, 0, std::span<const struct iovec>(&iov, 1), {}).status());
  out.push_back(be.write(file, 0, std::span<const char>(x.data(), x.size())).status());
  out.push_back(be.fsync(file, false));
  out.push_back(be.flush(file));
  out.push_back(be.fallocate(file, 0, 0, 1));
  out.push_back(be.setattr("data", cachefuse::netfs::SetAttr{}, nullptr).status());
  out.push_back(be.mkdir("dir", 0755).status());
  out.push_back(be.mknod("fifo", S_IFIFO | 0644, 0).status());
  out.push_back(be.symlink("data", "ln").status());
  out.push_back(be.readlink("ln").status());
  out.push_back(be.unlink("ln"));
  out.push_back(be.rmdir("dir"));
  out.push_back(be.rename("made", "made2", 0));
  out.push_back(be.link("data", "data2").status());
  out.push_back(be.statfs("").status());
  out.push_back(be.access("data", F_OK));
  out.push_back(be.getxattr("data", "user.none", nullptr).status());
  out.push_back(be.listxattr("data", nullptr).status());
  out.push_back(be.setxattr("data", "user.x", "v", 0, nullptr));
  out.push_back(be.removexattr("data", "user.x", nullptr));
  return out;
}

}  // namespace

TEST_CASE("FaultBackend can fail every kind of call, and only the chosen kind") {
  for (size_t i = 0; i < kOpCount; ++i) {
    const Op op = static_cast<Op>(i);
    INFO("chosen: " << OpName(op));
    FaultPlan plan;
    plan.ops.reset().set(i);
    plan.fail_every_nth = 1;
    plan.fail_with = Status::Transient(ECONNRESET, std::string("injected ") + OpName(op));
    Fixture f(plan);
    auto rw = f.be->open("data", O_RDWR);  // not chosen unless op is kOpen
    OpenFileRef file = rw.ok() ? *rw : f.h;
    std::vector<Status> got = CallEach(*f.be, *file);
    REQUIRE(got.size() == kOpCount);
    for (size_t j = 0; j < kOpCount; ++j) {
      INFO("call: " << OpName(static_cast<Op>(j)) << ": " << got[j].ToString());
      if (j == i) {
        CHECK(got[j].kind() == Status::Kind::kTransient);
        CHECK(got[j].err() == ECONNRESET);
        CHECK(got[j].context() == plan.fail_with.context());
      } else {
        CHECK(got[j].err() != ECONNRESET);
      }
    }
    CHECK(f.be->calls() == (op == Op::kOpen ? 2 : 1));
  }
}

TEST_CASE("FaultBackend fail_first_n fails the first N chosen calls, then lets them through") {
  FaultPlan plan;
  plan.fail_first_n = 3;
  plan.fail_with = Status::Transient(ECONNREFUSED, "down");
  Fixture f(plan);
  std::string outcome;
  for (int i = 0; i < 6; ++i) outcome += f.be->stat("data").ok() ? '.' : 'F';
  CHECK(outcome == "FFF...");
  CHECK(f.be->calls() == 6);

  SECTION("set_plan starts the schedule afresh") {
    f.be->set_plan(plan);
    outcome.clear();
    for (int i = 0; i < 5; ++i) outcome += f.be->list("").ok() ? '.' : 'F';
    CHECK(outcome == "FFF..");
    f.be->set_plan(FaultPlan{});
    CHECK(f.be->stat("data").ok());
    CHECK(f.be->calls() == 12);  // chosen calls of every plan
  }
}

TEST_CASE("FaultBackend fail_every_nth counts the chosen calls of every kind together") {
  FaultPlan plan;
  plan.fail_every_nth = 2;
  Fixture f(plan);
  CHECK(f.be->stat("data").ok());           // 1
  CHECK_FALSE(f.be->list("").ok());         // 2
  CHECK(f.Read(0, 10).ok());                // 3
  CHECK_FALSE(f.be->open("data", 0).ok());  // 4
  CHECK(f.be->access("data", F_OK).ok());   // 5
  CHECK_FALSE(f.be->stat("data").ok());     // 6
  CHECK(f.be->calls() == 6);
}

TEST_CASE("FaultBackend latency delays the chosen calls") {
  FaultPlan plan;
  plan.latency_ms = 50;
  plan.ops.reset().set(static_cast<size_t>(Op::kStat));
  Fixture f(plan);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(f.be->stat("data").ok());
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
}

TEST_CASE("FaultBackend hangs end at the call's deadline with a time-out") {
  FaultPlan plan;
  plan.hang_every_nth = 2;
  Fixture f(plan);
  std::string buf(100, '\0');
  ReadOptions options;

  // Call 1 goes through; call 2 hangs until its deadline, long before hang_ms.
  options.deadline = Clock::now() + 200ms;
  REQUIRE(f.be->read_buf(*f.h, 0, std::span<char>(buf.data(), buf.size()), options).ok());
  auto t0 = Clock::now();
  options.deadline = t0 + 200ms;
  auto r = f.be->read_buf(*f.h, 0, std::span<char>(buf.data(), buf.size()), options);
  auto took = Clock::now() - t0;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().kind() == Status::Kind::kTimeout);
  CHECK(r.err() == ETIMEDOUT);
  CHECK_THAT(r.status().context(), Catch::Matchers::Contains("injected hang"));
  CHECK(took >= 195ms);
  CHECK(took < 2s);
  CHECK(f.be->reads() == 1);

  SECTION("a deadline already past: no wait") {
    CHECK(f.be->stat("data").ok());  // 3
    options.deadline = Clock::now() - 1s;
    t0 = Clock::now();
    r = f.be->read_buf(*f.h, 0, std::span<char>(buf.data(), buf.size()), options);  // 4
    CHECK(r.status().kind() == Status::Kind::kTimeout);
    CHECK(Clock::now() - t0 < 1s);
  }
}

TEST_CASE("FaultBackend hangs of calls without a deadline last hang_ms") {
  FaultPlan plan;
  plan.hang_every_nth = 1;
  plan.hang_ms = 150;
  plan.ops.reset().set(static_cast<size_t>(Op::kStat)).set(static_cast<size_t>(Op::kRename));
  Fixture f(plan);
  for (int i = 0; i < 2; ++i) {
    auto t0 = Clock::now();
    Status s = i == 0 ? f.be->stat("data").status() : f.be->rename("data", "moved", 0);
    auto took = Clock::now() - t0;
    CHECK(s.kind() == Status::Kind::kTimeout);
    CHECK(took >= 145ms);
    CHECK(took < 2s);
  }
  // A hung call never reached the source.
  CHECK(std::filesystem::exists(f.tmp / "data"));
  CHECK_FALSE(std::filesystem::exists(f.tmp / "moved"));
}

TEST_CASE("FaultBackend short reads only where reads are chosen") {
  FaultPlan plan;
  plan.short_every_nth = 1;
  plan.ops.reset().set(static_cast<size_t>(Op::kStat));
  Fixture f(plan);
  auto r = f.Read(0, 100);
  REQUIRE(r.ok());
  CHECK(r->size() == 100);
}

TEST_CASE("FaultBackend set_plan while reads run in other threads") {
  Fixture f(FaultPlan{});
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      std::string buf(64, '\0');
      while (!stop.load()) {
        auto r = f.be->read_buf(*f.h, 0, std::span<char>(buf.data(), buf.size()));
        if (r.ok() && (*r == 0 || buf.substr(0, *r) != f.data.substr(0, *r))) ++bad;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    FaultPlan plan;
    plan.fail_every_nth = 1 + i % 3;
    plan.short_every_nth = 1 + i % 2;
    f.be->set_plan(plan);
  }
  f.be->set_plan(FaultPlan{});
  stop = true;
  for (auto& th : readers) th.join();
  CHECK(bad == 0);
  CHECK(f.Read(0, 64).ok());
}
