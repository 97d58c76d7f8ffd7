// Tests for cache/read_helper: single-flight, granule-sized fetches, backend and
// cache failures, read-ahead, and byte-exact reads of awkward sizes on both engines.
#include "cache/read_helper.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <thread>

#include "cache/fault_engine.h"
#include "cache_test_util.h"

namespace cachefuse::cache {
namespace {

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

}  // namespace

TEST_CASE("read: concurrent readers of cold granules share one fetch", "[read_helper]") {
  Harness h;
  netfs::FaultPlan plan;
  plan.latency_ms = 100;
  h.UseFaultBackend(plan);
  h.OpenCache();
  const uint64_t size = 4 * G + 100;
  const std::string data = MakeSource(h, "f", size, 1);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  c->Use(false);

  constexpr int kThreads = 8;
  std::vector<std::string> got(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      got[i] = h.Read(*c, f, 0, size);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(Mismatch(g, data) == "");
  CHECK(h.fault->bytes_read() == size);
  CHECK(h.stats().bytes_from_backend == size);
  CHECK(h.stats().read_requests == kThreads);

  // Then from the cache, still one fetch in all.
  REQUIRE(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(*c, f, 0, size), data) == "");
  CHECK(h.fault->bytes_read() == size);
  c->Unuse(c->aux(), c->size());
}

TEST_CASE("read: random reads fetch at most one granule each and never read ahead", "[read_helper]") {
  Harness h;
  h.UseFaultBackend(netfs::FaultPlan{});
  h.rh_opts.readahead = 8 * G;
  h.OpenCache();
  const uint64_t size = 64 * G;
  const std::string data = MakeSource(h, "f", size, 2);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  c->Use(false);
  StreamState stream;
  std::mt19937_64 rng(3);
  uint64_t prev_end = 1;
  for (int i = 0; i < 200; ++i) {
    uint64_t off = rng() % (size / 4096) * 4096;
    if (off == prev_end) off = (off + 8 * G) % size;  // never continue the previous read
    const uint64_t reads = h.fault->reads();
    const uint64_t bytes = h.fault->bytes_read();
    CHECK(Mismatch(h.Read(*c, f, off, 4096, &stream), data.substr(off, 4096)) == "");
    CHECK(h.fault->reads() - reads <= 1);
    CHECK(h.fault->bytes_read() - bytes <= G);
    prev_end = off + 4096;
  }
  CHECK(h.stats().readahead_bytes == 0);
  CHECK(h.fault->bytes_read() <= size);
  c->Unuse(c->aux(), c->size());
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
  c->Use(false);
  WithWatchdog([&] {
    for (uint64_t i = 0; i < 100; ++i) {
      const uint64_t off = (i * 37 % 128) * G + 512;
      CHECK(Mismatch(h.Read(*c, f, off, 1000), data.substr(off, 1000)) == "");
    }
  });
  // And a large read still gets its buffers.
  WithWatchdog([&] { CHECK(Mismatch(h.Read(*c, f, 3 * G, 3 * G), data.substr(3 * G, 3 * G)) == ""); });
  // Once the cache writes are done, the last user's going frees every kept granule.
  for (uint64_t i = 0; i < 100; ++i) CHECK(h.WaitCached(*c, (i * 37 % 128) * G, G));
  CHECK(h.WaitCached(*c, 3 * G, 3 * G));
  c->Unuse(c->aux(), c->size());
  CHECK(h.cache->pool().free_count() == h.cache->pool().count());
}

TEST_CASE("read: short reads from the backend still give the right bytes", "[read_helper]") {
  Harness h;
  netfs::FaultPlan plan;
  plan.short_every_nth = 1;  // every call returns half of its first buffer
  h.UseFaultBackend(plan);
  h.OpenCache();
  const uint64_t size = 5 * G + 333;
  const std::string data = MakeSource(h, "f", size, 5);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  c->Use(false);
  CHECK(Mismatch(h.Read(*c, f, 0, size), data) == "");
  CHECK(h.fault->reads() > 6);  // one fetch of 6 granules took many short calls
  CHECK(Mismatch(h.Read(*c, f, 100, 3 * G), data.substr(100, 3 * G)) == "");
  for (uint64_t off = 0; off < size; off += 7777) {
    const size_t len = std::min<uint64_t>(7777, size - off);
    CHECK(Mismatch(h.Read(*c, f, off, len), data.substr(off, len)) == "");
  }
  CHECK(h.fault->bytes_read() == h.stats().bytes_from_backend);
  REQUIRE(h.WaitCached(*c, 0, size));
  c->Unuse(c->aux(), c->size());
}

TEST_CASE("read: backend errors surface as the read's status", "[read_helper]") {
  Harness h;
  netfs::FaultPlan plan;
  plan.fail_every_nth = 1;
  plan.fail_errno = EIO;
  h.UseFaultBackend(plan);
  h.OpenCache();
  const uint64_t size = 3 * G;
  const std::string data = MakeSource(h, "f", size, 6);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  c->Use(false);
  Status st;
  CHECK(h.Read(*c, f, 0, size, nullptr, &st).empty());
  CHECK(st.err() == EIO);
  CHECK(h.Read(*c, f, G + 10, 100, nullptr, &st).empty());
  CHECK(st.err() == EIO);
  // A backend error is not a cache error.
  CHECK(h.stats().cache_errors == 0);
  CHECK(h.cache->state() == CacheState::kActive);
  CHECK(c->CachedRanges().empty());

  // Nothing is left poisoned: the same granules read through a healthy handle.
  auto healthy = netfs::PosixBackend::Open(h.src_dir);
  REQUIRE(healthy.ok());
  auto handle = healthy.value()->open("f", O_RDONLY);
  REQUIRE(handle.ok());
  auto good = std::make_shared<netfs::OpenFile>(healthy.value().get(), *handle);
  CHECK(Mismatch(h.Read(*c, good, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  // Cached now: even the failing handle gets the bytes, from the cache.
  CHECK(Mismatch(h.Read(*c, f, 0, size), data) == "");
  good.reset();
  c->Unuse(c->aux(), c->size());
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
  c->Use(false);
  REQUIRE(Mismatch(h.Read(*c, f, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  const uint64_t fetched = h.stats().bytes_from_backend;
  REQUIRE(fetched == size);

  EngineFaults faults;
  faults.fail_reads = true;
  engine->set_faults(faults);
  for (uint64_t g = 0; g < 6; ++g) {
    CHECK(Mismatch(h.Read(*c, f, g * G, G), data.substr(g * G, G)) == "");
    CHECK(h.stats().cache_errors == std::min<uint64_t>(g + 1, 3));
    CHECK(h.cache->state() == (g + 1 < 3 ? CacheState::kActive : CacheState::kDead));
    CHECK(h.stats().bytes_from_backend == fetched + (g + 1) * G);
  }
  CHECK(h.stats().bytes_from_cache == 0);
  // Dead: nothing is claimed any more, and the whole file still reads right.
  CHECK(c->CachedRanges().empty());
  CHECK(Mismatch(h.Read(*c, f, 0, size), data) == "");
  CHECK(h.stats().cache_errors == 3);
  c->Unuse(c->aux(), c->size());
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
  c->Use(false);
  CHECK(Mismatch(h.Read(*c, f, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(*c, f, 0, size), data) == "");  // every cache read fails; refetched
  CHECK(h.stats().cache_errors == 4);
  CHECK(h.stats().bytes_from_cache == 0);
  CHECK(h.stats().bytes_from_backend == 2 * size);
  c->Unuse(c->aux(), c->size());
}

TEST_CASE("read: sequential reads read ahead with several fetches in flight", "[read_helper]") {
  Harness h;
  netfs::FaultPlan plan;
  plan.latency_ms = 20;
  h.UseFaultBackend(plan);
  h.rh_opts.readahead = 8 * G;
  h.rh_opts.max_fetch = G;  // one granule per fetch: read-ahead runs in parallel
  h.rh_opts.max_backend_inflight = 4;
  h.OpenCache();
  const uint64_t size = 32 * G;
  const std::string data = MakeSource(h, "f", size, 9);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  c->Use(false);
  StreamState stream;
  for (uint64_t off = 0; off < size; off += G) {
    REQUIRE(Mismatch(h.Read(*c, f, off, G, &stream), data.substr(off, G)) == "");
  }
  CHECK(h.stats().readahead_bytes > 0);
  CHECK(h.stats().backend_inflight_max > 1);
  // Read ahead, not read twice.
  CHECK(h.fault->bytes_read() == size);
  REQUIRE(h.WaitCached(*c, 0, size));
  c->Unuse(c->aux(), c->size());
  CHECK(h.cache->pool().free_count() == h.cache->pool().count());

  // Reading it again: read-ahead comes from the cache.
  c->Use(false);
  StreamState again;
  for (uint64_t off = 0; off < size; off += G) {
    REQUIRE(Mismatch(h.Read(*c, f, off, G, &again), data.substr(off, G)) == "");
  }
  CHECK(h.fault->bytes_read() == size);
  c->Unuse(c->aux(), c->size());
}

TEST_CASE("read: readahead=0 fetches only what is read", "[read_helper]") {
  Harness h;
  netfs::FaultPlan plan;
  plan.latency_ms = 2;
  h.UseFaultBackend(plan);
  h.rh_opts.readahead = 0;
  h.OpenCache();
  const uint64_t size = 16 * G;
  const std::string data = MakeSource(h, "f", size, 10);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  c->Use(false);
  StreamState stream;
  for (uint64_t off = 0; off < size / 2; off += G) {
    REQUIRE(Mismatch(h.Read(*c, f, off, G, &stream), data.substr(off, G)) == "");
  }
  CHECK(h.stats().readahead_bytes == 0);
  CHECK(h.stats().backend_inflight_max == 1);
  CHECK(h.fault->reads() == 8);
  CHECK(h.fault->bytes_read() == size / 2);
  c->Unuse(c->aux(), c->size());
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
    c->Use(false);
    auto check_reads = [&] {
      CHECK(Mismatch(h.Read(*c, f, 0, size), data) == "");
      CHECK(Mismatch(h.Read(*c, f, 0, size + 4096), data) == "");  // asks past EOF
      CHECK(h.Read(*c, f, size, 100).empty());                     // at EOF
      CHECK(h.Read(*c, f, size + 1, 100).empty());                 // past EOF
      CHECK(h.Read(*c, f, size + 10 * G, 100).empty());
      CHECK(h.Read(*c, f, 0, 0).empty());  // zero-length
      CHECK(h.Read(*c, f, size / 2, 0).empty());
      if (size > 0) {
        CHECK(Mismatch(h.Read(*c, f, size - 1, 100), data.substr(size - 1)) == "");
        CHECK(Mismatch(h.Read(*c, f, 0, 1), data.substr(0, 1)) == "");
      }
      for (uint64_t piece : {uint64_t{1000}, uint64_t{4096}, G - 1, G + 3}) {
        for (uint64_t off = 0; off < size; off += piece) {
          const uint64_t len = std::min(piece, size - off);
          CHECK(Mismatch(h.Read(*c, f, off, piece), data.substr(off, len)) == "");
        }
      }
    };
    // Cold.
    const uint64_t fetched = h.stats().bytes_from_backend;
    check_reads();
    CHECK(h.stats().bytes_from_backend >= fetched + size);
    REQUIRE(h.WaitCached(*c, 0, size));
    // Warm: kept pieces are dropped when the last user goes; then all from the cache.
    c->Unuse(c->aux(), c->size());
    c->Use(false);
    const uint64_t from_backend = h.stats().bytes_from_backend;
    const uint64_t from_cache = h.stats().bytes_from_cache;
    check_reads();
    CHECK(h.stats().bytes_from_backend == from_backend);
    if (size > 0) CHECK(h.stats().bytes_from_cache > from_cache);
    c->Unuse(c->aux(), c->size());
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
  c->Use(false);
  CHECK(Mismatch(h.Read(*c, f, 100, 1 << 20), data.substr(100, 1 << 20)) == "");  // 1 MiB over 257 granules
  Status st;
  CHECK(h.Read(*c, f, 0, 2 << 20, nullptr, &st).empty());
  CHECK(st.err() == EINVAL);
  c->Unuse(c->aux(), c->size());
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
  c->Use(false);
  engine->HoldWrites();
  StreamState stream;
  for (uint64_t off = 0; off < 4 * G; off += G) {
    REQUIRE(Mismatch(h.Read(*c, f, off, G, &stream), data.substr(off, G)) == "");
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
  c->Unuse(c->aux(), c->size());
  REQUIRE(h.cache->CullNow().ok());
  CHECK(Ranges(*c).size() == 1);
  c.reset();
  f.reset();
  h.CloseCache();
}

}  // namespace cachefuse::cache
