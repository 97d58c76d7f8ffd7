// Tests for cache/read_helper: single-flight, granule-sized fetches, source and
// cache failures, read-ahead, byte-exact reads of awkward sizes on both engines,
// and versions: no read mixes two versions of a file (kStale instead), while a
// change through the mount moves the generation's token along.
#include "cache/read_helper.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>

#include "cache/fault_engine.h"
#include "cache_test_util.h"
#include "fake_fetcher.h"

namespace cachefuse::cache {
namespace {

using test::FetchPlan;
using test::Harness;
using test::Mismatch;
using test::RandomBytes;
using test::Ranges;

constexpr uint64_t G = 64 * 1024;  // the harness's granule

std::string MakeSource(Harness& h, const std::string& name, size_t size, unsigned seed) {
  std::string data = RandomBytes(size, seed);
  test::WriteFile(h.src(name), data);
  return data;
}

// Runs fn on a thread; a hang becomes a test failure (and an abort) instead of a stuck run.
void WithWatchdog(const std::function<void()>& fn) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    fn();
    done = true;
  });
  if (!test::WaitUntil([&] { return done.load(); }, std::chrono::seconds(30))) {
    FAIL_CHECK("hung: still waiting after 30 s");
    std::abort();
  }
  t.join();
}

// A gate that fetches can be held at (FakeFetcher::set_before_read). Wait
// gives up after a generous hang limit, so a test that goes wrong fails
// instead of hanging.
class Gate {
 public:
  void Wait() {
    std::unique_lock lk(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait_for(lk, std::chrono::seconds(30), [&] { return open_; });
    --waiting_;
  }
  void Open() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until n fetches are held at the gate.
  bool WaitHeld(int n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(30), [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

bool IsStale(const Status& st) {
  return st.kind() == Status::Kind::kStale;
}

}  // namespace

TEST_CASE("read: concurrent readers of cold granules share one fetch", "[read_helper]") {
  Harness h;
  FetchPlan plan;
  plan.latency_ms = 100;
  h.UseFaults(plan);
  h.OpenCache();
  const uint64_t size = 4 * G + 100;
  const std::string data = MakeSource(h, "f", size, 1);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);

  constexpr int kThreads = 8;
  std::vector<std::string> got(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      got[i] = h.Read(u, f, 0, size);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(Mismatch(g, data) == "");
  CHECK(h.fetches->bytes_read() == size);
  CHECK(h.stats().bytes_from_backend == size);
  CHECK(h.stats().read_requests == kThreads);

  // Then from the cache, still one fetch in all.
  REQUIRE(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.fetches->bytes_read() == size);
  h.Unuse(*c, u);
}

TEST_CASE("read: random reads fetch at most one granule each and never read ahead", "[read_helper]") {
  Harness h;
  h.rh_opts.readahead = 8 * G;
  h.OpenCache();
  const uint64_t size = 64 * G;
  const std::string data = MakeSource(h, "f", size, 2);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  StreamState stream;
  std::mt19937_64 rng(3);
  uint64_t prev_end = 1;
  for (int i = 0; i < 200; ++i) {
    uint64_t off = rng() % (size / 4096) * 4096;
    if (off == prev_end) off = (off + 8 * G) % size;  // never continue the previous read
    const uint64_t reads = h.fetches->reads.load();
    const uint64_t bytes = h.fetches->bytes_read();
    CHECK(Mismatch(h.Read(u, f, off, 4096, &stream), data.substr(off, 4096)) == "");
    CHECK(h.fetches->reads.load() - reads <= 1);
    CHECK(h.fetches->bytes_read() - bytes <= G);
    prev_end = off + 4096;
  }
  CHECK(h.stats().readahead_bytes == 0);
  CHECK(h.fetches->bytes_read() <= size);
  h.Unuse(*c, u);
}

TEST_CASE("read: small random reads on a small pool never wait for the flusher", "[read_helper]") {
  // Each read ends inside its granule, so the rest of it is kept in memory for
  // a next read; kept granules must not starve the reads that follow.
  Harness h;
  h.opts.max_inflight = 1;                        // the smallest pool: 16 buffers
  h.opts.flush_interval = std::chrono::hours(1);  // nothing frees kept granules behind our back
  h.OpenCache();
  REQUIRE(h.cache->pool().count() == 16);
  const uint64_t size = 128 * G;
  const std::string data = MakeSource(h, "f", size, 4);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  WithWatchdog([&] {
    for (uint64_t i = 0; i < 100; ++i) {
      const uint64_t off = (i * 37 % 128) * G + 512;
      CHECK(Mismatch(h.Read(u, f, off, 1000), data.substr(off, 1000)) == "");
    }
  });
  // And a large read still gets its buffers.
  WithWatchdog([&] { CHECK(Mismatch(h.Read(u, f, 3 * G, 3 * G), data.substr(3 * G, 3 * G)) == ""); });
  // Once the cache writes are done, the last user's going frees every kept granule.
  for (uint64_t i = 0; i < 100; ++i) CHECK(h.WaitCached(*c, (i * 37 % 128) * G, G));
  CHECK(h.WaitCached(*c, 3 * G, 3 * G));
  h.Unuse(*c, u);
  CHECK(h.cache->pool().free_count() == h.cache->pool().count());
}

TEST_CASE("read: short reads from the source still give the right bytes", "[read_helper]") {
  Harness h;
  FetchPlan plan;
  plan.short_every_nth = 1;  // every call returns half of its first buffer
  h.UseFaults(plan);
  h.OpenCache();
  const uint64_t size = 5 * G + 333;
  const std::string data = MakeSource(h, "f", size, 5);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.fetches->reads.load() > 6);  // one fetch of 6 granules took many short calls
  CHECK(Mismatch(h.Read(u, f, 100, 3 * G), data.substr(100, 3 * G)) == "");
  for (uint64_t off = 0; off < size; off += 7777) {
    const size_t len = std::min<uint64_t>(7777, size - off);
    CHECK(Mismatch(h.Read(u, f, off, len), data.substr(off, len)) == "");
  }
  CHECK(h.fetches->bytes_read() == h.stats().bytes_from_backend);
  REQUIRE(h.WaitCached(*c, 0, size));
  h.Unuse(*c, u);
}

TEST_CASE("read: source errors surface as the read's status", "[read_helper]") {
  Harness h;
  FetchPlan plan;
  plan.fail_every_nth = 1;
  plan.fail_with = Status::FromErrno(EIO, "injected");
  h.UseFaults(plan);
  h.OpenCache();
  const uint64_t size = 3 * G;
  const std::string data = MakeSource(h, "f", size, 6);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  Status st;
  CHECK(h.Read(u, f, 0, size, nullptr, &st).empty());
  CHECK(st.err() == EIO);
  CHECK(h.Read(u, f, G + 10, 100, nullptr, &st).empty());
  CHECK(st.err() == EIO);
  // A source error is not a cache error.
  CHECK(h.stats().cache_errors == 0);
  CHECK(h.cache->state() == CacheState::kActive);
  CHECK(c->CachedRanges().empty());

  // Nothing is left poisoned: the same granules read through a healthy fetcher.
  auto good = std::make_shared<test::FakeFetcher>(h.src("f"));
  good->CheckVersions();
  CHECK(Mismatch(h.Read(u, good, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  // Cached now: even the failing handle gets the bytes, from the cache.
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  good.reset();
  h.Unuse(*c, u);
}

TEST_CASE("read: a cache that fails every read serves the source and then withdraws", "[read_helper]") {
  Harness h;
  h.opts.cache_error_limit = 3;
  FaultEngine* engine = nullptr;
  h.opts.wrap_engine = [&](std::unique_ptr<IoEngine> e) {
    auto fe = std::make_unique<FaultEngine>(std::move(e), EngineFaults{});
    engine = fe.get();
    return std::unique_ptr<IoEngine>(std::move(fe));
  };
  h.OpenCache();
  const uint64_t size = 6 * G;
  const std::string data = MakeSource(h, "f", size, 7);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  REQUIRE(Mismatch(h.Read(u, f, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  const uint64_t fetched = h.stats().bytes_from_backend;
  REQUIRE(fetched == size);

  EngineFaults faults;
  faults.fail_reads = true;
  engine->set_faults(faults);
  for (uint64_t g = 0; g < 6; ++g) {
    CHECK(Mismatch(h.Read(u, f, g * G, G), data.substr(g * G, G)) == "");
    CHECK(h.stats().cache_errors == std::min<uint64_t>(g + 1, 3));
    CHECK(h.cache->state() == (g + 1 < 3 ? CacheState::kActive : CacheState::kDead));
    CHECK(h.stats().bytes_from_backend == fetched + (g + 1) * G);
  }
  CHECK(h.stats().bytes_from_cache == 0);
  // Dead: nothing is claimed any more, and the whole file still reads right.
  CHECK(c->CachedRanges().empty());
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.stats().cache_errors == 3);
  h.Unuse(*c, u);
}

TEST_CASE("read: a cache that fails every read from the start (debug_fail_cache_reads)", "[read_helper]") {
  Harness h;
  h.opts.debug_fail_cache_reads = true;
  h.opts.cache_error_limit = 100;
  h.OpenCache();
  const uint64_t size = 3 * G + 5;
  const std::string data = MakeSource(h, "f", size, 8);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");  // every cache read fails; refetched
  CHECK(h.stats().cache_errors == 4);
  CHECK(h.stats().bytes_from_cache == 0);
  CHECK(h.stats().bytes_from_backend == 2 * size);
  h.Unuse(*c, u);
}

TEST_CASE("read: sequential reads read ahead with several fetches in flight", "[read_helper]") {
  Harness h;
  FetchPlan plan;
  plan.latency_ms = 20;
  h.UseFaults(plan);
  h.rh_opts.readahead = 8 * G;
  h.rh_opts.max_fetch = G;  // one granule per fetch: read-ahead runs in parallel
  h.rh_opts.max_backend_inflight = 4;
  h.OpenCache();
  const uint64_t size = 32 * G;
  const std::string data = MakeSource(h, "f", size, 9);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  StreamState stream;
  for (uint64_t off = 0; off < size; off += G) {
    REQUIRE(Mismatch(h.Read(u, f, off, G, &stream), data.substr(off, G)) == "");
  }
  CHECK(h.stats().readahead_bytes > 0);
  CHECK(h.stats().backend_inflight_max > 1);
  // Read ahead, not read twice.
  CHECK(h.fetches->bytes_read() == size);
  REQUIRE(h.WaitCached(*c, 0, size));
  h.Unuse(*c, u);
  CHECK(h.cache->pool().free_count() == h.cache->pool().count());

  // Reading it again: read-ahead comes from the cache.
  u = c->Use(false);
  StreamState again;
  for (uint64_t off = 0; off < size; off += G) {
    REQUIRE(Mismatch(h.Read(u, f, off, G, &again), data.substr(off, G)) == "");
  }
  CHECK(h.fetches->bytes_read() == size);
  h.Unuse(*c, u);
}

TEST_CASE("read: readahead=0 fetches only what is read", "[read_helper]") {
  Harness h;
  FetchPlan plan;
  plan.latency_ms = 2;
  h.UseFaults(plan);
  h.rh_opts.readahead = 0;
  h.OpenCache();
  const uint64_t size = 16 * G;
  const std::string data = MakeSource(h, "f", size, 10);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  StreamState stream;
  for (uint64_t off = 0; off < size / 2; off += G) {
    REQUIRE(Mismatch(h.Read(u, f, off, G, &stream), data.substr(off, G)) == "");
  }
  CHECK(h.stats().readahead_bytes == 0);
  CHECK(h.stats().backend_inflight_max == 1);
  CHECK(h.fetches->reads.load() == 8);
  CHECK(h.fetches->bytes_read() == size / 2);
  h.Unuse(*c, u);
}

TEST_CASE("read: awkward sizes cold and warm on both engines are byte-exact", "[read_helper]") {
  const EngineChoice engine = GENERATE(EngineChoice::kSync, EngineChoice::kAuto);
  Harness h;
  h.opts.engine = engine;
  h.OpenCache();
  INFO("engine " << h.cache->engine().name());
  CHECK(h.cache->engine().direct());
  const std::vector<uint64_t> sizes = {0, 1, 4095, 4096, 4097, G - 1, G, G + 1, 3 * G + 17};
  unsigned seed = 20;
  for (uint64_t size : sizes) {
    INFO("size " << size);
    const std::string name = "f" + std::to_string(size);
    const std::string data = MakeSource(h, name, size, seed++);
    CookieRef c = h.Acquire(name);
    auto f = h.OpenFile(name);
    UseToken u = c->Use(false);
    auto check_reads = [&] {
      CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
      CHECK(Mismatch(h.Read(u, f, 0, size + 4096), data) == "");  // asks past EOF
      CHECK(h.Read(u, f, size, 100).empty());                     // at EOF
      CHECK(h.Read(u, f, size + 1, 100).empty());                 // past EOF
      CHECK(h.Read(u, f, size + 10 * G, 100).empty());
      CHECK(h.Read(u, f, 0, 0).empty());  // zero-length
      CHECK(h.Read(u, f, size / 2, 0).empty());
      if (size > 0) {
        CHECK(Mismatch(h.Read(u, f, size - 1, 100), data.substr(size - 1)) == "");
        CHECK(Mismatch(h.Read(u, f, 0, 1), data.substr(0, 1)) == "");
      }
      for (uint64_t piece : {uint64_t{1000}, uint64_t{4096}, G - 1, G + 3}) {
        for (uint64_t off = 0; off < size; off += piece) {
          const uint64_t len = std::min(piece, size - off);
          CHECK(Mismatch(h.Read(u, f, off, piece), data.substr(off, len)) == "");
        }
      }
    };
    // Cold.
    const uint64_t fetched = h.stats().bytes_from_backend;
    check_reads();
    CHECK(h.stats().bytes_from_backend >= fetched + size);
    REQUIRE(h.WaitCached(*c, 0, size));
    // Warm: kept pieces are dropped when the last user goes; then all from the cache.
    h.Unuse(*c, u);
    u = c->Use(false);
    const uint64_t from_backend = h.stats().bytes_from_backend;
    const uint64_t from_cache = h.stats().bytes_from_cache;
    check_reads();
    CHECK(h.stats().bytes_from_backend == from_backend);
    if (size > 0) CHECK(h.stats().bytes_from_cache > from_cache);
    h.Unuse(*c, u);
  }
  CHECK(h.stats().cache_errors == 0);
  CHECK(h.cache->pool().free_count() == h.cache->pool().count());
}

TEST_CASE("read: a read larger than the reply can hold is refused", "[read_helper]") {
  Harness h;
  h.opts.granule = 4096;
  h.OpenCache();
  const uint64_t size = 2 << 20;
  const std::string data = MakeSource(h, "f", size, 11);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  CHECK(Mismatch(h.Read(u, f, 100, 1 << 20), data.substr(100, 1 << 20)) == "");  // 1 MiB over 257 granules
  Status st;
  CHECK(h.Read(u, f, 0, 2 << 20, nullptr, &st).empty());
  CHECK(st.err() == EINVAL);
  h.Unuse(*c, u);
}

TEST_CASE("read: the ReadHelper can go away with fetches and cache writes and kept read-ahead in flight",
          "[read_helper]") {
  // As at unmount: the helper is destroyed first, the cache is closed after.
  Harness h;
  test::TestEngine* engine = nullptr;
  h.opts.wrap_engine = [&](std::unique_ptr<IoEngine> e) {
    auto t = std::make_unique<test::TestEngine>(std::move(e));
    engine = t.get();
    return std::unique_ptr<IoEngine>(std::move(t));
  };
  h.rh_opts.readahead = 8 * G;
  h.OpenCache();
  const uint64_t size = 32 * G;
  const std::string data = MakeSource(h, "f", size, 12);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  engine->HoldWrites();
  StreamState stream;
  for (uint64_t off = 0; off < 4 * G; off += G) {
    REQUIRE(Mismatch(h.Read(u, f, off, G, &stream), data.substr(off, G)) == "");
  }
  REQUIRE(h.stats().readahead_bytes > 0);
  REQUIRE(engine->WaitHeld(4));

  std::atomic<bool> gone{false};
  std::thread destroy([&] {
    h.helper.reset();
    gone = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  engine->ReleaseWrites();
  destroy.join();
  CHECK(gone);
  // Nothing the helper made is left behind in the object or the pool.
  CHECK(h.cache->pool().free_count() == h.cache->pool().count());
  h.Unuse(*c, u);
  REQUIRE(h.cache->CullNow().ok());
  CHECK(Ranges(*c).size() == 1);
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();
}

// ---------------------------------------------------------------------------
// Versions: a read never mixes two versions of a file.

TEST_CASE("read: a file overwritten in place: uncached granules fail as stale, cached ones read the old bytes",
          "[read_helper]") {
  Harness h;
  h.rh_opts.readahead = GENERATE(uint64_t{0}, 8 * G);
  h.OpenCache();
  INFO("readahead " << h.rh_opts.readahead);
  const uint64_t size = 16 * G + 100;
  const std::string v1 = MakeSource(h, "f", size, 30);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  StreamState stream;
  REQUIRE(Mismatch(h.Read(u, f, 0, G, &stream), v1.substr(0, G)) == "");
  REQUIRE(Mismatch(h.Read(u, f, G, G, &stream), v1.substr(G, G)) == "");
  // What this generation holds before the change: granules 0-1, and with
  // read-ahead also the eight after them (fetched while the file was as it was).
  const uint64_t cached = h.rh_opts.readahead > 0 ? 10 * G : 2 * G;
  REQUIRE(h.WaitCached(*c, 0, cached));
  REQUIRE(test::WaitUntil([&] { return h.stats().io_completed.load() == h.stats().io_submitted.load(); }));

  // Overwritten in place by someone else: same inode and size, new bytes, new token.
  const std::string v2 = RandomBytes(size, 31);
  const std::string t2 = test::ChangeInPlace(h.src("f"), 0, v2);
  REQUIRE(t2 != c->aux());
  const uint64_t stale_before = h.fetches->stale.load();
  const std::vector<std::pair<uint64_t, uint64_t>> uncached = {
      {cached, G},               // a whole granule
      {cached + G + 5, 1000},    // inside one (read-ahead of the ones after it fails too)
      {16 * G, 100},             // the last, short one
      {cached - G + 10, 2 * G},  // from a cached granule into an uncached one
      {0, 16 * G},               // nearly all of it
      {cached, G},               // again: a failed fetch leaves nothing a later read could serve
  };
  for (int round = 0; round < 2; ++round) {
    for (const auto& [off, len] : uncached) {
      INFO("round " << round << " read at " << off << " of " << len);
      Status st;
      const std::string got = h.Read(u, f, off, len, round == 0 ? &stream : nullptr, &st);
      CHECK(IsStale(st));
      CHECK(got.empty());  // never a byte of the new version
    }
  }
  CHECK(h.fetches->stale.load() > stale_before);
  CHECK(h.stats().cache_errors == 0);
  // What this generation cached is still its version of the bytes.
  CHECK(Mismatch(h.Read(u, f, 0, cached), v1.substr(0, cached)) == "");
  CHECK(Mismatch(h.Read(u, f, G + 7, 500), v1.substr(G + 7, 500)) == "");
  // Nothing of the new version went into this generation's cache.
  REQUIRE(test::WaitUntil([&] { return h.stats().io_completed.load() == h.stats().io_submitted.load(); }));
  CHECK(Ranges(*c) == std::vector<std::pair<uint64_t, uint64_t>>{{0, cached}});

  // The next open, after the daemon saw the new token, reads the new version.
  h.Unuse(*c, u);
  c->Invalidate(t2, size);
  auto f2 = h.OpenFile("f");
  u = c->Use(false);
  CHECK(Mismatch(h.Read(u, f2, 0, size), v2) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(u, f2, 0, size), v2) == "");
  h.Unuse(*c, u);
  CHECK(test::WaitUntil([&] { return h.cache->pool().free_count() == h.cache->pool().count(); }));
}

TEST_CASE("read: a source shorter than the generation says fails as stale, never as a short read", "[read_helper]") {
  Harness h;
  SECTION("a source that checks versions") {
    h.check_versions = true;
  }
  SECTION("a source that cannot tell: the early end of file gives it away") {
    h.check_versions = false;
  }
  h.OpenCache();
  const uint64_t size = 4 * G + 100;
  const std::string v1 = MakeSource(h, "f", size, 32);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  REQUIRE(Mismatch(h.Read(u, f, 0, G), v1.substr(0, G)) == "");
  REQUIRE(h.WaitCached(*c, 0, G));

  // Truncated by someone else, into granule 2.
  REQUIRE(::truncate(h.src("f").c_str(), static_cast<off_t>(2 * G + 100)) == 0);
  const std::vector<std::pair<uint64_t, uint64_t>> beyond = {
      {2 * G, G},        // the granule the new end is in
      {2 * G + 50, 10},  // bytes the source still has, in a granule it no longer has whole
      {3 * G, G},        // past the new end
      {4 * G, 100},      // the old last granule
      {G + 10, 2 * G},   // from before the new end to after it
      {0, size},         // all of it
  };
  for (const auto& [off, len] : beyond) {
    INFO("read at " << off << " of " << len);
    Status st;
    const std::string got = h.Read(u, f, off, len, nullptr, &st);
    CHECK(IsStale(st));
    CHECK(got.empty());
  }
  // Granule 1 is whole in the shorter file, with this version's bytes: a source
  // that checks versions refuses it (the token moved), one that cannot tell serves it.
  Status st;
  const std::string one = h.Read(u, f, G, G, nullptr, &st);
  if (h.check_versions) {
    CHECK(IsStale(st));
    CHECK(one.empty());
  } else {
    CHECK(st.ok());
    CHECK(Mismatch(one, v1.substr(G, G)) == "");
  }
  // The cached granule is still served.
  CHECK(Mismatch(h.Read(u, f, 0, G), v1.substr(0, G)) == "");
  CHECK(h.stats().cache_errors == 0);
  for (const auto& [start, end] : Ranges(*c)) CHECK(end <= 2 * G);  // nothing past the new end was cached
  h.Unuse(*c, u);
  CHECK(h.cache->pool().free_count() == h.cache->pool().count());
}

TEST_CASE("read: a change through the mount racing a fetch: the fetch follows the new token", "[read_helper]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = 4 * G;
  const std::string v1 = MakeSource(h, "f", size, 33);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken w = c->Use(/*will_modify=*/true);
  // The first fetch is held before it reads, until the change has reached the source.
  Gate gate;
  std::atomic<int> calls{0};
  f->set_before_read([&](uint64_t) {
    if (calls++ == 0) gate.Wait();
  });
  std::string first;
  Status first_st;
  std::thread reader([&] { first = h.Read(w, f, 0, 2 * G, nullptr, &first_st); });
  CHECK(gate.WaitHeld(1));

  // A write through the mount of granules 1 and 2.
  const std::string patch = RandomBytes(G, 34);
  std::string v2 = v1;
  v2.replace(G + G / 2, G, patch);
  std::string during;
  {
    ChangeScope scope = c->BeginChange();
    const std::string t2 = test::ChangeInPlace(h.src("f"), G + G / 2, patch);  // the write reaches the source
    c->NoteWrite(G + G / 2, G, t2, size);                                      // and its answer comes back
    // A read during the change, of a granule the change touched and one it did not.
    during = h.Read(w, f, 2 * G, 2 * G);
    // The held fetch reads now: the source's token is not the one it was given.
    gate.Open();
    reader.join();
  }
  CHECK(first_st.ok());
  CHECK(Mismatch(first, v2.substr(0, 2 * G)) == "");
  CHECK(Mismatch(during, v2.substr(2 * G, 2 * G)) == "");
  CHECK(h.fetches->stale.load() >= 1);  // the race did happen
  // After the change: the new bytes, cached as such.
  Status st;
  CHECK(Mismatch(h.Read(w, f, 0, size, nullptr, &st), v2) == "");
  CHECK(st.ok());
  REQUIRE(h.WaitCached(*c, 0, size));
  const uint64_t fetched = h.stats().bytes_from_backend;
  CHECK(Mismatch(h.Read(w, f, 0, size), v2) == "");
  CHECK(h.stats().bytes_from_backend == fetched);
  h.Unuse(*c, w);
}

TEST_CASE("read: a read during a slow change through the mount is retried until the change is done", "[read_helper]") {
  // Cookie::BeginChange: while the scope lives, a fetch that finds the token
  // moved is retried, not failed. Here the source took its time to answer the
  // write (the new token comes back late).
  Harness h;
  h.OpenCache();
  const uint64_t size = 2 * G;
  const std::string v1 = MakeSource(h, "f", size, 35);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken w = c->Use(/*will_modify=*/true);
  const std::string patch = RandomBytes(1000, 36);
  std::string v2 = v1;
  v2.replace(100, patch.size(), patch);

  std::optional<ChangeScope> scope;
  scope.emplace(c->BeginChange());
  const std::string t2 = test::ChangeInPlace(h.src("f"), 100, patch);  // reached the source; no answer yet
  std::atomic<bool> done{false};
  std::string got;
  Status st;
  std::thread reader([&] {
    got = h.Read(w, f, 0, size, nullptr, &st);
    done = true;
  });
  // The change takes long (not an assertion: the outcome must not depend on how long).
  test::WaitUntil([&] { return done.load() || h.fetches->calls.load() > 500; }, std::chrono::seconds(3));
  c->NoteWrite(100, patch.size(), t2, size);
  scope.reset();
  reader.join();
  INFO("read: " << st.ToString() << " after " << h.fetches->calls.load() << " fetches");
  CHECK(st.ok());
  CHECK(Mismatch(got, v2) == "");
  h.Unuse(*c, w);
}

// ---------------------------------------------------------------------------
// Parallel misses, read-ahead memory, DIRTY

TEST_CASE("read: the misses of one read in separate runs are fetched in parallel", "[read_helper]") {
  Harness h;
  FetchPlan plan;
  plan.latency_ms = 20;
  h.UseFaults(plan);
  h.OpenCache();
  const uint64_t size = 3 * G;
  const std::string data = MakeSource(h, "f", size, 37);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  // Granule 1 cached; 0 and 2 absent: two runs of misses.
  REQUIRE(Mismatch(h.Read(u, f, G, G), data.substr(G, G)) == "");
  REQUIRE(h.WaitCached(*c, G, G));
  const uint64_t reads = h.fetches->reads.load();
  h.fetches->max_inflight = 0;
  // Each fetch waits until another one is in flight too (up to a hang limit):
  // fetched one after the other, they would pass only after the limit each.
  f->set_before_read(
      [&](uint64_t) { test::WaitUntil([&] { return h.fetches->inflight.load() >= 2; }, std::chrono::seconds(10)); });
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.fetches->reads.load() - reads == 2);
  CHECK(h.fetches->max_inflight.load() >= 2);
  CHECK(h.stats().backend_inflight_max >= 2);
  f->set_before_read(nullptr);
  h.Unuse(*c, u);
}

TEST_CASE("read: read-ahead kept in memory goes at the last release, or after readahead_ttl", "[read_helper]") {
  Harness h;
  h.rh_opts.readahead = 8 * G;
  bool by_ttl = false;
  SECTION("the last use of the generation is released") {
    h.rh_opts.readahead_ttl = std::chrono::hours(1);
  }
  SECTION("nobody came for it within readahead_ttl") {
    h.rh_opts.readahead_ttl = std::chrono::milliseconds(50);
    by_ttl = true;
  }
  h.OpenCache();
  const uint64_t size = 32 * G;
  const std::string data = MakeSource(h, "f", size, 38);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u1 = c->Use(false);
  UseToken u2 = c->Use(false);  // another open of the file
  StreamState stream;
  for (uint64_t off = 0; off < 4 * G; off += G) {
    REQUIRE(Mismatch(h.Read(u1, f, off, G, &stream), data.substr(off, G)) == "");
  }
  REQUIRE(h.stats().readahead_bytes > 0);
  // Read ahead up to granule 12 (two batches); wait until it has all landed in the cache.
  REQUIRE(h.WaitCached(*c, 0, 12 * G));
  REQUIRE(test::WaitUntil([&] { return h.stats().io_completed.load() == h.stats().io_submitted.load(); }));
  BufferPool& pool = h.cache->pool();
  if (by_ttl) {
    CHECK(test::WaitUntil([&] { return pool.free_count() == pool.count(); }));
  } else {
    CHECK(pool.free_count() < pool.count());  // granules 4-11 wait in memory for the reader
    h.Unuse(*c, u1);
    CHECK(pool.free_count() < pool.count());  // u2 still uses the generation
    h.Unuse(*c, u2);
    CHECK(pool.free_count() == pool.count());
    u1 = c->Use(false);
    u2 = c->Use(false);
  }
  // Dropped from memory, not lost: the rest is served from the cache.
  const uint64_t fetched = h.fetches->bytes_read();
  if (!by_ttl) CHECK(fetched == 12 * G);  // (a short ttl may drop read-ahead before its reader comes)
  CHECK(Mismatch(h.Read(u2, f, 4 * G, 8 * G), data.substr(4 * G, 8 * G)) == "");
  CHECK(h.fetches->bytes_read() == fetched);
  h.Unuse(*c, u1);
  h.Unuse(*c, u2);
  CHECK(pool.free_count() == pool.count());
}

TEST_CASE("read: read-ahead still loading at the last release is freed when it lands", "[read_helper]") {
  // ReadHelper::Release: if nobody else uses the generation, the read-ahead
  // granules kept in memory for it are freed; those still on their way must
  // not stay kept (until readahead_ttl) when they land.
  Harness h;
  h.rh_opts.readahead = 8 * G;
  h.rh_opts.readahead_ttl = std::chrono::hours(1);
  h.OpenCache();
  const uint64_t size = 32 * G;
  const std::string data = MakeSource(h, "f", size, 39);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  Gate gate;
  f->set_before_read([&](uint64_t off) {
    if (off >= 2 * G) gate.Wait();  // read-ahead is held
  });
  UseToken u = c->Use(false);
  StreamState stream;
  REQUIRE(Mismatch(h.Read(u, f, 0, G, &stream), data.substr(0, G)) == "");
  REQUIRE(Mismatch(h.Read(u, f, G, G, &stream), data.substr(G, G)) == "");
  CHECK(gate.WaitHeld(1));
  h.Unuse(*c, u);
  gate.Open();
  REQUIRE(h.WaitCached(*c, 0, 10 * G));
  REQUIRE(test::WaitUntil([&] { return h.stats().io_completed.load() == h.stats().io_submitted.load(); }));
  BufferPool& pool = h.cache->pool();
  CHECK(test::WaitUntil([&] { return pool.free_count() == pool.count(); }, std::chrono::seconds(5)));
}

TEST_CASE("read: DIRTY comes off once the last writer goes while a reader still uses the file", "[read_helper]") {
  Harness h;
  h.opts.flush_interval = std::chrono::hours(1);  // flushes only when the test says
  h.OpenCache();
  const uint64_t size = 3 * G;
  std::string data = MakeSource(h, "f", size, 40);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  const std::string path = h.object_path("f");
  UseToken w = c->Use(/*will_modify=*/true);
  UseToken r = c->Use(false);
  REQUIRE(Mismatch(h.Read(r, f, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));

  const std::string patch = RandomBytes(1000, 41);
  data.replace(G + 10, patch.size(), patch);
  {
    ChangeScope scope = c->BeginChange();
    const std::string t2 = test::ChangeInPlace(h.src("f"), G + 10, patch);
    c->NoteWrite(G + 10, patch.size(), t2, size);
  }
  REQUIRE(test::ReadAux(path));
  CHECK(test::ReadAux(path)->dirty());
  REQUIRE(h.cache->CullNow().ok());
  CHECK(test::ReadAux(path)->dirty());  // the writer is still there

  h.Unuse(*c, w);
  REQUIRE(h.cache->CullNow().ok());
  auto aux = test::ReadAux(path);
  REQUIRE(aux);
  CHECK_FALSE(aux->dirty());
  CHECK(aux->coherency == c->aux());
  // The reader goes on, with the new bytes.
  CHECK(Mismatch(h.Read(r, f, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  h.Unuse(*c, r);
  c->Relinquish(false);
  c.reset();
  w = r = UseToken();
  h.CloseCache();

  // What was persisted is trusted at the next start.
  h.OpenCache();
  c = h.Acquire("f");
  f = h.OpenFile("f");
  r = c->Use(false);
  CHECK(h.stats().objects_discarded == 0);
  CHECK(Mismatch(h.Read(r, f, 0, size), data) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  h.Unuse(*c, r);
}

}  // namespace cachefuse::cache
