// Tests for netfs_backends/fault_backend: injected read failures, short reads, counters.
#include <catch2/catch.hpp>

#include <fcntl.h>

#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "netfs_backends/fault_backend.h"
#include "netfs_backends/posix/posix_backend.h"
#include "test_util.h"

using cachefuse::Status;
using cachefuse::netfs::FaultBackend;
using cachefuse::netfs::FaultPlan;
using cachefuse::netfs::Handle;
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
  Handle h = 0;

  explicit Fixture(FaultPlan plan) {
    WriteFile(tmp / "data", data);
    auto inner = PosixBackend::Open(tmp.path());
    REQUIRE(inner.ok());
    be = std::make_unique<FaultBackend>(std::move(inner.value()), plan);
    auto opened = be->open("data", O_RDONLY);
    REQUIRE(opened.ok());
    h = *opened;
  }
  ~Fixture() { be->close(h); }

  // One read_range of n bytes at off into a fresh buffer; the buffer is
  // trimmed to what was read.
  cachefuse::Result<std::string> Read(uint64_t off, size_t n) {
    std::string buf(n, '\0');
    auto r = be->read_buf(h, off, std::span<char>(buf.data(), buf.size()));
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

TEST_CASE("FaultBackend fail_every_nth with a chosen errno") {
  FaultPlan plan;
  plan.fail_every_nth = 1;
  plan.fail_errno = ETIMEDOUT;
  Fixture f(plan);
  for (int i = 0; i < 3; ++i) {
    auto r = f.Read(0, 10);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err() == ETIMEDOUT);
    CHECK(r.status().kind() == Status::Kind::kTransient);
  }
  CHECK(f.be->reads() == 0);
  CHECK(f.be->bytes_read() == 0);
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
  auto n = f.be->read_range(f.h, 200, std::span<const struct iovec>(iov, 2));
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
  auto n = f.be->read_range(f.h, 10, std::span<const struct iovec>(iov, 2));
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
        auto r = f.be->read_buf(f.h, off, std::span<char>(buf.data(), buf.size()));
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

TEST_CASE("FaultBackend passes every other call to the inner backend untouched") {
  FaultPlan plan;
  plan.fail_every_nth = 1;  // only reads are affected
  plan.short_every_nth = 1;
  Fixture f(plan);
  CHECK(f.be->describe().rfind("posix:", 0) == 0);
  CHECK(f.be->capabilities().writable);

  auto h = f.be->create("new", O_RDWR, 0644);
  REQUIRE(h.ok());
  const std::string text = "written through";
  auto n = f.be->write(*h, 0, std::span<const char>(text.data(), text.size()));
  REQUIRE(n.ok());
  CHECK(*n == text.size());
  CHECK(f.be->fsync(*h, true).ok());
  auto fst = f.be->fstat(*h);
  REQUIRE(fst.ok());
  CHECK(fst->st.st_size == static_cast<off_t>(text.size()));
  f.be->close(*h);
  CHECK(ReadFile(f.tmp / "new") == text);

  CHECK(f.be->mkdir("d", 0755).ok());
  CHECK(f.be->symlink("new", "d/ln").ok());
  CHECK(*f.be->readlink("d/ln") == "new");
  CHECK(f.be->link("new", "d/hard")->identity == f.be->stat("new")->identity);
  CHECK(f.be->rename("d/hard", "d/hard2", 0).ok());
  cachefuse::netfs::SetAttr ch;
  ch.size = 3;
  CHECK(f.be->setattr("new", ch, std::nullopt)->st.st_size == 3);
  CHECK(f.be->access("new", F_OK).ok());
  CHECK(f.be->statfs("").ok());
  CHECK(f.be->unlink("d/hard2").ok());
  CHECK(f.be->unlink("d/ln").ok());
  CHECK(f.be->rmdir("d").ok());
  CHECK(f.be->stat("d").err() == ENOENT);
  // Bad paths are still rejected by the inner backend.
  CHECK(f.be->stat("../x").err() == EINVAL);
  // None of this counted as a read.
  CHECK(f.be->reads() == 0);
  CHECK(f.be->bytes_read() == 0);
}
