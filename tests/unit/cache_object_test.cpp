// Tests for cache/cookie and cache/cache_object: the rules of DESIGN.md section 4
// (the map never over-claims, DIRTY, invalidation, the graveyard), driven
// through the Cookie API with a local source (FakeFetcher) and the ReadHelper
// filling the cache.
#include "cache/cache_object.h"

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "cache/fault_engine.h"
#include "cache_test_util.h"

namespace cachefuse::cache {
namespace {

using test::Harness;
using test::Mismatch;
using test::RandomBytes;
using test::Ranges;
using RangeList = std::vector<std::pair<uint64_t, uint64_t>>;

constexpr uint64_t G = 64 * 1024;  // the harness's granule

// Reads [0, size) in pieces of at most 1 MiB.
std::string ReadAll(Harness& h, const UseToken& u, const FetcherRef& f, uint64_t size, uint64_t piece = 1 << 20) {
  std::string out;
  for (uint64_t off = 0; off < size; off += piece) out += h.Read(u, f, off, std::min(piece, size - off));
  return out;
}

// A source file of random bytes.
std::string MakeSource(Harness& h, const std::string& name, size_t size, unsigned seed) {
  std::string data = RandomBytes(size, seed);
  test::WriteFile(h.src(name), data);
  return data;
}

// Reads a whole file through the cache and waits until all of it is cached.
void Fill(Harness& h, Cookie& c, const UseToken& u, const FetcherRef& f, const std::string& expect) {
  REQUIRE(Mismatch(ReadAll(h, u, f, expect.size()), expect) == "");
  REQUIRE(h.WaitCached(c, 0, expect.size()));
}

// Caches `name` (of `data`) completely, persists it and closes the cache.
void CacheAndClose(Harness& h, const std::string& name, const std::string& data) {
  {
    CookieRef c = h.Acquire(name);
    auto f = h.OpenFile(name);
    UseToken u = c->Use(false);
    Fill(h, *c, u, f, data);
    h.Unuse(*c, u);
    c->Relinquish(false);
  }
  h.CloseCache();
}

// Many one-granule islands far apart in a sparse file: a map too big for the xattr.
struct Islands {
  std::string name = "islands";
  uint64_t size = 0;
  std::vector<uint64_t> offs;
  std::vector<std::string> data;
};

constexpr uint64_t kIslandGranule = 4096;

Islands MakeIslands(Harness& h, size_t n = 1000, uint64_t gap_granules = 20000) {
  Islands is;
  std::vector<std::pair<uint64_t, std::string>> pieces;
  for (size_t i = 0; i < n; ++i) {
    is.offs.push_back(i * gap_granules * kIslandGranule + 7 * kIslandGranule);
    is.data.push_back(RandomBytes(kIslandGranule, static_cast<unsigned>(100 + i)));
    pieces.emplace_back(is.offs.back(), is.data.back());
  }
  is.size = n * gap_granules * kIslandGranule;
  test::MakeSparseFile(h.src(is.name), is.size, pieces);
  return is;
}

void ReadIslands(Harness& h, const UseToken& u, const FetcherRef& f, const Islands& is) {
  // From the end: the first cache write sets the backing file's size, and the
  // others do not extend it (extending direct writes are slow on ext4).
  for (size_t i = is.offs.size(); i-- > 0;) {
    std::string got = h.Read(u, f, is.offs[i], kIslandGranule);
    REQUIRE(Mismatch(got, is.data[i]) == "");
  }
}

}  // namespace

TEST_CASE("object: cached data survives a restart and is read from the cache", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = 5 * G + 123;
  const std::string data = MakeSource(h, "f", size, 1);
  const test::SourceAttr attr = h.Stat("f");
  {
    CookieRef c = h.Acquire("f");
    CHECK(h.stats().cookies_acquired == 1);
    auto f = h.OpenFile("f");
    UseToken u = c->Use(false);
    CHECK(h.stats().cookies_in_use == 1);
    CHECK(c->CachedRanges().empty());
    Fill(h, *c, u, f, data);
    CHECK(Ranges(*c) == RangeList{{0, size}});
    CHECK(h.stats().bytes_from_backend == size);
    CHECK(h.stats().bytes_to_cache == size);
    h.Unuse(*c, u);
    CHECK(h.stats().cookies_in_use == 0);
    c->Relinquish(false);
    CHECK(h.stats().cookies_relinquished == 1);
  }
  h.CloseCache();

  // On disk: the aux says whose data it is; the map is inline and says all of it.
  const std::string path = h.object_path("f");
  auto aux = test::ReadAux(path);
  REQUIRE(aux);
  CHECK(aux->key == attr.identity);
  CHECK(aux->object_size == size);
  CHECK(aux->coherency == attr.token);
  CHECK_FALSE(aux->dirty());
  auto raw_map = test::GetXattr(path, kMapXattr);
  REQUIRE(raw_map);
  auto rec = DecodeMapXattr(*raw_map);
  REQUIRE(rec);
  CHECK_FALSE(rec->in_sidecar);
  CHECK(rec->granule_shift == 16);
  auto map = ContentMap::Decode(rec->body);
  REQUIRE(map);
  CHECK(map->Extents() == std::vector<GranuleRange>{{0, 6}});
  CHECK_FALSE(test::PathExists(path + ".map"));

  h.OpenCache();
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  CHECK(Ranges(*c) == RangeList{{0, size}});
  CHECK(Mismatch(ReadAll(h, u, f, size, 100000), data) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  CHECK(h.stats().bytes_from_cache == size);
  CHECK(h.stats().objects_discarded == 0);
  CHECK(h.stats().read_hit == h.stats().read_requests);
  h.Unuse(*c, u);
}

TEST_CASE("object: a map too big for the xattr lives in a side-car and comes back", "[cache_object]") {
  Harness h;
  h.opts.granule = kIslandGranule;
  h.OpenCache();
  const Islands is = MakeIslands(h);
  {
    CookieRef c = h.Acquire(is.name);
    auto f = h.OpenFile(is.name);
    UseToken u = c->Use(false);
    ReadIslands(h, u, f, is);
    REQUIRE(test::WaitUntil([&] { return c->CachedRanges().size() == is.offs.size(); }));
    REQUIRE(h.cache->CullNow().ok());  // persists now
    const std::string path = h.object_path(is.name);
    CHECK(test::PathExists(path + ".map"));
    auto rec = DecodeMapXattr(test::GetXattr(path, kMapXattr).value_or(""));
    REQUIRE(rec);
    CHECK(rec->in_sidecar);
    CHECK(rec->body_len > kInlineMapLimit);
    h.Unuse(*c, u);
    c->Relinquish(false);
  }
  h.CloseCache();

  h.OpenCache();
  CookieRef c = h.Acquire(is.name);
  auto f = h.OpenFile(is.name);
  UseToken u = c->Use(false);
  auto ranges = Ranges(*c);
  REQUIRE(ranges.size() == is.offs.size());
  for (size_t i = 0; i < is.offs.size(); ++i) {
    CHECK(ranges[i] == std::make_pair(is.offs[i], is.offs[i] + kIslandGranule));
  }
  ReadIslands(h, u, f, is);
  CHECK(h.stats().bytes_from_backend == 0);
  CHECK(h.stats().bytes_from_cache == is.offs.size() * kIslandGranule);
  // A hole between the islands is not cached: it comes from the source, as zeros.
  CHECK(h.Read(u, f, 5 * kIslandGranule, 100) == std::string(100, '\0'));
  CHECK(h.stats().bytes_from_backend == kIslandGranule);
  h.Unuse(*c, u);
}

TEST_CASE("object: files of any size: a sparse source of several TiB", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = (5ULL << 40) + 12345;
  const uint64_t tail_len = 300000;
  const std::string tail = RandomBytes(tail_len, 2);
  const uint64_t tail_off = size - tail_len;
  test::MakeSparseFile(h.src("huge"), size, {{tail_off, tail}});
  {
    CookieRef c = h.Acquire("huge");
    CHECK(c->size() == size);
    auto f = h.OpenFile("huge");
    UseToken u = c->Use(false);
    std::string got;
    for (uint64_t off = tail_off; off < size; off += 70000) got += h.Read(u, f, off, 70000);
    CHECK(Mismatch(got, tail) == "");
    // At and past EOF.
    CHECK(h.Read(u, f, size, 10).empty());
    CHECK(h.Read(u, f, size + (1ULL << 30), 10).empty());
    REQUIRE(h.WaitCached(*c, tail_off, tail_len));
    CHECK(Ranges(*c) == RangeList{{tail_off / G * G, size}});
    h.Unuse(*c, u);
    c->Relinquish(false);
  }
  h.CloseCache();

  h.OpenCache();
  CookieRef c = h.Acquire("huge");
  auto f = h.OpenFile("huge");
  UseToken u = c->Use(false);
  CHECK(Ranges(*c) == RangeList{{tail_off / G * G, size}});
  CHECK(Mismatch(h.Read(u, f, tail_off, tail_len), tail) == "");
  CHECK(Mismatch(h.Read(u, f, size - 1, 1), tail.substr(tail_len - 1)) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  // The start of the file is a hole in the source, not in the cache: fetched.
  CHECK(h.Read(u, f, 1ULL << 40, 4096) == std::string(4096, '\0'));
  CHECK(h.stats().bytes_from_backend == G);
  h.Unuse(*c, u);
}

TEST_CASE("object: a crash between data and map never leaves the map over-claiming", "[cache_object]") {
  Harness h;
  bool lose = false;
  RangeList expect_after;
  uint64_t discarded = 0;
  h.opts.flush_interval = std::chrono::hours(1);  // the flusher runs only when kicked
  SECTION("kill -9 after more data was written, before it was synced") {
    h.opts.persist_on_close = false;
    expect_after = {{0, 3 * G}, {7 * G, 8 * G}};
  }
  SECTION("the disk lost the unsynced data (writes dropped, syncs fail), then kill -9") {
    h.opts.persist_on_close = false;
    lose = true;
    expect_after = {{0, 3 * G}, {7 * G, 8 * G}};
  }
  SECTION("the disk lost the unsynced data, clean close: the sync fails, the object is withdrawn") {
    lose = true;
    expect_after = {};
    discarded = 1;
  }
  test::TestEngine* engine = nullptr;
  h.opts.wrap_engine = [&](std::unique_ptr<IoEngine> e) {
    auto t = std::make_unique<test::TestEngine>(std::move(e));
    engine = t.get();
    return std::unique_ptr<IoEngine>(std::move(t));
  };
  const uint64_t size = 8 * G;
  const std::string data = MakeSource(h, "f", size, 3);
  h.OpenCache();
  REQUIRE(engine);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  // Granules 0-2 and 7 are cached, synced and persisted (the backing file is full length).
  REQUIRE(Mismatch(h.Read(u, f, 0, 3 * G), data.substr(0, 3 * G)) == "");
  REQUIRE(Mismatch(h.Read(u, f, 7 * G, G), data.substr(7 * G)) == "");
  REQUIRE(h.WaitCached(*c, 0, 3 * G));
  REQUIRE(h.WaitCached(*c, 7 * G, G));
  REQUIRE(h.cache->CullNow().ok());

  engine->set_lose_unsynced(lose);
  REQUIRE(Mismatch(h.Read(u, f, 3 * G, 4 * G), data.substr(3 * G, 4 * G)) == "");
  REQUIRE(h.WaitCached(*c, 0, size));  // in memory: the writes completed
  CHECK(engine->writes_dropped() == (lose ? 4u : 0u));
  h.cache->Close();  // the crash, or the clean close
  CHECK(h.stats().objects_discarded == discarded);
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();

  h.opts.wrap_engine = nullptr;
  h.opts.persist_on_close = true;
  h.OpenCache();
  c = h.Acquire("f");
  f = h.OpenFile("f");
  u = c->Use(false);
  CHECK(Ranges(*c) == expect_after);
  CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
  h.Unuse(*c, u);
}

TEST_CASE("object: a failing fdatasync withdraws the object; nothing unsynced is claimed", "[cache_object]") {
  Harness h;
  h.opts.flush_interval = std::chrono::hours(1);
  FaultEngine* engine = nullptr;
  h.opts.wrap_engine = [&](std::unique_ptr<IoEngine> e) {
    auto f = std::make_unique<FaultEngine>(std::move(e), EngineFaults{});
    engine = f.get();
    return std::unique_ptr<IoEngine>(std::move(f));
  };
  const uint64_t size = 3 * G + 5;
  const std::string data = MakeSource(h, "f", size, 4);
  h.OpenCache();
  {
    CookieRef c = h.Acquire("f");
    auto f = h.OpenFile("f");
    UseToken u = c->Use(false);
    Fill(h, *c, u, f, data);
    EngineFaults faults;
    faults.fail_syncs = true;
    engine->set_faults(faults);
    REQUIRE(h.cache->CullNow().ok());
    CHECK(h.stats().objects_discarded == 1);
    CHECK(h.stats().cache_errors == 1);
    CHECK(c->CachedRanges().empty());
    // The generation runs uncached from now on, still with the right bytes.
    CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
    CHECK(h.stats().bytes_from_cache == 0);
    h.Unuse(*c, u);
    c->Relinquish(false);
  }
  h.CloseCache();
  CHECK_FALSE(test::PathExists(h.object_path("f")));
  h.opts.wrap_engine = nullptr;
  h.OpenCache();
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  CHECK(c->CachedRanges().empty());
  CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
  h.Unuse(*c, u);
}

TEST_CASE("object: writes that complete during Close are persisted", "[cache_object]") {
  // Close persists, stops the engine (which lets the last writes finish), and persists again.
  Harness h;
  h.opts.flush_interval = std::chrono::hours(1);
  test::TestEngine* engine = nullptr;
  h.opts.wrap_engine = [&](std::unique_ptr<IoEngine> e) {
    auto t = std::make_unique<test::TestEngine>(std::move(e));
    engine = t.get();
    return std::unique_ptr<IoEngine>(std::move(t));
  };
  SECTION("uring") {
    h.opts.engine = EngineChoice::kAuto;
  }
  SECTION("sync") {
    h.opts.engine = EngineChoice::kSync;
  }
  const uint64_t size = 4 * G;
  const std::string data = MakeSource(h, "f", size, 5);
  h.OpenCache();
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  engine->HoldWrites();
  REQUIRE(Mismatch(ReadAll(h, u, f, size), data) == "");
  REQUIRE(engine->WaitHeld(4));
  h.Unuse(*c, u);
  h.cache->Close();  // the engine's Shutdown lets the held writes go
  CHECK(h.stats().objects_discarded == 0);
  CHECK(h.stats().cache_errors == 0);
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();

  h.opts.wrap_engine = nullptr;
  h.OpenCache();
  c = h.Acquire("f");
  f = h.OpenFile("f");
  u = c->Use(false);
  CHECK(Ranges(*c) == RangeList{{0, size}});
  CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  h.Unuse(*c, u);
}

TEST_CASE("object: a torn side-car sends the object to the graveyard", "[cache_object]") {
  Harness h;
  h.opts.granule = kIslandGranule;
  h.OpenCache();
  const Islands is = MakeIslands(h);
  {
    CookieRef c = h.Acquire(is.name);
    auto f = h.OpenFile(is.name);
    UseToken u = c->Use(false);
    ReadIslands(h, u, f, is);
    REQUIRE(test::WaitUntil([&] { return c->CachedRanges().size() == is.offs.size(); }));
    h.Unuse(*c, u);
    c->Relinquish(false);
  }
  h.CloseCache();
  const std::string sidecar = h.object_path(is.name) + ".map";
  REQUIRE(test::PathExists(sidecar));
  const std::string good = test::ReadFile(sidecar);
  SECTION("truncated") {
    REQUIRE(::truncate(sidecar.c_str(), static_cast<off_t>(good.size() / 2)) == 0);
  }
  SECTION("one byte garbled") {
    std::string bad = good;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x40);
    test::WriteFile(sidecar, bad);
  }
  SECTION("missing") {
    REQUIRE(::unlink(sidecar.c_str()) == 0);
  }
  SECTION("from another generation") {
    std::string bad = good;
    bad[8] = static_cast<char>(bad[8] ^ 1);  // the generation field
    test::WriteFile(sidecar, bad);
  }

  h.opts.flush_interval = std::chrono::hours(1);
  h.OpenCache();
  CookieRef c = h.Acquire(is.name);
  auto f = h.OpenFile(is.name);
  UseToken u = c->Use(false);
  CHECK(h.stats().objects_discarded == 1);
  CHECK(c->CachedRanges().empty());
  ReadIslands(h, u, f, is);
  CHECK(h.stats().bytes_from_cache == 0);
  CHECK(h.stats().bytes_from_backend == is.offs.size() * kIslandGranule);
  // The new object caches again.
  CHECK(test::WaitUntil([&] { return c->CachedRanges().size() == is.offs.size(); }));
  h.Unuse(*c, u);
}

TEST_CASE("object: damaged or unexpected objects are detected and refetched, never served", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = 4 * G + 100;
  const std::string data = MakeSource(h, "f", size, 6);
  const std::string other = MakeSource(h, "other", 2 * G, 7);
  CacheAndClose(h, "f", data);
  h.OpenCache();
  CacheAndClose(h, "other", other);
  const std::string path = h.object_path("f");
  REQUIRE(test::PathExists(path));
  const AuxData good_aux = test::ReadAux(path).value();
  uint64_t discarded = 1;

  SECTION("aux xattr garbled") {
    REQUIRE(test::SetXattr(path, kAuxXattr, "garbage that is not an aux record"));
  }
  SECTION("aux xattr with a bad checksum") {
    std::string raw = EncodeAux(good_aux);
    raw[raw.size() - 6] = static_cast<char>(raw[raw.size() - 6] ^ 1);  // in the token
    REQUIRE(test::SetXattr(path, kAuxXattr, raw));
  }
  SECTION("aux xattr missing") {
    REQUIRE(::removexattr(path.c_str(), kAuxXattr) == 0);
  }
  SECTION("DIRTY on disk") {
    AuxData dirty = good_aux;
    dirty.flags = AuxData::kDirty;
    REQUIRE(test::SetXattr(path, kAuxXattr, EncodeAux(dirty)));
  }
  SECTION("key mismatch: another key's object at this name (a hash collision)") {
    const std::string other_path = h.object_path("other");
    REQUIRE(test::ReadAux(other_path));
    REQUIRE(test::ReadAux(other_path)->key != good_aux.key);
    REQUIRE(::rename(other_path.c_str(), path.c_str()) == 0);
  }
  SECTION("map xattr garbled") {
    REQUIRE(test::SetXattr(path, kMapXattr, "not a map"));
  }
  SECTION("map xattr made for another granule") {
    MapRecord rec;
    rec.granule_shift = 12;
    rec.generation = 9;
    ContentMap m;
    m.Add(0, 10);
    rec.body = m.Encode();
    REQUIRE(test::SetXattr(path, kMapXattr, EncodeMapXattr(rec)));
  }
  SECTION("map claims granules beyond the object size") {
    MapRecord rec;
    rec.granule_shift = 16;
    rec.generation = 9;
    ContentMap m;
    m.Add(0, 8);  // the object has 5 granules
    rec.body = m.Encode();
    REQUIRE(test::SetXattr(path, kMapXattr, EncodeMapXattr(rec)));
  }
  SECTION("backing file shorter than its map") {
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(2 * G)) == 0);
  }
  SECTION("a hole where the map claims data (truncated, then extended again)") {
    struct stat before {};
    REQUIRE(::stat(path.c_str(), &before) == 0);
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(2 * G)) == 0);
    REQUIRE(::truncate(path.c_str(), before.st_size) == 0);
  }
  SECTION("a FIFO at the object's name") {
    REQUIRE(::unlink(path.c_str()) == 0);
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  }
  SECTION("a directory at the object's name") {
    REQUIRE(::unlink(path.c_str()) == 0);
    REQUIRE(::mkdir(path.c_str(), 0700) == 0);
    test::WriteFile(path + "/inside", "x");
  }
  SECTION("a symlink at the object's name") {
    REQUIRE(::rename(path.c_str(), (path + ".real").c_str()) == 0);
    REQUIRE(::symlink((path + ".real").c_str(), path.c_str()) == 0);
  }
  SECTION("map xattr missing: nothing is claimed, nothing discarded") {
    REQUIRE(::removexattr(path.c_str(), kMapXattr) == 0);
    discarded = 0;
  }

  h.OpenCache();
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  CHECK(h.stats().objects_discarded == discarded);
  CHECK(c->CachedRanges().empty());
  // A regular file of ours is at the name again.
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
  CHECK(h.stats().bytes_from_cache == 0);
  CHECK(h.stats().bytes_from_backend == size);
  CHECK(h.WaitCached(*c, 0, size));
  // The graveyard is emptied, whatever was buried.
  REQUIRE(h.cache->CullNow().ok());
  CHECK(test::CountEntries(h.cache_dir + "/graveyard") == 0);
  h.Unuse(*c, u);
  c->Relinquish(false);
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();

  // And the refetched copy is good after a restart.
  h.OpenCache();
  c = h.Acquire("f");
  f = h.OpenFile("f");
  u = c->Use(false);
  CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  CHECK(h.stats().objects_discarded == 0);
  h.Unuse(*c, u);
}

TEST_CASE("object: a source that changed while the cache was down is discarded", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = 3 * G;
  std::string data = MakeSource(h, "f", size, 8);
  CacheAndClose(h, "f", data);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a new mtime
  const std::string patch = RandomBytes(1000, 9);
  test::PatchFile(h.src("f"), G + 10, patch);
  data.replace(G + 10, patch.size(), patch);
  h.OpenCache();
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  CHECK(h.stats().objects_discarded == 1);
  CHECK(c->CachedRanges().empty());
  CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
  CHECK(h.stats().bytes_from_cache == 0);
  h.Unuse(*c, u);
}

TEST_CASE("object: Invalidate while source fetches are in flight", "[cache_object]") {
  Harness h;
  test::FetchPlan plan;
  plan.latency_ms = 150;
  h.UseFaults(plan);
  h.OpenCache();
  const uint64_t size = 8 * G;
  const std::string v1 = MakeSource(h, "f", size, 10);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  auto old_obj = c->object();

  std::string first;
  Status first_st;
  std::thread reader([&] { first = h.Read(u, f, 0, size, nullptr, &first_st); });
  CHECK(test::WaitUntil([&] { return h.stats().backend_inflight.load() > 0; }));  // not REQUIRE: join first
  const std::string v2 = RandomBytes(size, 11);
  // In place: the fetch in flight never sees a short file.
  const std::string t2 = test::ChangeInPlace(h.src("f"), 0, v2);
  c->Invalidate(t2, size);
  CHECK(c->object() != old_obj);
  CHECK(c->CachedRanges().empty());
  reader.join();
  // The open reads its generation's version, or fails: never a mix of both.
  if (first_st.ok()) {
    CHECK(Mismatch(first, v1) == "");
  } else {
    CHECK(first_st.kind() == Status::Kind::kStale);
    CHECK(first.empty());
  }
  // The old generation's fetch finished: none of it lands in the new map.
  CHECK(c->CachedRanges().empty());
  CHECK(h.stats().invalidations == 1);
  // The open made before the change keeps its generation, which the source no
  // longer has: stale, not the new bytes.
  Status st;
  CHECK(h.Read(u, f, 0, size, nullptr, &st).empty());
  CHECK(st.kind() == Status::Kind::kStale);
  h.Unuse(*c, u);
  old_obj.reset();

  // The next open reads and caches the new generation.
  u = c->Use(false);
  f = h.OpenFile("f");
  CHECK(Mismatch(h.Read(u, f, 0, size), v2) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  h.Unuse(*c, u);
  c->Relinquish(false);
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();

  h.OpenCache();
  c = h.Acquire("f");
  f = h.OpenFile("f");
  u = c->Use(false);
  CHECK(Mismatch(h.Read(u, f, 0, size), v2) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  h.Unuse(*c, u);
}

TEST_CASE("object: Invalidate while cache writes are in flight", "[cache_object]") {
  Harness h;
  // Granules the old generation keeps in memory go at readahead_ttl at the
  // latest, and at the release of the last open of it.
  h.rh_opts.readahead_ttl = std::chrono::milliseconds(200);
  test::TestEngine* engine = nullptr;
  h.opts.wrap_engine = [&](std::unique_ptr<IoEngine> e) {
    auto t = std::make_unique<test::TestEngine>(std::move(e));
    engine = t.get();
    return std::unique_ptr<IoEngine>(std::move(t));
  };
  h.OpenCache();
  const uint64_t size = 6 * G + 1;
  const std::string v1 = MakeSource(h, "f", size, 12);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  engine->HoldWrites();
  CHECK(Mismatch(h.Read(u, f, 0, size), v1) == "");
  REQUIRE(engine->WaitHeld(7));
  // The start of granule 0 again: the rest of it is kept in memory for a next read.
  CHECK(Mismatch(h.Read(u, f, 0, 100), v1.substr(0, 100)) == "");

  const std::string v2 = RandomBytes(size, 13);
  const std::string t2 = test::ChangeInPlace(h.src("f"), 0, v2);
  c->Invalidate(t2, size);
  CHECK(c->CachedRanges().empty());
  engine->ReleaseWrites(/*reverse=*/true);
  // The old writes went into the discarded file; the new map is still empty.
  CHECK(c->CachedRanges().empty());
  // The open ends; the next one reads the new generation.
  h.Unuse(*c, u);
  u = c->Use(false);
  f = h.OpenFile("f");
  const uint64_t fetched = h.stats().bytes_from_backend;
  CHECK(Mismatch(h.Read(u, f, 0, size), v2) == "");
  CHECK(h.stats().bytes_from_backend == fetched + size);
  REQUIRE(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(u, f, 0, size), v2) == "");
  h.Unuse(*c, u);
  // Nothing of the old generation stays behind: every buffer goes back to the pool.
  REQUIRE(h.cache->CullNow().ok());
  CHECK(test::WaitUntil([&] { return h.cache->pool().free_count() == h.cache->pool().count(); }));
  c->Relinquish(false);
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();

  h.opts.wrap_engine = nullptr;
  h.OpenCache();
  c = h.Acquire("f");
  f = h.OpenFile("f");
  u = c->Use(false);
  CHECK(Mismatch(h.Read(u, f, 0, size), v2) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  h.Unuse(*c, u);
}

TEST_CASE("object: the release of an open made before Invalidate or Forget ends its use of the old generation",
          "[cache_object]") {
  // An open reads the generation it was opened on (its UseToken). When that
  // generation is replaced while the file is open, the open's release must
  // still end its use of it: ReadHelper::Release frees the granules a
  // generation keeps in memory only once nobody uses it.
  Harness h;
  h.rh_opts.readahead_ttl = std::chrono::hours(1);  // nothing is freed by age here
  h.OpenCache();
  const uint64_t size = 2 * G;
  const std::string v1 = MakeSource(h, "f", size, 27);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  auto old_obj = c->object();
  // A read that ends inside granule 0: the rest of it is kept in memory.
  REQUIRE(Mismatch(h.Read(u, f, 0, 100), v1.substr(0, 100)) == "");
  REQUIRE(h.WaitCached(*c, 0, G));
  REQUIRE(test::WaitUntil([&] { return h.stats().io_completed.load() == h.stats().io_submitted.load(); }));
  BufferPool& pool = h.cache->pool();
  CHECK(pool.free_count() < pool.count());
  SECTION("Invalidate") {
    c->Invalidate(test::ChangeInPlace(h.src("f"), 0, RandomBytes(size, 28)), size);
  }
  SECTION("Forget") {
    c->Forget();
  }
  REQUIRE(c->object() != old_obj);
  h.Unuse(*c, u);
  {
    std::lock_guard lk(old_obj->mu());
    CHECK(old_obj->UsersLocked() == 0);
  }
  {
    auto now = c->object();
    std::lock_guard lk(now->mu());
    CHECK(now->UsersLocked() == 0);
  }
  CHECK(pool.free_count() == pool.count());
}

TEST_CASE("object: Invalidate of an unused cookie starts an empty generation that caches", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = 2 * G;
  std::string data = MakeSource(h, "f", size, 14);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  Fill(h, *c, u, f, data);
  h.Unuse(*c, u);
  REQUIRE(h.cache->CullNow().ok());
  // No users: the new generation opens lazily, at the next Use (the daemon's
  // open: Invalidate, then Use), while the old one may still be open.
  SECTION("the source changed") {
    const std::string patch = RandomBytes(G, 26);
    test::PatchFile(h.src("f"), G, patch);
    data.replace(G, G, patch);
    c->Invalidate(h.Stat("f").token, size);
  }
  SECTION("the token did not change: the old data is still not picked up") {
    c->Invalidate(c->aux(), size);
  }
  u = c->Use(false);
  CHECK(c->CachedRanges().empty());
  const uint64_t fetched = h.stats().bytes_from_backend;
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.stats().bytes_from_backend == fetched + size);
  // The new generation is cached, not left uncached.
  CHECK(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.stats().bytes_from_backend == fetched + size);
  h.Unuse(*c, u);
}

TEST_CASE("object: Relinquish(retire) removes the backing file and the side-car", "[cache_object]") {
  Harness h;
  h.opts.granule = kIslandGranule;
  h.OpenCache();
  const Islands is = MakeIslands(h);
  CookieRef c = h.Acquire(is.name);
  auto f = h.OpenFile(is.name);
  UseToken u = c->Use(false);
  ReadIslands(h, u, f, is);
  REQUIRE(test::WaitUntil([&] { return c->CachedRanges().size() == is.offs.size(); }));
  REQUIRE(h.cache->CullNow().ok());
  const std::string path = h.object_path(is.name);
  REQUIRE(test::PathExists(path));
  REQUIRE(test::PathExists(path + ".map"));
  h.Unuse(*c, u);
  c->Relinquish(/*retire=*/true);
  CHECK_FALSE(test::PathExists(path));
  CHECK_FALSE(test::PathExists(path + ".map"));
  c.reset();
  // Nothing comes back at Close, and a new cookie for the key starts empty.
  REQUIRE(h.cache->CullNow().ok());
  CHECK_FALSE(test::PathExists(path));
  c = h.Acquire(is.name);
  u = c->Use(false);
  CHECK(c->CachedRanges().empty());
  h.Unuse(*c, u);
}

TEST_CASE("object: Relinquish(retire) of a cookie never used removes what an earlier run cached", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const std::string data = MakeSource(h, "f", 2 * G, 15);
  CacheAndClose(h, "f", data);
  const std::string path = h.object_path("f");
  REQUIRE(test::PathExists(path));
  h.OpenCache();
  CookieRef c = h.Acquire("f");
  c->Relinquish(true);
  CHECK_FALSE(test::PathExists(path));
}

TEST_CASE("object: writes through the mount drop granules; DIRTY while modified", "[cache_object]") {
  Harness h;
  h.opts.flush_interval = std::chrono::hours(1);
  h.OpenCache();
  const uint64_t size = 10 * G + 100;
  std::string data = MakeSource(h, "f", size, 16);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  const std::string path = h.object_path("f");
  UseToken u = c->Use(false);
  Fill(h, *c, u, f, data);
  h.Unuse(*c, u);
  REQUIRE(h.cache->CullNow().ok());
  REQUIRE(test::ReadAux(path));
  CHECK_FALSE(test::ReadAux(path)->dirty());

  u = c->Use(/*will_modify=*/true);
  // A write of 2 granules' worth, not aligned: touches granules 1, 2 and 3.
  const std::string patch = RandomBytes(2 * G, 17);
  test::PatchFile(h.src("f"), G + 5, patch);
  data.replace(G + 5, patch.size(), patch);
  test::SourceAttr a = h.Stat("f");
  c->NoteWrite(G + 5, patch.size(), a.token, size);
  CHECK(Ranges(*c) == RangeList{{0, G}, {4 * G, size}});
  REQUIRE(test::ReadAux(path));
  CHECK(test::ReadAux(path)->dirty());  // on disk before anything else changes
  // A flush while the writer is still there keeps DIRTY.
  REQUIRE(h.cache->CullNow().ok());
  CHECK(test::ReadAux(path)->dirty());

  // An append: the granule holding the old EOF is no longer whole.
  const std::string more = RandomBytes(1000, 18);
  test::PatchFile(h.src("f"), size, more);
  data += more;
  const uint64_t size2 = size + more.size();
  a = h.Stat("f");
  c->NoteWrite(size, more.size(), a.token, size2);
  CHECK(c->size() == size2);
  CHECK(Ranges(*c) == RangeList{{0, G}, {4 * G, 10 * G}});
  CHECK(Mismatch(ReadAll(h, u, f, size2), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size2));

  h.Unuse(*c, u, a.token, size2);
  REQUIRE(h.cache->CullNow().ok());
  auto aux = test::ReadAux(path);
  REQUIRE(aux);
  CHECK_FALSE(aux->dirty());
  CHECK(aux->coherency == a.token);
  CHECK(aux->object_size == size2);
  c->Relinquish(false);
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();

  h.OpenCache();
  c = h.Acquire("f");
  f = h.OpenFile("f");
  u = c->Use(false);
  CHECK(h.stats().objects_discarded == 0);
  CHECK(Ranges(*c) == RangeList{{0, size2}});
  CHECK(Mismatch(ReadAll(h, u, f, size2), data) == "");
  CHECK(h.stats().bytes_from_backend == 0);
  h.Unuse(*c, u);
}

TEST_CASE("object: truncation through the mount drops the granules past the new end", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = 6 * G;
  std::string data = MakeSource(h, "f", size, 19);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(true);
  Fill(h, *c, u, f, data);
  REQUIRE(::truncate(h.src("f").c_str(), static_cast<off_t>(2 * G + 10)) == 0);
  data.resize(2 * G + 10);
  test::SourceAttr a = h.Stat("f");
  c->NoteResize(a.token, data.size());
  CHECK(Ranges(*c) == RangeList{{0, 2 * G}});
  CHECK(Mismatch(ReadAll(h, u, f, data.size()), data) == "");
  CHECK(h.Read(u, f, data.size(), 100).empty());
  h.Unuse(*c, u, a.token, data.size());
}

TEST_CASE("object: DIRTY found after a crash discards the object", "[cache_object]") {
  Harness h;
  h.opts.flush_interval = std::chrono::hours(1);
  h.opts.persist_on_close = false;  // Close is the crash
  h.OpenCache();
  const uint64_t size = 3 * G;
  std::string data = MakeSource(h, "f", size, 20);
  const test::SourceAttr before = h.Stat("f");
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(true);
  Fill(h, *c, u, f, data);
  REQUIRE(h.cache->CullNow().ok());
  REQUIRE_FALSE(test::ReadAux(h.object_path("f"))->dirty());
  // Written through the mount; the daemon dies before the map is rewritten.
  const std::string patch = RandomBytes(100, 21);
  test::PatchFile(h.src("f"), 10, patch);
  data.replace(10, patch.size(), patch);
  c->NoteWrite(10, patch.size(), h.Stat("f").token, size);
  CHECK(test::ReadAux(h.object_path("f"))->dirty());
  h.cache->Close();
  u = UseToken();
  c.reset();
  f.reset();
  h.CloseCache();
  REQUIRE(test::ReadAux(h.object_path("f"))->dirty());

  // Even a source whose token looks unchanged (coarse clocks) does not get the
  // old bytes: DIRTY alone sends the object away. (Such a source cannot tell
  // versions apart when it reads either.)
  h.OpenCache();
  c = h.volume->Acquire(before.identity, before.token, size);
  h.check_versions = false;
  f = h.OpenFile("f");
  u = c->Use(false);
  CHECK(h.stats().objects_discarded == 1);
  CHECK(c->CachedRanges().empty());
  CHECK(Mismatch(ReadAll(h, u, f, size), data) == "");
  h.Unuse(*c, u);
}

TEST_CASE("object: a write through the mount while a cache write of the granule is in flight", "[cache_object]") {
  // The old bytes' cache write may land after a newer write of the same granule:
  // the granule must not be claimed until both are done.
  Harness h;
  test::TestEngine* engine = nullptr;
  h.opts.wrap_engine = [&](std::unique_ptr<IoEngine> e) {
    auto t = std::make_unique<test::TestEngine>(std::move(e));
    engine = t.get();
    return std::unique_ptr<IoEngine>(std::move(t));
  };
  h.OpenCache();
  const uint64_t size = 2 * G;
  std::string data = MakeSource(h, "f", size, 22);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(true);
  engine->HoldWrites();
  REQUIRE(Mismatch(h.Read(u, f, 0, G), data.substr(0, G)) == "");
  REQUIRE(engine->WaitHeld(1));  // old bytes of granule 0, in flight

  const std::string patch = RandomBytes(G, 23);
  test::PatchFile(h.src("f"), 0, patch);
  data.replace(0, G, patch);
  test::SourceAttr a = h.Stat("f");
  c->NoteWrite(0, G, a.token, size);
  REQUIRE(Mismatch(h.Read(u, f, 0, G), data.substr(0, G)) == "");
  REQUIRE(engine->WaitHeld(2));             // new bytes of granule 0, in flight too
  engine->ReleaseWrites(/*reverse=*/true);  // the new write lands first, the old one last
  REQUIRE(test::WaitUntil([&] { return h.stats().io_completed.load() == h.stats().io_submitted.load(); }));

  // Whatever the map claims must be the new bytes.
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  REQUIRE(h.WaitCached(*c, 0, size));
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  h.Unuse(*c, u, a.token, size);
}

TEST_CASE("object: Forget drops the data and the backing file", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t size = 2 * G;
  const std::string data = MakeSource(h, "f", size, 24);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);
  Fill(h, *c, u, f, data);
  const std::string path = h.object_path("f");
  c->Forget();
  CHECK(c->CachedRanges().empty());
  // The open goes on reading its generation, now uncached, with the right bytes.
  const uint64_t fetched = h.stats().bytes_from_backend;
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.stats().bytes_from_backend == fetched + size);
  CHECK(c->CachedRanges().empty());
  h.Unuse(*c, u);
  // The next open gets the new, empty object, which caches again.
  u = c->Use(false);
  CHECK(Mismatch(h.Read(u, f, 0, size), data) == "");
  CHECK(h.WaitCached(*c, 0, size));
  CHECK(test::PathExists(path));
  h.Unuse(*c, u);
}

TEST_CASE("object: shape() aligns to granules and DIO and clips at EOF and says what is present", "[cache_object]") {
  Harness h;
  h.OpenCache();
  const uint64_t align = h.cache->dio_align();
  REQUIRE(G % align == 0);
  const uint64_t size = 4 * G + 1000;
  const std::string data = MakeSource(h, "f", size, 25);
  CookieRef c = h.Acquire("f");
  auto f = h.OpenFile("f");
  UseToken u = c->Use(false);

  Shape s = c->shape(G + 100, G, size);
  CHECK(s.granule_start == 1);
  CHECK(s.granule_end == 3);
  CHECK(s.byte_start == G);
  CHECK(s.byte_end == 3 * G);
  CHECK(s.dio_end == 3 * G);
  CHECK(s.present == std::vector<bool>{false, false});

  // Aligned requests stay as they are.
  s = c->shape(2 * G, G, size);
  CHECK(s.granule_start == 2);
  CHECK(s.granule_end == 3);
  CHECK(s.byte_start == 2 * G);
  CHECK(s.byte_end == 3 * G);

  // Clipped at EOF; the DIO end rounds the partial granule up.
  s = c->shape(3 * G + 7, 10 * G, size);
  CHECK(s.granule_start == 3);
  CHECK(s.granule_end == 5);
  CHECK(s.byte_start == 3 * G);
  CHECK(s.byte_end == size);
  CHECK(s.dio_end == (size + align - 1) / align * align);
  CHECK(s.dio_end >= s.byte_end);
  CHECK(s.dio_end % align == 0);
  CHECK(s.present.size() == 2);

  // Nothing to shape at or past EOF, or for no bytes.
  for (auto [start, len] : {std::pair<uint64_t, uint64_t>{size, 10}, {size + G, G}, {G, 0}}) {
    s = c->shape(start, len, size);
    CHECK(s.granule_start == s.granule_end);
    CHECK(s.present.empty());
  }

  // Presence follows the map.
  REQUIRE(Mismatch(h.Read(u, f, G, G), data.substr(G, G)) == "");
  REQUIRE(Mismatch(h.Read(u, f, 4 * G, 1000), data.substr(4 * G)) == "");
  REQUIRE(h.WaitCached(*c, G, G));
  REQUIRE(h.WaitCached(*c, 4 * G, 1000));
  s = c->shape(0, size, size);
  CHECK(s.granule_start == 0);
  CHECK(s.granule_end == 5);
  CHECK(s.present == std::vector<bool>{false, true, false, false, true});
  s = c->shape(G + 1, 1, size);
  CHECK(s.present == std::vector<bool>{true});
  h.Unuse(*c, u);
}

}  // namespace cachefuse::cache
