// Tests for cache/cache and cache/volume: the cache dir's LOCK, FORMAT, volumes,
// graveyard and the error budget that withdraws the cache.
#include "cache/cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "cache/volume.h"
#include "cache_test_util.h"

namespace cachefuse::cache {
namespace {

using test::ReadFile;
using test::TempDir;
using test::WriteFile;

CacheOptions Options(const std::string& dir) {
  CacheOptions o;
  o.dir = dir;
  o.granule = 64 * 1024;
  o.max_inflight = 2ULL << 20;
  return o;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("cache: a second Open of the same dir fails on the LOCK; the first keeps working", "[cache]") {
  TempDir t;
  const std::string dir = t / "c";
  auto first = Cache::Open(Options(dir));
  REQUIRE(first.ok());
  const std::string pid = std::to_string(::getpid());
  CHECK(Trim(ReadFile(dir + "/LOCK")) == pid);

  auto second = Cache::Open(Options(dir));
  REQUIRE_FALSE(second.ok());
  CHECK(second.err() == EBUSY);
  const std::string msg = second.status().ToString();
  CHECK(msg.find("LOCK") != std::string::npos);
  CHECK(msg.find("pid " + pid) != std::string::npos);

  // The refused Open changed nothing: the owner's pid is still in LOCK, and the
  // first cache still takes volumes and does I/O.
  CHECK(Trim(ReadFile(dir + "/LOCK")) == pid);
  auto vol = first.value()->AcquireVolume("posix:/somewhere");
  REQUIRE(vol.ok());
  CookieRef c = vol.value()->Acquire("i42", "aux", 5);
  UseToken u = c->Use(false);
  CHECK(first.value()->readable());
  c->Unuse(u, "aux", 5);
  c->Relinquish(false);
  u = UseToken();
  c.reset();
  vol.value().reset();
  first.value()->Close();
  first.value().reset();

  // Once the owner is gone, the dir can be opened again.
  auto third = Cache::Open(Options(dir));
  REQUIRE(third.ok());
}

TEST_CASE("cache: a stale LOCK from a dead daemon does not block", "[cache]") {
  TempDir t;
  const std::string dir = t / "c";
  REQUIRE(Cache::Open(Options(dir)).ok());  // makes FORMAT; the cache is closed again at once
  WriteFile(dir + "/LOCK", "999999\n");
  auto c = Cache::Open(Options(dir));
  REQUIRE(c.ok());
  CHECK(Trim(ReadFile(dir + "/LOCK")) == std::to_string(::getpid()));
}

TEST_CASE("cache: FORMAT and the layout are written in a fresh dir", "[cache]") {
  TempDir t;
  const std::string dir = t / "new/cache";  // parents are made too
  auto c = Cache::Open(Options(dir));
  REQUIRE(c.ok());
  CHECK(ReadFile(dir + "/FORMAT") == "cachefuse-cache\nversion 1\ngranule 65536\n");
  for (const char* sub : {"volumes", "graveyard", "index"}) {
    CHECK(std::filesystem::is_directory(dir + "/" + sub));
  }
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(c.value()->granule() == 65536);
  CHECK(c.value()->granule_shift() == 16);
  CHECK(c.value()->dio_align() >= 512);
  CHECK(c.value()->dio_align() <= 65536);
  CHECK_FALSE(c.value()->engine_reason().empty());
  c.value()->Close();
  c.value().reset();

  // Reopened with the same granule: accepted, FORMAT unchanged.
  auto again = Cache::Open(Options(dir));
  REQUIRE(again.ok());
  CHECK(ReadFile(dir + "/FORMAT") == "cachefuse-cache\nversion 1\ngranule 65536\n");
}

TEST_CASE("cache: refuses a FORMAT it does not understand", "[cache]") {
  TempDir t;
  const std::string dir = t / "c";
  std::filesystem::create_directories(dir);
  std::string format;
  std::string expect_in_message;
  SECTION("another version") {
    format = "cachefuse-cache\nversion 2\ngranule 65536\n";
    expect_in_message = "version 2";
  }
  SECTION("another granule") {
    format = "cachefuse-cache\nversion 1\ngranule 1048576\n";
    expect_in_message = "granule=1 MiB";
  }
  SECTION("a foreign FORMAT") {
    format = "CacheFiles 3\n";
    expect_in_message = "not cachefuse's";
  }
  SECTION("a damaged FORMAT") {
    format = "cachefuse-cache\nversion 1\ngranularity\n";
    expect_in_message = "damaged";
  }
  WriteFile(dir + "/FORMAT", format);
  auto c = Cache::Open(Options(dir));
  REQUIRE_FALSE(c.ok());
  CHECK(c.err() == EINVAL);
  INFO(c.status().ToString());
  CHECK(c.status().ToString().find(expect_in_message) != std::string::npos);
  CHECK(c.status().ToString().find(dir) != std::string::npos);
  // Nothing was changed or added besides the LOCK.
  CHECK(ReadFile(dir + "/FORMAT") == format);
  CHECK_FALSE(std::filesystem::exists(dir + "/volumes"));
}

TEST_CASE("cache: refuses a non-empty dir without FORMAT", "[cache]") {
  TempDir t;
  const std::string dir = t / "home";
  std::filesystem::create_directories(dir + "/projects");
  WriteFile(dir + "/notes.txt", "precious");
  auto c = Cache::Open(Options(dir));
  REQUIRE_FALSE(c.ok());
  CHECK(c.err() == EINVAL);
  CHECK(c.status().ToString().find("no FORMAT") != std::string::npos);
  CHECK(ReadFile(dir + "/notes.txt") == "precious");
  CHECK_FALSE(std::filesystem::exists(dir + "/FORMAT"));
  CHECK_FALSE(std::filesystem::exists(dir + "/volumes"));
}

TEST_CASE("cache: bad options are refused", "[cache]") {
  TempDir t;
  CacheOptions o = Options(t / "c");
  for (uint64_t g : {uint64_t{0}, uint64_t{1000}, uint64_t{2048}, uint64_t{3} << 16, uint64_t{128} << 20}) {
    o.granule = g;
    auto c = Cache::Open(o);
    CHECK_FALSE(c.ok());
    CHECK(c.err() == EINVAL);
  }
  CHECK_FALSE(std::filesystem::exists(t / "c"));
}

TEST_CASE("cache: VOLUME holds the volume key; one Volume per key", "[cache]") {
  TempDir t;
  const std::string dir = t / "c";
  const std::string key = "posix:/srv/data";
  const std::string vdir = dir + "/volumes/" + ToHex(HashBytes(key));
  {
    auto c = Cache::Open(Options(dir));
    REQUIRE(c.ok());
    auto v1 = c.value()->AcquireVolume(key);
    REQUIRE(v1.ok());
    CHECK(ReadFile(vdir + "/VOLUME") == key + "\n");
    CHECK(v1.value()->key() == key);
    CHECK(v1.value()->cache() == c.value().get());
    auto v2 = c.value()->AcquireVolume(key);
    REQUIRE(v2.ok());
    CHECK(v2.value() == v1.value());
    auto other = c.value()->AcquireVolume("posix:/srv/other");
    REQUIRE(other.ok());
    CHECK(other.value() != v1.value());
    CHECK(test::CountEntries(dir + "/volumes") == 2);

    // The fan-out directory of an object is made on first use.
    auto fan = v1.value()->FanoutDir("ab0123");
    REQUIRE(fan.ok());
    CHECK(std::filesystem::is_directory(vdir + "/ab"));
    auto fan2 = v1.value()->FanoutDir("ab9999");
    REQUIRE(fan2.ok());
    CHECK(*fan2 == *fan);
    CHECK_FALSE(v1.value()->FanoutDir("a").ok());
  }
  // Reopened: the same key finds its VOLUME; a dir whose VOLUME names another key is refused.
  auto c = Cache::Open(Options(dir));
  REQUIRE(c.ok());
  REQUIRE(c.value()->AcquireVolume(key).ok());
  c.value()->Close();
  c.value().reset();
  WriteFile(vdir + "/VOLUME", "posix:/elsewhere\n");
  c = Cache::Open(Options(dir));
  REQUIRE(c.ok());
  auto v = c.value()->AcquireVolume(key);
  REQUIRE_FALSE(v.ok());
  CHECK(v.err() == EIO);
  CHECK(v.status().ToString().find("posix:/elsewhere") != std::string::npos);
}

TEST_CASE("cache: the graveyard is reaped", "[cache]") {
  TempDir t;
  const std::string dir = t / "c";
  {
    auto c = Cache::Open(Options(dir));
    REQUIRE(c.ok());
  }
  const std::string grave = dir + "/graveyard";
  WriteFile(grave + "/0123abcd.1.1", std::string(100000, 'x'));
  WriteFile(grave + "/0123abcd.1.1.map", "map");
  // Whatever was buried, a directory included (something unexpected at an object's name).
  std::filesystem::create_directories(grave + "/4567.1.2/inner/deeper");
  WriteFile(grave + "/4567.1.2/inner/file", "data");
  REQUIRE(test::CountEntries(grave) == 3);

  CacheOptions o = Options(dir);
  SECTION("by the flusher, at start") {
    auto c = Cache::Open(o);
    REQUIRE(c.ok());
    CHECK(test::WaitUntil([&] { return test::CountEntries(grave) == 0; }));
  }
  SECTION("on demand") {
    o.flush_interval = std::chrono::hours(1);
    auto c = Cache::Open(o);
    REQUIRE(c.ok());
    CHECK(c.value()->CullNow().ok());
    CHECK(test::CountEntries(grave) == 0);
  }
}

TEST_CASE("cache: Bury moves an object and its side-car into the graveyard", "[cache]") {
  TempDir t;
  const std::string dir = t / "c";
  CacheOptions o = Options(dir);
  o.flush_interval = std::chrono::hours(1);  // no reaping behind our back
  auto c = Cache::Open(o);
  REQUIRE(c.ok());
  auto vol = c.value()->AcquireVolume("posix:/x");
  REQUIRE(vol.ok());
  auto fan = vol.value()->FanoutDir("cd00");
  REQUIRE(fan.ok());
  const std::string fdir = dir + "/volumes/" + ToHex(HashBytes("posix:/x")) + "/cd";
  WriteFile(fdir + "/cd00", "object");
  WriteFile(fdir + "/cd00.map", "sidecar");
  c.value()->Bury(*fan, "cd00", "test");
  CHECK_FALSE(test::PathExists(fdir + "/cd00"));
  CHECK_FALSE(test::PathExists(fdir + "/cd00.map"));
  CHECK(test::CountEntries(dir + "/graveyard") == 2);
  // Burying a name that is not there is harmless.
  c.value()->Bury(*fan, "cd01", "test");
  CHECK(test::CountEntries(dir + "/graveyard") == 2);
  REQUIRE(c.value()->CullNow().ok());
  CHECK(test::CountEntries(dir + "/graveyard") == 0);
}

TEST_CASE("cache: NoteError withdraws the cache after cache_error_limit errors", "[cache]") {
  TempDir t;
  CacheOptions o = Options(t / "c");
  o.cache_error_limit = 3;
  auto c = Cache::Open(o);
  REQUIRE(c.ok());
  Cache& cache = *c.value();
  CHECK(cache.state() == CacheState::kActive);
  cache.NoteError("one");
  cache.NoteError("two");
  CHECK(cache.stats().cache_errors == 2);
  CHECK(cache.state() == CacheState::kActive);
  CHECK(cache.readable());
  CHECK(cache.accepting_writes());
  cache.NoteError("three");
  CHECK(cache.stats().cache_errors == 3);
  CHECK(cache.state() == CacheState::kDead);
  CHECK_FALSE(cache.readable());
  CHECK_FALSE(cache.accepting_writes());
  cache.NoteError("four");
  CHECK(cache.state() == CacheState::kDead);
  CHECK(cache.stats().cache_errors == 4);

  // A dead cache opens no backing files: cookies run uncached.
  auto vol = cache.AcquireVolume("posix:/y");
  REQUIRE(vol.ok());
  CookieRef cookie = vol.value()->Acquire("i1", "aux", 100);
  UseToken use = cookie->Use(false);
  CHECK(cookie->object()->fd() < 0);
  CHECK(cookie->CachedRanges().empty());
  cookie->Unuse(use, "aux", 100);
}

}  // namespace cachefuse::cache
