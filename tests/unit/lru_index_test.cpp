// Tests for cache/lru_index: the record and snapshot bytes, load and replay,
// the torn-log cut, damaged snapshots, compaction, and LRU order after touches
// (with a fake clock), and persistence from several threads at once, on an
// index dir alone: no Cache, no culler.
#include "cache/lru_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "cache/layout.h"
#include "common/crc32c.h"
#include "common/unique_fd.h"
#include "test_util.h"

namespace cachefuse::cache {
namespace {

constexpr size_t kRecord = 56;  // docs/cache-format.md, "The LRU index"
static_assert(LruIndex::kRecordSize == kRecord);

// A cache dir with an empty index/, as Cache::Open leaves it.
class IndexDir {
 public:
  IndexDir() {
    REQUIRE(::mkdir((tmp_ / layout::kIndexDir).c_str(), 0700) == 0);
    fd_.reset(::open(tmp_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(fd_.valid());
  }
  int fd() const { return fd_.get(); }
  std::string path(const char* name) const { return tmp_ / layout::IndexPath(name); }
  bool exists(const char* name) const {
    struct stat st {};
    return ::lstat(path(name).c_str(), &st) == 0;
  }
  std::string read(const char* name) const { return test::ReadFile(path(name)); }
  void write(const char* name, const std::string& data) const { test::WriteFile(path(name), data); }

 private:
  test::TempDir tmp_;
  UniqueFd fd_;
};

// A clock the test moves by hand.
struct FakeClock {
  uint64_t now = 1'700'000'000;
  LruIndex::Clock fn() {
    return [this] { return now; };
  }
};

// A well-formed id: volume "v", object n.
std::string Id(int n) {
  return layout::ObjectId(layout::VolumeName("posix:/v"), layout::ObjectName("i" + std::to_string(n)));
}

std::vector<std::string> IdsOf(const std::vector<LruEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.id);
  return out;
}

std::string Le(uint64_t v, int n) {
  std::string s(static_cast<size_t>(n), '\0');
  for (int i = 0; i < n; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

std::string HexBytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// One record, built from the format description rather than from the code.
std::string Record(uint8_t type, const std::string& id, uint64_t bytes, uint64_t last_use) {
  std::string r(1, static_cast<char>(type));
  r += std::string(3, '\0');
  r += std::string(4, '\0');  // CRC, below
  r += HexBytes(id.substr(0, 32)) + HexBytes(id.substr(33)) + Le(bytes, 8) + Le(last_use, 8);
  const uint32_t crc = Crc32c(std::string_view(r).substr(8), Crc32c(std::string_view(r).substr(0, 4)));
  r.replace(4, 4, Le(crc, 4));
  return r;
}

// A fresh index on dir, loaded.
LruLoadReport Reload(const IndexDir& dir, LruIndex* index) {
  LruLoadReport report;
  REQUIRE(index->Load(dir.fd(), &report).ok());
  return report;
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const LruEntry& e) {
  return os << "{" << e.id.substr(0, 8) << ".." << e.id.substr(layout::kIdLen - 4) << " bytes=" << e.bytes
            << " last_use=" << e.last_use << "}";
}

TEST_CASE("lru_index: an empty index dir loads empty and is not clean; no index dir is an error", "[lru_index]") {
  IndexDir dir;
  LruIndex index;
  LruLoadReport report = Reload(dir, &index);
  CHECK(index.size() == 0);
  CHECK(index.data_bytes() == 0);
  CHECK_FALSE(index.Oldest());
  CHECK_FALSE(report.clean_marker);
  CHECK_FALSE(report.snapshot_found);
  CHECK_FALSE(report.clean());  // nothing says the tree is empty: rescan
  CHECK(dir.exists(layout::kLruLog));
  CHECK(dir.read(layout::kLruLog).empty());

  test::TempDir bare;
  UniqueFd fd(::open(bare.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  LruIndex other;
  CHECK_FALSE(other.Load(fd.get()).ok());
  CHECK_FALSE(other.is_open());
  other.PersistLog();  // no-ops before a Load
  CHECK_FALSE(other.Compact());
}

TEST_CASE("lru_index: record, log and snapshot bytes match docs/cache-format.md", "[lru_index]") {
  IndexDir dir;
  FakeClock clock;
  LruIndex index(clock.fn());
  Reload(dir, &index);
  const std::string a = Id(1);
  const std::string b = Id(2);
  index.Note(a, 0x0102030405060708ULL, true);
  clock.now += 5;
  index.Note(b, 4096, true);
  index.PersistLog();
  // The log: one upsert per changed id (in no particular order within a batch).
  const std::string log = dir.read(layout::kLruLog);
  REQUIRE(log.size() == 2 * kRecord);
  const std::string ra = Record(1, a, 0x0102030405060708ULL, 1'700'000'000);
  const std::string rb = Record(1, b, 4096, 1'700'000'005);
  CHECK(((log.substr(0, kRecord) == ra && log.substr(kRecord) == rb) ||
         (log.substr(0, kRecord) == rb && log.substr(kRecord) == ra)));
  CHECK(index.log_records() == 2);

  // A removal: type 2, size and last use 0.
  REQUIRE(index.Remove(a));
  index.PersistLog();
  CHECK(dir.read(layout::kLruLog).substr(2 * kRecord) == Record(2, a, 0, 0));

  // The snapshot: header, the records oldest first, CRC of all before. The log is emptied.
  index.Note(a, 7, true);  // back, now the youngest
  REQUIRE(index.Compact());
  CHECK(dir.read(layout::kLruLog).empty());
  CHECK(index.log_records() == 0);
  CHECK_FALSE(dir.exists(layout::kLruSnapshotTmp));
  std::string want = "CFIX";
  want += std::string(1, '\x01') + std::string(3, '\0') + Le(2, 8);
  want += rb + Record(1, a, 7, 1'700'000'005);
  want += Le(Crc32c(want), 4);
  CHECK(dir.read(layout::kLruSnapshot) == want);
  CHECK(dir.read(layout::kLruSnapshot).size() == LruIndex::kSnapshotHeader + 2 * kRecord + LruIndex::kSnapshotTrailer);

  REQUIRE(index.MarkClean());
  CHECK(dir.exists(layout::kClean));
}

TEST_CASE("lru_index: a clean stop and a restart keep every entry and the LRU order", "[lru_index]") {
  IndexDir dir;
  FakeClock clock;
  std::vector<LruEntry> before;
  {
    LruIndex index(clock.fn());
    Reload(dir, &index);
    // Noted in descending id order within one second: a restart that sorted by
    // name, or by last use alone, would reverse them.
    std::vector<std::string> ids = {Id(1), Id(2), Id(3), Id(4), Id(5)};
    std::sort(ids.rbegin(), ids.rend());
    for (size_t i = 0; i < ids.size(); ++i) index.Note(ids[i], 4096 * (i + 1), true);
    clock.now += 1;
    index.Touch(ids[0]);  // the oldest becomes the youngest
    before = index.Entries();
    REQUIRE(IdsOf(before) == std::vector<std::string>{ids[1], ids[2], ids[3], ids[4], ids[0]});
    REQUIRE(index.Compact());
    REQUIRE(index.MarkClean());
    index.Close();
  }
  LruIndex index(clock.fn());
  LruLoadReport report = Reload(dir, &index);
  CHECK(report.clean_marker);
  CHECK(report.snapshot_found);
  CHECK_FALSE(report.snapshot_damaged);
  CHECK(report.log_records == 0);
  CHECK(report.log_torn_bytes == 0);
  CHECK(report.clean());
  CHECK_FALSE(dir.exists(layout::kClean));  // only while no daemon runs
  CHECK(index.Entries() == before);
  CHECK(index.data_bytes() == 4096 * (1 + 2 + 3 + 4 + 5));
  CHECK(index.Oldest() == before.front().id);
}

TEST_CASE("lru_index: CLEAN without a snapshot proves nothing", "[lru_index]") {
  IndexDir dir;
  dir.write(layout::kClean, "");
  LruIndex index;
  LruLoadReport report = Reload(dir, &index);
  CHECK(report.clean_marker);
  CHECK_FALSE(report.snapshot_found);
  CHECK_FALSE(report.clean());
  CHECK_FALSE(dir.exists(layout::kClean));
}

TEST_CASE("lru_index: order after touches, in memory and after a crash", "[lru_index]") {
  IndexDir dir;
  FakeClock clock;
  const std::string a = Id(1), b = Id(2), c = Id(3);
  {
    LruIndex index(clock.fn());
    Reload(dir, &index);
    // One batch each: within a batch the records are in no particular order,
    // and ties in last use keep the order in which the log first names the ids.
    index.Note(a, 10, true);
    index.PersistLog();
    index.Note(b, 20, true);
    index.PersistLog();
    index.Note(c, 30, false);
    index.PersistLog();
    const uint64_t records = index.log_records();
    CHECK(IdsOf(index.Entries()) == std::vector<std::string>{a, b, c});

    // A touch within the same second moves the entry but is not logged (last use has seconds only).
    index.Touch(a);
    CHECK(IdsOf(index.Entries()) == std::vector<std::string>{b, c, a});
    index.PersistLog();
    CHECK(index.log_records() == records);
    CHECK(index.Oldest() == b);
    CHECK(index.Oldest({b}) == c);
    CHECK_FALSE(index.Oldest({a, b, c}));

    // A touch a second later is logged.
    clock.now += 1;
    index.Touch(b);
    CHECK(IdsOf(index.Entries()) == std::vector<std::string>{c, a, b});
    index.PersistLog();
    CHECK(index.log_records() == records + 1);
    CHECK(index.Find(b)->last_use == clock.now);
    index.Touch(Id(99));  // unknown: nothing happens
    CHECK(index.size() == 3);
    index.Close();  // no Compact, no CLEAN: a crash
  }
  // After the crash the order comes from last use, ties in the order the files
  // first name the ids: a's same-second touch is lost, b's is not.
  LruIndex index(clock.fn());
  LruLoadReport report = Reload(dir, &index);
  CHECK_FALSE(report.clean());
  CHECK(report.log_records == 4);
  CHECK(IdsOf(index.Entries()) == std::vector<std::string>{a, c, b});
}

TEST_CASE("lru_index: the log is replayed over the snapshot", "[lru_index]") {
  IndexDir dir;
  FakeClock clock;
  const std::string a = Id(1), b = Id(2), c = Id(3), d = Id(4);
  std::vector<LruEntry> before;
  {
    LruIndex index(clock.fn());
    Reload(dir, &index);
    index.Note(a, 100, true);
    index.Note(b, 200, true);
    index.Note(c, 300, true);
    REQUIRE(index.Compact());
    clock.now += 10;
    REQUIRE(index.Remove(b));
    CHECK_FALSE(index.Remove(b));  // already gone
    index.Note(d, 400, true);
    index.Note(a, 150, false);  // new size, same last use, same place
    index.PersistLog();
    before = index.Entries();
    index.Close();
  }
  REQUIRE(IdsOf(before) == std::vector<std::string>{a, c, d});
  LruIndex index(clock.fn());
  LruLoadReport report = Reload(dir, &index);
  CHECK_FALSE(report.clean_marker);
  CHECK(report.snapshot_found);
  CHECK_FALSE(report.snapshot_damaged);
  CHECK(report.log_records == 3);
  CHECK(report.log_torn_bytes == 0);
  CHECK_FALSE(report.clean());
  CHECK(index.Entries() == before);
  CHECK(index.data_bytes() == 150 + 300 + 400);
  CHECK_FALSE(index.Find(b));
}

TEST_CASE("lru_index: a torn log is cut at its first bad record; the whole records before it are kept", "[lru_index]") {
  IndexDir dir;
  FakeClock clock;
  std::vector<LruEntry> before;
  {
    LruIndex index(clock.fn());
    Reload(dir, &index);
    for (int i = 1; i <= 3; ++i) {
      index.Note(Id(i), 4096 * i, true);
      index.PersistLog();  // one batch each: the log keeps their order
    }
    before = index.Entries();
    index.Close();
  }
  const std::string whole = dir.read(layout::kLruLog);
  REQUIRE(whole.size() == 3 * kRecord);
  const std::string extra = Record(1, Id(7), 1, clock.now);
  std::string tail;
  SECTION("a valid record cut short (the daemon died mid-append)") {
    tail = extra.substr(0, 40);
  }
  SECTION("a valid record with a flipped bit") {
    tail = extra;
    tail[30] = static_cast<char>(tail[30] ^ 0x10);
  }
  SECTION("a record of zeros (a hole left by a crash)") {
    tail = std::string(kRecord, '\0');
  }
  SECTION("a record with an unknown type") {
    tail = extra;
    tail[0] = 3;
    const uint32_t crc = Crc32c(std::string_view(tail).substr(8), Crc32c(std::string_view(tail).substr(0, 4)));
    tail.replace(4, 4, Le(crc, 4));
  }
  SECTION("a bad record followed by a good one: replay ends at the bad one") {
    tail = std::string(kRecord, '\x5a') + extra;
  }
  dir.write(layout::kLruLog, whole + tail);

  FakeClock later{clock.now + 100};
  LruIndex index(later.fn());
  LruLoadReport report = Reload(dir, &index);
  CHECK(report.log_records == 3);
  CHECK(report.log_torn_bytes == tail.size());
  CHECK_FALSE(report.clean());
  CHECK(index.Entries() == before);
  CHECK_FALSE(index.Find(Id(7)));
  CHECK(dir.read(layout::kLruLog) == whole);  // cut back to the whole records
  // Later appends follow the whole records, and the next start finds nothing torn.
  index.Note(Id(8), 1, true);
  index.PersistLog();
  CHECK(dir.read(layout::kLruLog).size() == 4 * kRecord);
  index.Close();
  LruIndex again;
  report = Reload(dir, &again);
  CHECK(report.log_torn_bytes == 0);
  CHECK(again.size() == 4);
}

TEST_CASE("lru_index: a damaged snapshot is ignored; the log is still replayed", "[lru_index]") {
  IndexDir dir;
  FakeClock clock;
  const std::string c = Id(3);
  {
    LruIndex index(clock.fn());
    Reload(dir, &index);
    index.Note(Id(1), 10, true);
    index.Note(Id(2), 20, true);
    REQUIRE(index.Compact());
    index.Note(c, 30, true);
    index.PersistLog();
    REQUIRE(index.MarkClean());
    index.Close();
  }
  std::string snap = dir.read(layout::kLruSnapshot);
  REQUIRE(snap.size() == 16 + 2 * kRecord + 4);
  SECTION("a byte flipped in a record") {
    snap[16 + kRecord + 45] ^= 0x01;
  }
  SECTION("a byte flipped in the count") {
    snap[8] ^= 0x01;
  }
  SECTION("a byte flipped in the checksum") {
    snap[snap.size() - 1] ^= static_cast<char>(0x80);
  }
  SECTION("another magic") {
    snap[0] = 'X';
  }
  SECTION("another version, with a valid checksum") {
    snap[4] = 2;
    snap.replace(snap.size() - 4, 4, Le(Crc32c(std::string_view(snap).substr(0, snap.size() - 4)), 4));
  }
  SECTION("cut short") {
    snap.resize(snap.size() - 10);
  }
  SECTION("empty") {
    snap.clear();
  }
  dir.write(layout::kLruSnapshot, snap);

  LruIndex index(clock.fn());
  LruLoadReport report = Reload(dir, &index);
  CHECK(report.clean_marker);
  CHECK(report.snapshot_found);
  CHECK(report.snapshot_damaged);
  CHECK_FALSE(report.clean());
  CHECK(report.log_records == 1);
  CHECK(IdsOf(index.Entries()) == std::vector<std::string>{c});
  CHECK(index.data_bytes() == 30);
}

TEST_CASE("lru_index: the log is compacted once it holds more than 2 * entries + 4096 records", "[lru_index]") {
  IndexDir dir;
  LruIndex index;
  Reload(dir, &index);
  const std::string a = Id(1);
  // One entry whose size changes every time: one record per PersistLog.
  uint64_t n = 0;
  for (; n < 2 * 1 + 4096; ++n) {
    index.Note(a, n + 1, false);
    index.PersistLog();
  }
  CHECK(index.log_records() == 4098);
  CHECK(dir.read(layout::kLruLog).size() == 4098 * kRecord);
  CHECK_FALSE(dir.exists(layout::kLruSnapshot));
  index.Note(a, n + 1, false);
  index.PersistLog();  // the 4099th record: over the threshold
  CHECK(index.log_records() == 0);
  CHECK(dir.read(layout::kLruLog).empty());
  CHECK(dir.read(layout::kLruSnapshot).size() == 16 + kRecord + 4);
  index.Close();
  LruIndex again;
  LruLoadReport report = Reload(dir, &again);
  CHECK_FALSE(report.snapshot_damaged);
  REQUIRE(again.Find(a));
  CHECK(again.Find(a)->bytes == n + 1);
}

TEST_CASE("lru_index: Grow counts without logging; Adopt enters at the old end", "[lru_index]") {
  IndexDir dir;
  FakeClock clock;
  const std::string a = Id(1), b = Id(2), c = Id(3);
  {
    LruIndex index(clock.fn());
    Reload(dir, &index);
    index.Note(a, 100, true);
    index.PersistLog();
    index.Note(b, 200, true);
    index.PersistLog();
    const uint64_t records = index.log_records();
    index.Grow(a, 50);
    index.Grow(Id(9), 50);  // unknown: ignored
    CHECK(index.Find(a)->bytes == 150);
    CHECK(index.data_bytes() == 350);
    index.PersistLog();
    CHECK(index.log_records() == records);  // the exact size comes with the next Note

    // Adopt: a file found by a scan is among the first to go; a known one keeps its place.
    CHECK(index.Adopt(c, 300, clock.now - 3600));
    CHECK(IdsOf(index.Entries()) == std::vector<std::string>{c, a, b});
    CHECK_FALSE(index.Adopt(a, 120, 1));
    CHECK(IdsOf(index.Entries()) == std::vector<std::string>{c, a, b});
    CHECK(*index.Find(a) == LruEntry{a, 120, clock.now});
    CHECK(index.data_bytes() == 120 + 200 + 300);
    index.PersistLog();
    index.Close();
  }
  LruIndex index(clock.fn());
  Reload(dir, &index);
  CHECK(index.Entries() == std::vector<LruEntry>{{c, 300, clock.now - 3600}, {a, 120, clock.now}, {b, 200, clock.now}});
}

TEST_CASE("lru_index: an id not of the form <vhash>/<ohash> is kept in memory only", "[lru_index]") {
  IndexDir dir;
  LruIndex index;
  Reload(dir, &index);
  const std::string upper = layout::VolumeName("x") + "/" + std::string(32, 'A');
  for (const std::string& id : {std::string("not-an-id"), upper, Id(1).substr(1)}) index.Note(id, 5, true);
  CHECK(index.size() == 3);
  CHECK(index.data_bytes() == 15);
  index.PersistLog();
  CHECK(dir.read(layout::kLruLog).empty());
  REQUIRE(index.Compact());
  CHECK(dir.read(layout::kLruSnapshot).size() == 16 + 4);  // an empty snapshot
  index.Close();
  LruIndex again;
  LruLoadReport report = Reload(dir, &again);
  CHECK_FALSE(report.snapshot_damaged);
  CHECK(again.size() == 0);
}

}  // namespace cachefuse::cache

namespace cachefuse::cache {

TEST_CASE("lru_index: appends and compactions from several threads leave a whole log", "[lru_index]") {
  // The culler thread persists every 250 ms while cachefusectl cull (CullNow)
  // and Stop persist from other threads.
  IndexDir dir;
  LruIndex index;
  Reload(dir, &index);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        const std::string id = Id(t * 100 + i % 50);
        if (i % 7 == 0) {
          index.Remove(id);
        } else {
          index.Note(id, static_cast<uint64_t>(i), true);
        }
        index.PersistLog();
      }
    });
  }
  std::atomic<int> failed_compactions{0};
  std::thread compactor([&] {
    while (!stop) {
      if (!index.Compact()) ++failed_compactions;
    }
  });
  for (auto& th : threads) th.join();
  stop = true;
  compactor.join();
  CHECK(failed_compactions == 0);  // two at once would fight over lru.snap.tmp
  index.PersistLog();
  const std::vector<LruEntry> before = index.Entries();
  index.Close();  // a crash: snapshot + log must give back what was in memory
  LruIndex again;
  LruLoadReport report = Reload(dir, &again);
  CHECK_FALSE(report.snapshot_damaged);
  CHECK(report.log_torn_bytes == 0);
  CHECK(dir.read(layout::kLruLog).size() % kRecord == 0);
  std::vector<LruEntry> after = again.Entries();
  auto by_id = [](const LruEntry& x, const LruEntry& y) { return x.id < y.id; };
  std::vector<LruEntry> want = before;
  std::sort(want.begin(), want.end(), by_id);
  std::sort(after.begin(), after.end(), by_id);
  CHECK(after == want);
}

}  // namespace cachefuse::cache
