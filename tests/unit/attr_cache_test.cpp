// Tests for netfs_backends/attr_cache: hits within the lifetimes, expiry, what
// each change drops, errors not kept, the bound, threads.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "netfs_backends/attr_cache.h"
#include "netfs_backends/posix/posix_backend.h"
#include "test_util.h"

using cachefuse::Status;
using cachefuse::netfs::AttrCacheBackend;
using cachefuse::netfs::AttrCacheOptions;
using cachefuse::netfs::Backend;
using cachefuse::netfs::Clock;
using cachefuse::netfs::Deadline;
using cachefuse::netfs::ForwardingBackend;
using cachefuse::netfs::kOpCount;
using cachefuse::netfs::Op;
using cachefuse::netfs::OpenFileRef;
using cachefuse::netfs::SetAttr;
using cachefuse::test::TempDir;
using cachefuse::test::WriteFile;
using namespace std::chrono_literals;

namespace {

// Counts the calls that get past the cache, by kind; can run a hook inside one.
class CountingBackend final : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  uint64_t count(Op op) const { return counts_[static_cast<size_t>(op)].load(); }
  std::function<void(Op)> hook;  // runs inside the call, before it reaches the source

 protected:
  Status Before(Op op, Deadline) override {
    ++counts_[static_cast<size_t>(op)];
    if (hook) hook(op);
    return Status::Ok();
  }

 private:
  std::array<std::atomic<uint64_t>, kOpCount> counts_{};
};

// AttrCacheBackend over CountingBackend over a posix source, with a clock the test moves.
struct Fixture {
  TempDir tmp;
  CountingBackend* source = nullptr;  // owned by cache
  std::unique_ptr<AttrCacheBackend> cache;
  Clock::time_point now = Clock::now();

  explicit Fixture(AttrCacheOptions options = Options()) {
    auto posix = cachefuse::netfs::PosixBackend::Open(tmp.path());
    REQUIRE(posix.ok());
    auto counting = std::make_unique<CountingBackend>(std::move(posix.value()));
    source = counting.get();
    cache = std::make_unique<AttrCacheBackend>(std::move(counting), options, [this] { return now; });
  }
  static AttrCacheOptions Options() {
    AttrCacheOptions o;
    o.attr_ttl = 1000ms;
    o.entry_ttl = 2000ms;
    return o;
  }
  std::string In(const std::string& rel) const { return tmp / rel; }
  uint64_t stats() const { return source->count(Op::kStat); }
  uint64_t lists() const { return source->count(Op::kList); }
};

}  // namespace

TEST_CASE("AttrCache: a second stat within attr_ttl makes no call") {
  Fixture f;
  WriteFile(f.In("f"), "12345");
  auto a = f.cache->stat("f");
  REQUIRE(a.ok());
  CHECK(f.stats() == 1);
  CHECK(f.cache->misses() == 1);
  f.now += 999ms;
  auto b = f.cache->stat("f");
  REQUIRE(b.ok());
  CHECK(b->st.st_size == 5);
  CHECK(b->coherency == a->coherency);
  CHECK(b->identity == a->identity);
  CHECK(f.stats() == 1);
  CHECK(f.cache->hits() == 1);

  SECTION("and one after it expires") {
    WriteFile(f.In("f"), "1234567");  // changed behind the cache's back
    f.now += 1ms;                     // attr_ttl since the first stat
    auto c = f.cache->stat("f");
    REQUIRE(c.ok());
    CHECK(c->st.st_size == 7);
    CHECK(f.stats() == 2);
    CHECK(f.cache->misses() == 2);
  }
}

TEST_CASE("AttrCache: a listing serves itself within entry_ttl and its entries' stats within attr_ttl") {
  Fixture f;
  REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);
  for (const char* n : {"a", "b", "c"}) WriteFile(f.In(std::string("d/") + n), n);
  REQUIRE(::mkdir(f.In("d/sub").c_str(), 0755) == 0);

  // ls -lR: a list and a stat per entry, per directory.
  auto ls = f.cache->list("d");
  REQUIRE(ls.ok());
  REQUIRE(ls->size() == 4);
  for (const auto& e : *ls) {
    auto st = f.cache->stat("d/" + e.name);
    REQUIRE(st.ok());
    CHECK(st->identity == e.attr.identity);
  }
  REQUIRE(f.cache->list("d/sub").ok());
  CHECK(f.lists() == 2);
  CHECK(f.stats() == 0);

  f.now += 1500ms;  // past attr_ttl, within entry_ttl
  CHECK(f.cache->list("d").ok());
  CHECK(f.lists() == 2);
  CHECK(f.cache->stat("d/a").ok());
  CHECK(f.stats() == 1);

  f.now += 500ms;  // entry_ttl
  CHECK(f.cache->list("d").ok());
  CHECK(f.lists() == 3);
}

TEST_CASE("AttrCache: errors are not kept") {
  Fixture f;
  CHECK(f.cache->stat("missing").err() == ENOENT);
  CHECK(f.cache->stat("missing").err() == ENOENT);
  CHECK(f.stats() == 2);
  CHECK(f.cache->list("nodir").err() == ENOENT);
  CHECK(f.cache->list("nodir").err() == ENOENT);
  CHECK(f.lists() == 2);
  // It appears at the source: seen at once.
  WriteFile(f.In("missing"), "now here");
  CHECK(f.cache->stat("missing").ok());
  CHECK(f.cache->hits() == 0);
}

TEST_CASE("AttrCache: open and create store the attributes they came with") {
  Fixture f;
  WriteFile(f.In("f"), "abc");
  auto h = f.cache->open("f", O_RDONLY);
  REQUIRE(h.ok());
  auto st = f.cache->stat("f");
  REQUIRE(st.ok());
  CHECK(st->coherency == (*h)->attr().coherency);
  CHECK(f.stats() == 0);

  CHECK(f.cache->list("").ok());
  auto c = f.cache->create("new", O_RDWR, 0644);
  REQUIRE(c.ok());
  CHECK(f.cache->stat("new")->identity == (*c)->attr().identity);
  CHECK(f.stats() == 0);
  // The parent's listing went: it did not have the new file.
  auto ls = f.cache->list("");
  REQUIRE(ls.ok());
  CHECK(ls->size() == 2);
  CHECK(f.lists() == 2);

  SECTION("open with O_TRUNC drops the parent's listing (sizes in it are old)") {
    auto t = f.cache->open("f", O_RDWR | O_TRUNC);
    REQUIRE(t.ok());
    CHECK(f.cache->stat("f")->st.st_size == 0);
    CHECK(f.stats() == 0);
    CHECK(f.cache->list("").ok());
    CHECK(f.lists() == 3);
  }
}

TEST_CASE("AttrCache: each change drops what it touches") {
  Fixture f;
  WriteFile(f.In("f"), "0123456789");
  REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);
  REQUIRE(::mkdir(f.In("d/sub").c_str(), 0755) == 0);
  WriteFile(f.In("d/x"), "x");
  WriteFile(f.In("d/sub/y"), "y");
  // Warm: listings of every directory (which fill every entry's stat).
  for (const char* dir : {"", "d", "d/sub"}) REQUIRE(f.cache->list(dir).ok());
  REQUIRE(f.cache->stat("").ok());
  const uint64_t lists0 = f.lists();
  const uint64_t stats0 = f.stats();
  // What went to the source since warming: `stats` stats, `lists` listings.
  auto went = [&](uint64_t stats, uint64_t lists) {
    CHECK(f.stats() - stats0 == stats);
    CHECK(f.lists() - lists0 == lists);
  };

  SECTION("unlink: the path and the parent's listing") {
    REQUIRE(f.cache->unlink("d/x").ok());
    CHECK(f.cache->stat("d/x").err() == ENOENT);
    auto ls = f.cache->list("d");
    REQUIRE(ls.ok());
    CHECK(ls->size() == 1);
    CHECK(f.cache->list("").ok());  // other listings stay
    CHECK(f.cache->stat("f").ok());
    went(1, 1);
  }
  SECTION("mkdir, mknod, symlink: the parent's listing") {
    REQUIRE(f.cache->mkdir("d/new", 0755).ok());
    CHECK(f.cache->list("d")->size() == 3);
    went(0, 1);
    REQUIRE(f.cache->mknod("d/sub/fifo", S_IFIFO | 0644, 0).ok());
    CHECK(f.cache->list("d/sub")->size() == 2);
    went(0, 2);
    REQUIRE(f.cache->symlink("f", "ln").ok());
    CHECK(f.cache->list("")->size() == 3);
    CHECK(S_ISLNK(f.cache->stat("ln")->st.st_mode));  // from the new listing
    went(0, 3);
  }
  SECTION("create over an existing name: the path too") {
    auto c = f.cache->create("f", O_RDWR | O_TRUNC, 0644);
    REQUIRE(c.ok());
    CHECK(f.cache->stat("f")->st.st_size == 0);
  }
  SECTION("rmdir: the path, everything below, the parent's listing") {
    REQUIRE(::unlink(f.In("d/sub/y").c_str()) == 0);  // behind the cache's back, so rmdir can work
    REQUIRE(f.cache->rmdir("d/sub").ok());
    CHECK(f.cache->stat("d/sub").err() == ENOENT);
    CHECK(f.cache->stat("d/sub/y").err() == ENOENT);
    CHECK(f.cache->list("d/sub").err() == ENOENT);
    CHECK(f.cache->list("d")->size() == 1);
    CHECK(f.cache->stat("d/x").ok());  // a sibling stays
    went(2, 2);
  }
  SECTION("rename of a directory: both paths, all below, both parents' listings") {
    REQUIRE(::mkdir(f.In("e").c_str(), 0755) == 0);
    REQUIRE(f.cache->list("e").ok());
    const uint64_t lists1 = f.lists();
    REQUIRE(f.cache->rename("d", "e/moved", 0).ok());
    CHECK(f.cache->stat("d").err() == ENOENT);
    CHECK(f.cache->stat("d/x").err() == ENOENT);
    CHECK(f.cache->stat("d/sub/y").err() == ENOENT);
    CHECK(f.cache->list("d").err() == ENOENT);
    CHECK(f.cache->list("d/sub").err() == ENOENT);
    CHECK(f.cache->stat("e/moved/sub/y").ok());
    CHECK(f.cache->list("")->size() == 2);  // f, e
    CHECK(f.cache->list("e")->size() == 1);
    CHECK(f.lists() - lists1 == 4);
    CHECK(f.cache->stat("f").ok());  // not touched
  }
  SECTION("rename of a file over another: both paths") {
    const auto d_x = f.cache->stat("d/x");
    REQUIRE(f.cache->rename("f", "d/x", 0).ok());
    CHECK(f.cache->stat("f").err() == ENOENT);
    auto moved = f.cache->stat("d/x");
    REQUIRE(moved.ok());
    CHECK(moved->identity != d_x->identity);
    CHECK(moved->st.st_size == 10);
  }
  SECTION("link: both names (the link count changed) and the new parent's listing") {
    auto l = f.cache->link("f", "d/f2");
    REQUIRE(l.ok());
    CHECK(f.cache->stat("f")->st.st_nlink == 2);
    CHECK(f.cache->stat("d/f2")->st.st_nlink == 2);
    CHECK(f.cache->list("d")->size() == 3);
    SECTION("and unlink of one name drops the other's too") {
      REQUIRE(f.cache->unlink("d/f2").ok());
      CHECK(f.cache->stat("f")->st.st_nlink == 1);
    }
  }
  SECTION("setattr by path: the path and the parent's listing") {
    SetAttr c;
    c.mode = 0600;
    REQUIRE(f.cache->setattr("d/x", c, nullptr).ok());
    CHECK((f.cache->stat("d/x")->st.st_mode & 0777) == 0600);
    auto ls = f.cache->list("d");
    REQUIRE(ls.ok());
    for (const auto& e : *ls) {
      if (e.name == "x") CHECK((e.attr.st.st_mode & 0777) == 0600);
    }
    went(1, 1);
  }
  SECTION("write, fallocate and setattr through an open file: every name of the file") {
    auto h = f.cache->open("f", O_RDWR);
    REQUIRE(h.ok());
    REQUIRE(f.cache->link("f", "d/alias").ok());
    CHECK(f.cache->stat("d/alias").ok());
    CHECK(f.cache->stat("f").ok());
    const uint64_t stats1 = f.stats();
    const std::string more = "more";
    auto w = f.cache->write(**h, 10, std::span<const char>(more.data(), more.size()));
    REQUIRE(w.ok());
    CHECK(f.cache->stat("f")->st.st_size == 14);
    CHECK(f.cache->stat("d/alias")->st.st_size == 14);
    CHECK(f.stats() - stats1 == 2);
    SetAttr c;
    c.size = 3;
    REQUIRE(f.cache->setattr("f", c, h->get()).ok());
    CHECK(f.cache->stat("d/alias")->st.st_size == 3);
    CHECK(f.stats() - stats1 == 3);
    Status fa = f.cache->fallocate(**h, 0, 0, 100);
    if (fa.ok()) CHECK(f.cache->stat("d/alias")->st.st_size == 100);
    CHECK(f.stats() - stats1 == 3 + (fa.ok() ? 1 : 0));
  }
  SECTION("xattr changes: the path") {
    Status s = f.cache->setxattr("f", "user.k", "v", 0, nullptr);
    if (s.err() == ENOTSUP) return;  // no user xattrs here; the drop is the same either way
    REQUIRE(s.ok());
    CHECK(f.cache->stat("f").ok());
    went(1, 0);
    REQUIRE(f.cache->removexattr("f", "user.k", nullptr).ok());
    CHECK(f.cache->stat("f").ok());
    went(2, 0);
  }
  SECTION("a failed change drops too (it may have been made at the source)") {
    CHECK(f.cache->unlink("d").err() == EISDIR);
    CHECK(f.cache->stat("d").ok());
    went(1, 0);
    CHECK(f.cache->list("").ok());
    went(1, 1);
  }
  SECTION("Drop and DropAll") {
    f.cache->Drop("d/x");
    CHECK(f.cache->stat("d/x").ok());
    CHECK(f.cache->list("d").ok());
    went(1, 1);
    f.cache->Drop("d", true);
    CHECK(f.cache->stat("d/sub/y").ok());
    CHECK(f.cache->list("d/sub").ok());
    CHECK(f.cache->stat("f").ok());  // not below d
    went(2, 2);
    f.cache->DropAll();
    CHECK(f.cache->stat("f").ok());
    CHECK(f.cache->list("").ok());
    went(3, 3);
  }
}

TEST_CASE("AttrCache: a result fetched while a drop happened is not kept") {
  Fixture f;
  WriteFile(f.In("f"), "old");
  // The drop lands while the stat is on its way to the source: what the stat
  // brings back may predate the change that caused it.
  bool once = true;
  f.source->hook = [&](Op op) {
    if (op == Op::kStat && once) {
      once = false;
      f.cache->Drop("f");
    }
  };
  REQUIRE(f.cache->stat("f").ok());
  CHECK(f.cache->stat("f").ok());
  CHECK(f.stats() == 2);
  CHECK(f.cache->stat("f").ok());  // the second was kept
  CHECK(f.stats() == 2);
}

TEST_CASE("AttrCache: bounded by max_entries, oldest stored first out") {
  AttrCacheOptions o = Fixture::Options();
  o.max_entries = 3;
  Fixture f(o);
  for (const char* n : {"a", "b", "c", "d"}) WriteFile(f.In(n), n);
  for (const char* n : {"a", "b", "c", "d"}) REQUIRE(f.cache->stat(n).ok());
  CHECK(f.stats() == 4);
  for (const char* n : {"b", "c", "d"}) CHECK(f.cache->stat(n).ok());
  CHECK(f.stats() == 4);
  CHECK(f.cache->stat("a").ok());  // evicted: back to the source (and "b" goes)
  CHECK(f.stats() == 5);
  CHECK(f.cache->stat("b").ok());
  CHECK(f.stats() == 6);

  SECTION("a listing is stored after its entries: past the bound, the entries go first") {
    auto ls = f.cache->list("");  // the four entries in listing order, then the listing: two entries go
    REQUIRE(ls.ok());
    REQUIRE(ls->size() == 4);
    CHECK(f.cache->list("").ok());
    CHECK(f.lists() == 1);
    CHECK(f.cache->stat((*ls)[3].name).ok());  // stored last: kept
    CHECK(f.stats() == 6);
    CHECK(f.cache->stat((*ls)[0].name).ok());  // stored first: gone
    CHECK(f.stats() == 7);
  }
}

TEST_CASE("AttrCache: zero lifetimes keep nothing") {
  AttrCacheOptions o;
  o.attr_ttl = 0ms;
  o.entry_ttl = 0ms;
  Fixture f(o);
  WriteFile(f.In("f"), "x");
  CHECK(f.cache->stat("f").ok());
  CHECK(f.cache->stat("f").ok());
  CHECK(f.cache->list("").ok());
  CHECK(f.cache->list("").ok());
  CHECK(f.stats() == 2);
  CHECK(f.lists() == 2);
  CHECK(f.cache->hits() == 0);
}

TEST_CASE("AttrCache: many threads at once") {
  AttrCacheOptions o = Fixture::Options();
  o.max_entries = 50;
  Fixture f(o);
  for (int i = 0; i < 20; ++i) WriteFile(f.In("f" + std::to_string(i)), "x");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string name = "f" + std::to_string((i * 7 + t) % 20);
        switch ((i + t) % 4) {
          case 0:
            if (!f.cache->stat(name).ok()) ++wrong;
            break;
          case 1:
            if (!f.cache->list("").ok()) ++wrong;
            break;
          case 2: {
            SetAttr c;
            c.mode = 0644;
            if (!f.cache->setattr(name, c, nullptr).ok()) ++wrong;
            break;
          }
          default:
            f.cache->Drop(name);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(f.cache->hits() + f.cache->misses() == 600);
}
