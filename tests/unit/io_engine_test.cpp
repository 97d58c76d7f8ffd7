// Tests for cache/io_engine, uring_engine, sync_engine and fault_engine: one suite
// run against both engines, on O_DIRECT files of an ext4 scratch dir.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>

#include "cache/buffer_pool.h"
#include "cache/fault_engine.h"
#include "cache/io_engine.h"
#include "cache/sync_engine.h"
#include "cache/uring_engine.h"
#include "cache_test_util.h"
#include "common/unique_fd.h"

namespace cachefuse::cache {
namespace {

using test::RandomBytes;
using test::TempDir;

struct UringFactory {
  static constexpr bool kRegisters = true;
  static std::unique_ptr<IoEngine> Make(Stats* stats, unsigned depth) {
    auto e = UringEngine::Create(stats, depth);
    REQUIRE(e.ok());
    return std::move(e.value());
  }
};

struct SyncFactory {
  static constexpr bool kRegisters = false;
  static std::unique_ptr<IoEngine> Make(Stats* stats, unsigned depth) {
    return std::make_unique<SyncEngine>(stats, /*direct=*/true, std::min(depth, 4u));
  }
};

// Completions for a batch of asynchronous I/Os, and a wait for all of them.
class Batch {
 public:
  explicit Batch(size_t n) : ones_(n) {
    for (auto& o : ones_) o.batch = this;
  }
  IoCompletion* at(size_t i) { return &ones_[i]; }
  ssize_t result(size_t i) {
    std::lock_guard lk(mu_);
    return ones_[i].result;
  }
  bool Wait() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(20), [&] { return count_ == ones_.size(); });
  }

 private:
  struct One final : IoCompletion {
    Batch* batch = nullptr;
    ssize_t result = std::numeric_limits<ssize_t>::min();
    void OnIoComplete(ssize_t r) override {
      std::lock_guard lk(batch->mu_);
      result = r;
      ++batch->count_;
      batch->cv_.notify_all();
    }
  };
  std::mutex mu_;
  std::condition_variable cv_;
  size_t count_ = 0;
  std::vector<One> ones_;
};

constexpr size_t kBuf = 64 * 1024;

struct Fixture {
  TempDir dir;
  Stats stats;
  BufferPool pool{kBuf, 8, 2};
  std::string path = dir / "data";
  UniqueFd fd{::open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600)};
  Fixture() { REQUIRE(fd.valid()); }
  void Fill(int index, const std::string& bytes) { std::memcpy(pool.data(index), bytes.data(), bytes.size()); }
  std::string Buf(int index, size_t len) const { return std::string(pool.data(index), len); }
};

}  // namespace

TEMPLATE_TEST_CASE("engine: aligned direct writes and reads of pool buffers at offsets", "[io_engine]", UringFactory,
                   SyncFactory) {
  Fixture f;
  auto engine = TestType::Make(&f.stats, 32);
  const std::string a = RandomBytes(kBuf, 1);
  const std::string b = RandomBytes(4096, 2);
  f.Fill(0, a);
  f.Fill(1, b);
  CHECK(engine->WriteSync(f.fd.get(), 0, f.pool.data(0), kBuf) == static_cast<ssize_t>(kBuf));
  CHECK(engine->WriteSync(f.fd.get(), 3 * kBuf, f.pool.data(0), kBuf) == static_cast<ssize_t>(kBuf));
  CHECK(engine->WriteSync(f.fd.get(), (1 << 20) + 4096, f.pool.data(1), 4096) == 4096);
  CHECK(engine->FdatasyncSync(f.fd.get()) == 0);

  CHECK(engine->ReadSync(f.fd.get(), 3 * kBuf, f.pool.data(2), kBuf) == static_cast<ssize_t>(kBuf));
  CHECK(test::Mismatch(f.Buf(2, kBuf), a) == "");
  CHECK(engine->ReadSync(f.fd.get(), (1 << 20) + 4096, f.pool.data(3), 4096) == 4096);
  CHECK(test::Mismatch(f.Buf(3, 4096), b) == "");
  // A piece from the middle of a buffer's worth, at an aligned offset.
  CHECK(engine->ReadSync(f.fd.get(), 8192, f.pool.data(4), 4096) == 4096);
  CHECK(test::Mismatch(f.Buf(4, 4096), a.substr(8192, 4096)) == "");
  // The hole between the writes reads as zeros.
  CHECK(engine->ReadSync(f.fd.get(), kBuf, f.pool.data(5), kBuf) == static_cast<ssize_t>(kBuf));
  CHECK(test::Mismatch(f.Buf(5, kBuf), std::string(kBuf, '\0')) == "");

  // What the engine wrote is what a plain reader of the file sees.
  std::string whole = test::ReadFile(f.path);
  REQUIRE(whole.size() == (1 << 20) + 8192);
  CHECK(test::Mismatch(whole.substr(0, kBuf), a) == "");
  CHECK(test::Mismatch(whole.substr(3 * kBuf, kBuf), a) == "");
  CHECK(test::Mismatch(whole.substr((1 << 20) + 4096), b) == "");
  CHECK(f.stats.io_errors == 0);
  CHECK(f.stats.io_submitted == f.stats.io_completed);
  CHECK(f.stats.io_submitted == 8);
}

TEMPLATE_TEST_CASE("engine: more I/Os in flight than the queue depth all complete", "[io_engine]", UringFactory,
                   SyncFactory) {
  Fixture f;
  auto engine = TestType::Make(&f.stats, 4);
  constexpr size_t kN = 96;
  constexpr size_t kLen = 4096;
  // Each write takes its bytes from a different 4 KiB piece of the pool.
  std::string pattern = RandomBytes(8 * kBuf, 3);
  for (int i = 0; i < 8; ++i) f.Fill(i, pattern.substr(static_cast<size_t>(i) * kBuf, kBuf));
  auto src = [&](size_t i) { return f.pool.data(static_cast<int>(i % 8)) + (i / 8) * kLen; };

  Batch writes(kN);
  for (size_t i = 0; i < kN; ++i) engine->Write(f.fd.get(), i * kLen, src(i), kLen, -1, writes.at(i));
  REQUIRE(writes.Wait());
  for (size_t i = 0; i < kN; ++i) CHECK(writes.result(i) == static_cast<ssize_t>(kLen));
  CHECK(engine->FdatasyncSync(f.fd.get()) == 0);

  std::string expect;
  for (size_t i = 0; i < kN; ++i) expect.append(src(i), kLen);
  CHECK(test::Mismatch(test::ReadFile(f.path), expect) == "");

  // Reads back into a separate aligned buffer, all in flight at once.
  std::unique_ptr<char, decltype(&std::free)> back(static_cast<char*>(std::aligned_alloc(4096, kN * kLen)), &std::free);
  Batch reads(kN);
  for (size_t i = 0; i < kN; ++i) engine->Read(f.fd.get(), i * kLen, back.get() + i * kLen, kLen, -1, reads.at(i));
  REQUIRE(reads.Wait());
  for (size_t i = 0; i < kN; ++i) CHECK(reads.result(i) == static_cast<ssize_t>(kLen));
  CHECK(test::Mismatch(std::string(back.get(), kN * kLen), expect) == "");
  CHECK(f.stats.io_completed == 2 * kN + 1);
  CHECK(f.stats.io_errors == 0);
}

TEMPLATE_TEST_CASE("engine: reads past EOF return short counts", "[io_engine]", UringFactory, SyncFactory) {
  Fixture f;
  auto engine = TestType::Make(&f.stats, 8);
  f.Fill(0, RandomBytes(kBuf, 4));
  REQUIRE(engine->WriteSync(f.fd.get(), 0, f.pool.data(0), 3 * 4096) == 3 * 4096);
  CHECK(engine->ReadSync(f.fd.get(), 0, f.pool.data(1), kBuf) == 3 * 4096);
  CHECK(engine->ReadSync(f.fd.get(), 8192, f.pool.data(1), kBuf) == 4096);
  CHECK(test::Mismatch(f.Buf(1, 4096), f.Buf(0, 3 * 4096).substr(8192)) == "");
  CHECK(engine->ReadSync(f.fd.get(), 3 * 4096, f.pool.data(1), 4096) == 0);
  CHECK(engine->ReadSync(f.fd.get(), 1 << 30, f.pool.data(1), 4096) == 0);

  // A file whose size is not a multiple of the block: the count stops at EOF.
  REQUIRE(::ftruncate(f.fd.get(), 3 * 4096 + 100) == 0);
  CHECK(engine->ReadSync(f.fd.get(), 3 * 4096, f.pool.data(1), 4096) == 100);
  CHECK(f.stats.io_errors == 0);
}

TEMPLATE_TEST_CASE("engine: misaligned direct I/O reports -EINVAL", "[io_engine]", UringFactory, SyncFactory) {
  Fixture f;
  auto engine = TestType::Make(&f.stats, 8);
  f.Fill(0, RandomBytes(kBuf, 5));
  REQUIRE(engine->WriteSync(f.fd.get(), 0, f.pool.data(0), 8192) == 8192);
  CHECK(engine->ReadSync(f.fd.get(), 100, f.pool.data(1), 4096) == -EINVAL);    // offset
  CHECK(engine->ReadSync(f.fd.get(), 0, f.pool.data(1) + 1, 4096) == -EINVAL);  // memory
  CHECK(engine->ReadSync(f.fd.get(), 0, f.pool.data(1), 1000) == -EINVAL);      // length
  CHECK(engine->WriteSync(f.fd.get(), 100, f.pool.data(0), 4096) == -EINVAL);
  CHECK(engine->WriteSync(f.fd.get(), 0, f.pool.data(0) + 8, 4096) == -EINVAL);
  CHECK(f.stats.io_errors == 5);
  // The engine goes on working after the errors.
  CHECK(engine->ReadSync(f.fd.get(), 4096, f.pool.data(1), 4096) == 4096);
  CHECK(test::Mismatch(f.Buf(1, 4096), f.Buf(0, 8192).substr(4096)) == "");
}

TEMPLATE_TEST_CASE("engine: registered buffers", "[io_engine]", UringFactory, SyncFactory) {
  Fixture f;
  auto engine = TestType::Make(&f.stats, 8);
  CHECK(engine->RegisterBuffers(f.pool.Iovecs()) == TestType::kRegisters);
  const std::string a = RandomBytes(kBuf, 6);
  f.Fill(2, a);
  // buf_index names the pool buffer (fixed-buffer I/O on uring); a part of a buffer works too.
  CHECK(engine->WriteSync(f.fd.get(), kBuf, f.pool.data(2), kBuf, 2) == static_cast<ssize_t>(kBuf));
  CHECK(engine->WriteSync(f.fd.get(), 0, f.pool.data(2) + 4096, 4096, 2) == 4096);
  CHECK(engine->FdatasyncSync(f.fd.get()) == 0);
  CHECK(engine->ReadSync(f.fd.get(), kBuf, f.pool.data(5), kBuf, 5) == static_cast<ssize_t>(kBuf));
  CHECK(test::Mismatch(f.Buf(5, kBuf), a) == "");
  CHECK(engine->ReadSync(f.fd.get(), 0, f.pool.data(6) + 8192, 4096, 6) == 4096);
  CHECK(test::Mismatch(std::string(f.pool.data(6) + 8192, 4096), a.substr(4096, 4096)) == "");
  CHECK(f.stats.io_errors == 0);
  // Fixed-buffer I/O is what uring does here: memory outside the named buffer is refused.
  CHECK(engine->ReadSync(f.fd.get(), 0, f.pool.data(2), 4096, 5) == (TestType::kRegisters ? -EFAULT : 4096));
}

TEMPLATE_TEST_CASE("engine: I/O after Shutdown still completes", "[io_engine]", UringFactory, SyncFactory) {
  // Cache::Close persists after the engine stopped: an fdatasync then must not hang or fail.
  Fixture f;
  auto engine = TestType::Make(&f.stats, 8);
  f.Fill(0, RandomBytes(4096, 7));
  REQUIRE(engine->WriteSync(f.fd.get(), 0, f.pool.data(0), 4096) == 4096);
  engine->Shutdown();
  engine->Shutdown();  // idempotent
  CHECK(engine->FdatasyncSync(f.fd.get()) == 0);
  CHECK(engine->WriteSync(f.fd.get(), 4096, f.pool.data(0), 4096) == 4096);
  CHECK(engine->ReadSync(f.fd.get(), 4096, f.pool.data(1), 4096) == 4096);
  CHECK(test::Mismatch(f.Buf(1, 4096), f.Buf(0, 4096)) == "");
}

TEMPLATE_TEST_CASE("engine: FaultEngine failures reach the completion", "[io_engine]", UringFactory, SyncFactory) {
  Fixture f;
  f.Fill(0, RandomBytes(kBuf, 8));
  {
    auto plain = TestType::Make(&f.stats, 8);
    REQUIRE(plain->WriteSync(f.fd.get(), 0, f.pool.data(0), 8192) == 8192);
  }

  SECTION("EIO") {
    EngineFaults faults;
    faults.fail_reads = faults.fail_writes = faults.fail_syncs = true;
    FaultEngine engine(TestType::Make(&f.stats, 8), faults);
    Batch b(3);
    engine.Read(f.fd.get(), 0, f.pool.data(1), 4096, -1, b.at(0));
    engine.Write(f.fd.get(), 0, f.pool.data(1), 4096, -1, b.at(1));
    engine.Fdatasync(f.fd.get(), b.at(2));
    REQUIRE(b.Wait());
    CHECK(b.result(0) == -EIO);
    CHECK(b.result(1) == -EIO);
    CHECK(b.result(2) == -EIO);
    // Nothing reached the file.
    CHECK(test::Mismatch(test::ReadFile(f.path), f.Buf(0, 8192)) == "");
  }
  SECTION("EINVAL") {
    EngineFaults faults;
    faults.fail_reads = true;
    faults.fail_errno = EINVAL;
    FaultEngine engine(TestType::Make(&f.stats, 8), faults);
    CHECK(engine.ReadSync(f.fd.get(), 0, f.pool.data(1), 4096) == -EINVAL);
    // Writes and syncs are not failed: they pass through.
    CHECK(engine.WriteSync(f.fd.get(), 8192, f.pool.data(0), 4096) == 4096);
    CHECK(engine.FdatasyncSync(f.fd.get()) == 0);
  }
  SECTION("short reads") {
    EngineFaults faults;
    faults.short_reads = true;
    FaultEngine engine(TestType::Make(&f.stats, 8), faults);
    std::memset(f.pool.data(1), 0x5A, 8192);
    CHECK(engine.ReadSync(f.fd.get(), 0, f.pool.data(1), 8192) == 4096);
    CHECK(test::Mismatch(f.Buf(1, 4096), f.Buf(0, 4096)) == "");
  }
  SECTION("faults change while running") {
    FaultEngine engine(TestType::Make(&f.stats, 8), EngineFaults{});
    CHECK(engine.ReadSync(f.fd.get(), 0, f.pool.data(1), 4096) == 4096);
    EngineFaults faults;
    faults.fail_reads = true;
    faults.fail_errno = ENOSPC;
    engine.set_faults(faults);
    CHECK(engine.ReadSync(f.fd.get(), 0, f.pool.data(1), 4096) == -ENOSPC);
    engine.set_faults(EngineFaults{});
    CHECK(engine.ReadSync(f.fd.get(), 0, f.pool.data(1), 4096) == 4096);
  }
}

TEST_CASE("MakeEngine picks the engine and says why", "[io_engine]") {
  Stats stats;
  std::string why;
  SECTION("auto without O_DIRECT falls back to sync") {
    auto e = MakeEngine(EngineChoice::kAuto, /*direct_ok=*/false, &stats, &why);
    REQUIRE(e.ok());
    CHECK(std::string(e.value()->name()) == "sync");
    CHECK_FALSE(e.value()->direct());
    CHECK_FALSE(why.empty());
    CHECK(why.find("O_DIRECT") != std::string::npos);
    CHECK(std::string(stats.io_engine.load()) == "sync");
  }
  SECTION("uring without O_DIRECT fails") {
    auto e = MakeEngine(EngineChoice::kUring, /*direct_ok=*/false, &stats, &why);
    REQUIRE_FALSE(e.ok());
    CHECK(e.err() == ENOTSUP);
    CHECK(e.status().context().find("O_DIRECT") != std::string::npos);
  }
  SECTION("sync when asked, direct when it can") {
    auto e = MakeEngine(EngineChoice::kSync, /*direct_ok=*/true, &stats, &why);
    REQUIRE(e.ok());
    CHECK(std::string(e.value()->name()) == "sync");
    CHECK(e.value()->direct());
    CHECK_FALSE(why.empty());
  }
  SECTION("auto with O_DIRECT picks uring here") {
    auto e = MakeEngine(EngineChoice::kAuto, /*direct_ok=*/true, &stats, &why);
    REQUIRE(e.ok());
    CHECK(std::string(e.value()->name()) == "uring");
    CHECK(e.value()->direct());
    CHECK(std::string(stats.io_engine.load()) == "uring");
    CHECK_FALSE(why.empty());
  }
}

}  // namespace cachefuse::cache
