// Tests for cache/culler: the persistent LRU index (snapshot + log + CLEAN),
// crash recovery by reconcile, space accounting as du counts it, cache_size,
// LRU eviction that never touches objects in use, fetch reservations, the
// cachefilesd thresholds (on a loop-mounted ext4 when that works here) and the
// cull counters. The cache is filled through the ReadHelper from a local source.
#include "cache/culler.h"

#include <fcntl.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "cache_test_util.h"

namespace cachefuse::cache {
namespace {

using test::Harness;
using test::Mismatch;
using test::PathExists;
using test::RandomBytes;
using test::TempDir;
using test::WaitUntil;

constexpr uint64_t G = 64 * 1024;  // the harness's granule
constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * 1024;
constexpr size_t kRecord = 56;  // one index record (docs/cache-format.md)
static_assert(kRecord == LruIndex::kRecordSize);

// --- The cache dir as du sees it

// du -s -B1: st_blocks * 512 of everything under dir (dir included), hard links once.
uint64_t DuBytes(const std::string& dir) {
  std::set<std::pair<dev_t, ino_t>> seen;
  uint64_t sum = 0;
  std::function<void(const std::string&)> walk = [&](const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;  // removed meanwhile
    if (seen.insert({st.st_dev, st.st_ino}).second) sum += static_cast<uint64_t>(st.st_blocks) * 512;
    if (!S_ISDIR(st.st_mode)) return;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(path, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
      walk(it->path().string());
    }
  };
  walk(dir);
  return sum;
}

// Space an object takes: its data file and its side-car, as du counts them.
uint64_t ObjectBytes(const std::string& path) {
  uint64_t sum = 0;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) sum += static_cast<uint64_t>(st.st_blocks) * 512;
  if (::lstat((path + ".map").c_str(), &st) == 0) sum += static_cast<uint64_t>(st.st_blocks) * 512;
  return sum;
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

// The object data files of the cache dir (volumes/<v>/<xx>/<32 hex>).
std::set<std::string> ObjectFiles(const std::string& cache_dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(cache_dir + "/volumes", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() && IsHex(it->path().filename().string(), 32)) out.insert(it->path().string());
  }
  return out;
}

// Drops a well-formed object file the index does not know into the volume dir:
// a 32-hex name in the fan-out dir of the object at `like` (so that no new
// directory appears), with `bytes` of data.
std::string PlantObject(const std::string& like, char fill, uint64_t bytes) {
  const std::string dir = like.substr(0, like.rfind('/'));
  const std::string path = dir + "/" + dir.substr(dir.size() - 2) + std::string(30, fill);
  test::WriteFile(path, RandomBytes(bytes, 99));
  return path;
}

// --- Log capture (the reconcile says what it adopted and dropped)

class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lk(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

// Adds a capturing sink to the default logger. Make it before the Harness (so
// that no cache thread logs while the logger is swapped) and let it go after.
class LogCapture {
 public:
  LogCapture() : old_(spdlog::default_logger()), sink_(std::make_shared<CaptureSink>()) {
    std::vector<spdlog::sink_ptr> sinks = old_->sinks();
    sinks.push_back(sink_);
    auto logger = std::make_shared<spdlog::logger>("culler_test", sinks.begin(), sinks.end());
    logger->set_level(std::min(old_->level(), spdlog::level::info));
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Where the log is now: Matching(needle, Mark()) later sees only what came after.
  size_t Mark() const { return sink_->lines().size(); }
  std::vector<std::string> Matching(const std::string& needle, size_t since = 0) const {
    std::vector<std::string> out;
    auto lines = sink_->lines();
    for (size_t i = since; i < lines.size(); ++i) {
      if (lines[i].find(needle) != std::string::npos) out.push_back(lines[i]);
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> old_;
  std::shared_ptr<CaptureSink> sink_;
};

// --- Source files and the way the daemon uses them (open = Use, read, release = Unuse)

struct File {
  std::string name;
  std::string data;
  CookieRef cookie;
  test::FakeFetcherRef file;
  UseToken use;  // of the open (the latest, if opened more than once)
};

std::vector<File> MakeFiles(Harness& h, const std::string& prefix, int count, size_t size) {
  std::vector<File> out;
  for (int i = 0; i < count; ++i) {
    File f;
    f.name = prefix + std::to_string(i);
    f.data = RandomBytes(size, static_cast<unsigned>(1000 + i));
    test::WriteFile(h.src(f.name), f.data);
    out.push_back(std::move(f));
  }
  return out;
}

// An open: the cookie is in use until Release.
void OpenFile(Harness& h, File& f) {
  if (!f.cookie) f.cookie = h.Acquire(f.name);
  if (!f.file) f.file = h.OpenFile(f.name);
  f.use = f.cookie->Use(false);
}

void Release(Harness& h, File& f) {
  h.Unuse(*f.cookie, f.use);
}

std::string ReadWhole(Harness& h, File& f) {
  std::string out;
  for (uint64_t off = 0; off < f.data.size(); off += MiB) {
    out += h.Read(f.use, f.file, off, std::min<uint64_t>(MiB, f.data.size() - off));
  }
  return out;
}

// Open, read all of it (checking the bytes), wait until it is all cached, release.
void Fill(Harness& h, File& f) {
  OpenFile(h, f);
  REQUIRE(Mismatch(ReadWhole(h, f), f.data) == "");
  REQUIRE(h.WaitCached(*f.cookie, 0, f.data.size()));
  Release(h, f);
}

// Lets go of the cookies (before the cache closes).
void DropAll(std::vector<File>& files) {
  for (File& f : files) {
    if (f.cookie) f.cookie->Relinquish(false);
    f.use = UseToken();
    f.cookie.reset();
    f.file.reset();
  }
}

// Flushes the objects, reaps the graveyard and recounts the overhead (a forced
// culling pass), twice: the first pass may append to the index log, which the
// second one counts. Afterwards bytes_used describes the cache dir as it is.
void Settle(Harness& h) {
  REQUIRE(h.cache->CullNow().ok());
  REQUIRE(h.cache->CullNow().ok());
}

// The culler thread has done its start-up work (the reconcile after an unclean stop).
void WaitStarted(Harness& h) {
  REQUIRE(WaitUntil([&] { return h.cache->culler().reconciled(); }));
}

// A small ext4 on a loop device, as a cache disk whose free space a test can
// run low. ok() is false where that cannot be made (not root, no loop device,
// no mkfs.ext4). Unmounted, and its image removed, in all cases.
class LoopFs {
 public:
  explicit LoopFs(unsigned mib) : img_(tmp_ / "fs.img"), mnt_(tmp_ / "mnt") {
    if (::geteuid() != 0 || ::mkdir(mnt_.c_str(), 0700) != 0) return;
    // 4 KiB blocks, no root reserve, no journal, few inodes: predictable free space and files.
    const std::string cmd = "truncate -s " + std::to_string(mib) + "M " + img_ +
                            " && mkfs.ext4 -q -F -b 4096 -m 0 -O ^has_journal -N 256 " + img_ +
                            " >/dev/null 2>&1 && mount -o loop " + img_ + " " + mnt_ + " 2>/dev/null";
    mounted_ = std::system(cmd.c_str()) == 0;
  }
  ~LoopFs() {
    if (!mounted_) return;
    const std::string cmd = "umount " + mnt_ + " 2>/dev/null || umount -l " + mnt_;
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "culler_test: cannot unmount %s\n", mnt_.c_str());
  }
  LoopFs(const LoopFs&) = delete;
  LoopFs& operator=(const LoopFs&) = delete;

  bool ok() const { return mounted_; }
  const std::string& path() const { return mnt_; }

  // Free blocks and files in percent, as the culler computes them (nothing reserved).
  double free_blocks_pct() const {
    struct statvfs v {};
    ::statvfs(mnt_.c_str(), &v);
    return 100.0 * static_cast<double>(v.f_bavail) / static_cast<double>(v.f_blocks);
  }
  double free_files_pct() const {
    struct statvfs v {};
    ::statvfs(mnt_.c_str(), &v);
    return 100.0 * static_cast<double>(v.f_favail) / static_cast<double>(v.f_files);
  }
  // Allocates a file `name` outside the cache dir so that `pct` percent of the blocks stay free.
  bool FillTo(const std::string& name, double pct) const {
    struct statvfs v {};
    if (::statvfs(mnt_.c_str(), &v) != 0) return false;
    const double keep = pct / 100.0 * static_cast<double>(v.f_blocks);
    if (static_cast<double>(v.f_bavail) <= keep + 1) return false;
    const auto blocks = static_cast<uint64_t>(static_cast<double>(v.f_bavail) - keep) - 1;
    UniqueFd fd(::open((mnt_ + "/" + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    return fd.valid() && ::posix_fallocate(fd.get(), 0, static_cast<off_t>(blocks * v.f_frsize)) == 0;
  }

 private:
  TempDir tmp_;  // removed after the unmount (members go after the destructor's body)
  const std::string img_;
  const std::string mnt_;
  bool mounted_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------
// (1) Index persistence

TEST_CASE("culler: a clean stop persists the index; a restart restores it without a scan, LRU order included",
          "[culler]") {
  LogCapture log;  // outlives the cache's threads
  Harness h;
  constexpr int kN = 8;
  std::vector<File> files = MakeFiles(h, "f", kN, 4 * G);
  // Cached in descending order of object names: an index that lost the LRU
  // order and fell back to names would evict the youngest first.
  std::sort(files.begin(), files.end(),
            [&](const File& a, const File& b) { return h.object_path(a.name) > h.object_path(b.name); });
  h.OpenCache();
  for (File& f : files) Fill(h, f);
  Fill(h, files[0]);             // used again: the oldest becomes the youngest
  std::vector<std::string> lru;  // object paths, least recently used first
  for (int i = 1; i < kN; ++i) lru.push_back(h.object_path(files[i].name));
  lru.push_back(h.object_path(files[0].name));
  CHECK(h.stats().cache_objects == kN);
  DropAll(files);
  h.CloseCache();

  const std::string index = h.cache_dir + "/index";
  CHECK(PathExists(index + "/CLEAN"));
  CHECK(FileSize(index + "/lru.log") == 0);  // folded into the snapshot
  CHECK(FileSize(index + "/lru.snap") == 16 + kN * kRecord + 4);
  const uint64_t du_closed = DuBytes(h.cache_dir);

  // An object file the index does not know: a start-up that scanned the tree would adopt it.
  const std::string stray = PlantObject(lru[0], 'e', 2 * G);
  size_t mark = log.Mark();
  h.OpenCache();
  CHECK_FALSE(PathExists(index + "/CLEAN"));  // only while no daemon runs
  CHECK(h.stats().cache_objects == kN);
  CHECK(h.stats().cache_bytes_used == du_closed);
  WaitStarted(h);
  CHECK(log.Matching("index reconciled", mark).empty());
  CHECK(h.cache->culler().objects() == kN);  // the stray was not adopted: nothing scanned the tree
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir) - ObjectBytes(stray));
  h.CloseCache();
  REQUIRE(::unlink(stray.c_str()) == 0);
  CHECK(PathExists(index + "/CLEAN"));

  // Restarted with a limit the cache is over: the culler evicts, oldest first.
  std::map<std::string, uint64_t> sizes;
  for (const auto& p : lru) sizes[p] = ObjectBytes(p);
  const uint64_t limit = DuBytes(h.cache_dir);
  h.opts.limits.cache_size = limit;
  h.OpenCache();
  REQUIRE(h.cache->CullNow().ok());
  size_t k = 0;
  while (k < lru.size() && !PathExists(lru[k])) ++k;
  INFO("evicted the " << k << " least recently used");
  for (size_t i = k; i < lru.size(); ++i) CHECK(PathExists(lru[i]));  // nothing younger went
  CHECK(k >= 1);
  CHECK(k <= 3);  // 15% of the limit is about two objects
  CHECK(h.stats().cull_objects == k);
  uint64_t freed = 0;
  for (size_t i = 0; i < k; ++i) freed += sizes[lru[i]];
  CHECK(h.stats().cull_bytes == freed);
  CHECK(h.stats().cache_objects == kN - k);
  Settle(h);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  CHECK(h.stats().cache_bytes_used * 100 <= limit * 85);
}

TEST_CASE("culler: a stop that cannot write the index snapshot leaves no CLEAN; the next start rescans", "[culler]") {
  LogCapture log;
  Harness h;
  std::vector<File> files = MakeFiles(h, "w", 3, 2 * G);
  h.OpenCache();
  for (File& f : files) Fill(h, f);
  // The snapshot's temporary name is taken (by a directory): the snapshot cannot be written.
  const std::string index = h.cache_dir + "/index";
  REQUIRE(::mkdir((index + "/lru.snap.tmp").c_str(), 0700) == 0);
  const size_t mark = log.Mark();
  DropAll(files);
  h.CloseCache();
  CHECK(log.Matching("cannot write the cache index snapshot", mark).size() == 1);
  CHECK_FALSE(PathExists(index + "/CLEAN"));

  REQUIRE(::rmdir((index + "/lru.snap.tmp").c_str()) == 0);
  h.OpenCache();
  WaitStarted(h);
  auto lines = log.Matching("index reconciled", mark);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("0 objects adopted, 0 entries dropped"));  // the log had it all
  CHECK(h.stats().cache_objects == 3);
  h.CloseCache();
  CHECK(PathExists(index + "/CLEAN"));
  CHECK(FileSize(index + "/lru.snap") == 16 + 3 * kRecord + 4);
}

// ---------------------------------------------------------------------------
// (2) Crash: no CLEAN, so the index is reconciled with the tree

TEST_CASE("culler: after a crash the index is reconciled with the tree; CullNow reconciles synchronously", "[culler]") {
  LogCapture log;
  Harness h;
  std::vector<File> files = MakeFiles(h, "c", 6, 3 * G);
  h.opts.persist_on_close = false;
  h.OpenCache();
  for (File& f : files) Fill(h, f);
  REQUIRE(h.cache->CullNow().ok());  // maps and index log on disk, as the flusher and the culler do within a second
  std::vector<std::string> paths;
  for (File& f : files) paths.push_back(h.object_path(f.name));
  DropAll(files);
  h.CloseCache();  // as if the daemon died

  const std::string index = h.cache_dir + "/index";
  CHECK_FALSE(PathExists(index + "/CLEAN"));
  CHECK(FileSize(index + "/lru.log") >= 6 * kRecord);
  CHECK(FileSize(index + "/lru.log") % kRecord == 0);

  // While it is down: an object file is deleted by hand, an unknown one appears,
  // and an orphan side-car is left behind.
  REQUIRE(::unlink(paths[1].c_str()) == 0);
  const std::string stray = PlantObject(paths[0], '1', 2 * G);
  const std::string orphan = PlantObject(paths[4], '2', 4 * KiB) + ".map";
  REQUIRE(::rename(orphan.substr(0, orphan.size() - 4).c_str(), orphan.c_str()) == 0);

  size_t mark = log.Mark();
  h.OpenCache();  // persist_on_close is still false: this one will crash too
  WaitStarted(h);
  auto lines = log.Matching("index reconciled", mark);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("1 objects adopted, 1 entries dropped"));
  CHECK(h.stats().cache_objects == 6);
  CHECK(ObjectFiles(h.cache_dir).size() == 6);
  CHECK_FALSE(PathExists(orphan));
  Settle(h);
  CHECK(h.stats().cache_objects == 6);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  h.CloseCache();  // crashes again, with the reconciled index in the log
  CHECK_FALSE(PathExists(index + "/CLEAN"));

  // Down again: two more files go, one more appears. A culler that is loaded
  // but not started (no background reconcile) is brought up to date by CullNow.
  REQUIRE(::unlink(paths[2].c_str()) == 0);
  REQUIRE(::unlink(paths[3].c_str()) == 0);
  PlantObject(paths[5], '3', 3 * G);
  TempDir other;
  CacheOptions host_opts;
  host_opts.dir = other / "c";
  auto host = Cache::Open(host_opts);  // a culler needs a Cache (for its stats and log lines)
  REQUIRE(host.ok());
  REQUIRE(WaitUntil([&] { return host.value()->culler().reconciled(); }));  // its own start-up reconcile is done
  UniqueFd dir(::open(h.cache_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd vols(::openat(dir.get(), "volumes", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(vols.valid());
  Culler culler(host.value().get(), dir.get(), vols.get(), CullLimits{});
  mark = log.Mark();
  REQUIRE(culler.Load().ok());
  CHECK_FALSE(culler.reconciled());
  CHECK(culler.objects() == 6);  // what the index says
  REQUIRE(culler.CullNow().ok());
  CHECK(culler.reconciled());
  CHECK(culler.objects() == 5);
  lines = log.Matching("index reconciled", mark);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("1 objects adopted, 2 entries dropped"));
  REQUIRE(culler.CullNow().ok());  // counts the index log the first pass appended to
  CHECK(culler.bytes_used() == DuBytes(h.cache_dir));
  culler.Stop(false);
}

// ---------------------------------------------------------------------------
// (3) Damaged index files

TEST_CASE("culler: a torn tail of the index log is cut off; the whole records are kept", "[culler]") {
  LogCapture log;
  Harness h;
  std::vector<File> files = MakeFiles(h, "t", 4, 2 * G);
  h.opts.persist_on_close = false;
  h.OpenCache();
  for (File& f : files) Fill(h, f);
  REQUIRE(h.cache->CullNow().ok());
  DropAll(files);
  h.CloseCache();

  const std::string path = h.cache_dir + "/index/lru.log";
  const std::string whole = test::ReadFile(path);
  REQUIRE(whole.size() >= 4 * kRecord);
  REQUIRE(whole.size() % kRecord == 0);
  std::string tail;
  SECTION("a partial record of garbage") {
    tail = std::string(30, '\xab');
  }
  SECTION("a whole record of garbage, then part of another") {
    tail = std::string(kRecord + 20, '\x5a');
  }
  SECTION("a valid record cut short (the daemon died mid-append)") {
    tail = whole.substr(0, 40);
  }
  SECTION("a valid record with a flipped bit") {
    tail = whole.substr(0, kRecord);
    tail[30] = static_cast<char>(tail[30] ^ 0x10);
  }
  test::PatchFile(path, whole.size(), tail);

  h.opts.persist_on_close = true;
  const size_t mark = log.Mark();
  h.OpenCache();
  // Load cut the log back to its whole records (later appends follow them).
  const std::string now = test::ReadFile(path);
  CHECK(now.size() % kRecord == 0);
  CHECK(now.substr(0, whole.size()) == whole);
  CHECK(now.substr(whole.size(), tail.size()) != tail);
  WaitStarted(h);
  // The records were kept: the reconcile (there was no CLEAN) found nothing to adopt.
  auto lines = log.Matching("index reconciled", mark);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("0 objects adopted, 0 entries dropped"));
  CHECK(h.stats().cache_objects == 4);
  Settle(h);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  CHECK(FileSize(path) % kRecord == 0);
}

TEST_CASE("culler: a damaged snapshot is not trusted: the tree is rescanned", "[culler]") {
  LogCapture log;
  Harness h;
  std::vector<File> files = MakeFiles(h, "d", 5, 2 * G);
  h.OpenCache();
  for (File& f : files) Fill(h, f);
  DropAll(files);
  h.CloseCache();
  const std::string snap = h.cache_dir + "/index/lru.snap";
  REQUIRE(PathExists(h.cache_dir + "/index/CLEAN"));
  std::string data = test::ReadFile(snap);
  REQUIRE(data.size() == 16 + 5 * kRecord + 4);
  SECTION("a byte flipped in a record") {
    data[16 + 2 * kRecord + 45] ^= 0x01;
  }
  SECTION("a byte flipped in the count") {
    data[8] ^= 0x01;
  }
  SECTION("a byte flipped in the checksum") {
    data[data.size() - 1] ^= 0x80;
  }
  SECTION("cut short") {
    data.resize(data.size() - 10);
  }
  test::WriteFile(snap, data);

  const size_t mark = log.Mark();
  h.OpenCache();
  WaitStarted(h);
  CHECK(log.Matching("snapshot is damaged", mark).size() == 1);
  auto lines = log.Matching("index reconciled", mark);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("5 objects adopted, 0 entries dropped"));
  CHECK(h.stats().cache_objects == 5);
  Settle(h);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  h.CloseCache();
  // The rescanned index is what the next clean start trusts.
  CHECK(PathExists(h.cache_dir + "/index/CLEAN"));
  CHECK(FileSize(snap) == 16 + 5 * kRecord + 4);
}

// ---------------------------------------------------------------------------
// (4) cache_size

TEST_CASE("culler: cache_size holds while filling past it; the least recently used go first", "[culler]") {
  Harness h;
  constexpr uint64_t kLimit = 4 * MiB;
  constexpr int kN = 10;
  h.opts.limits.cache_size = kLimit;
  std::vector<File> files = MakeFiles(h, "s", kN, MiB);
  std::vector<std::string> paths;
  for (File& f : files) paths.push_back(h.object_path(f.name));
  h.OpenCache();

  // Slack: the culler reserves the data of a fetch before it starts, but not
  // the metadata the cache dir grows by as a side effect: per new object up to
  // one fan-out dir (counted at the culler's next recount, every 2 s) and one
  // ext4 xattr block for the map (counted when the flusher writes the map),
  // 4 KiB each; and index log growth (a 4 KiB block per 73 records). The next
  // culling pass takes them into account (checked after Settle, without slack).
  // A sampler watches bytes_used and du all the time the files are read,
  // fetches and cache writes in flight included.
  std::atomic<uint64_t> peak_used{0};
  std::atomic<uint64_t> peak_du{0};
  std::atomic<bool> stop{false};
  std::thread sampler([&] {
    while (!stop) {
      peak_used = std::max<uint64_t>(peak_used, h.stats().cache_bytes_used);
      peak_du = std::max(peak_du.load(), DuBytes(h.cache_dir));
    }
  });
  auto check_bounds = [&](int objects_made) {
    const uint64_t slack = objects_made * 8 * KiB + 4 * KiB;
    INFO("peak bytes_used " << peak_used << ", peak du " << peak_du << ", objects made " << objects_made);
    CHECK(peak_used <= kLimit + slack);
    CHECK(peak_du <= kLimit + slack);
  };
  for (int i = 0; i < 3; ++i) {
    Fill(h, files[i]);
    check_bounds(i + 1);
  }
  CHECK(h.stats().cull_objects == 0);
  Fill(h, files[0]);  // used again: files[1] is now the least recently used
  Fill(h, files[3]);  // no room for it: files[1] goes, and only it
  check_bounds(4);
  CHECK(h.stats().cull_objects == 1);
  CHECK_FALSE(PathExists(paths[1]));
  CHECK(PathExists(paths[0]));
  CHECK(PathExists(paths[2]));
  CHECK(PathExists(paths[3]));
  CHECK(test::Ranges(*files[3].cookie) == std::vector<std::pair<uint64_t, uint64_t>>{{0, MiB}});
  // And on: each new file makes room by evicting the least recently used.
  for (int i = 4; i < kN; ++i) {
    Fill(h, files[i]);
    check_bounds(i + 1);
    CHECK(PathExists(paths[i]));
    CHECK(PathExists(paths[i - 1]));
  }
  stop = true;
  sampler.join();
  CHECK(h.stats().bytes_to_cache == kN * MiB);  // every file was cached
  Settle(h);                                    // no culling pass still running: files and counters agree
  std::set<std::string> left = ObjectFiles(h.cache_dir);
  const uint64_t evicted = kN - left.size();
  CHECK(left.count(paths[kN - 1]) == 1);
  CHECK(left.count(paths[1]) == 0);
  CHECK(h.stats().cull_objects == evicted);
  CHECK(h.stats().cull_bytes >= evicted * MiB);
  CHECK(h.stats().cull_bytes <= evicted * (MiB + 8 * KiB));  // data + an xattr block at most
  CHECK(h.stats().cache_objects == ObjectFiles(h.cache_dir).size());
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  CHECK(DuBytes(h.cache_dir) <= kLimit);
  DropAll(files);
}

TEST_CASE("culler: objects in use are never evicted", "[culler]") {
  Harness h;
  constexpr uint64_t kLimit = 4 * MiB;
  h.opts.limits.cache_size = kLimit;
  std::vector<File> files = MakeFiles(h, "u", 10, MiB);
  std::vector<std::string> paths;
  for (File& f : files) paths.push_back(h.object_path(f.name));
  h.OpenCache();

  // files[0]: open (Use without Unuse). files[1]: released, while a reply to a
  // read of it is still held: its object may go, the reply's bytes stay right.
  OpenFile(h, files[0]);
  REQUIRE(Mismatch(ReadWhole(h, files[0]), files[0].data) == "");
  REQUIRE(h.WaitCached(*files[0].cookie, 0, MiB));
  Fill(h, files[1]);
  ReadReply reply;
  OpenFile(h, files[1]);
  REQUIRE(h.helper->Read(files[1].use, files[1].file, nullptr, 5 * G, 1000, &reply).ok());
  CHECK(reply.ToString() == files[1].data.substr(5 * G, 1000));
  Release(h, files[1]);

  // files[0] is the least recently used; everything else comes and goes around it.
  for (int i = 2; i < 8; ++i) Fill(h, files[i]);
  CHECK(h.stats().cull_objects >= 4);
  CHECK(PathExists(paths[0]));
  CHECK(test::Ranges(*files[0].cookie) == std::vector<std::pair<uint64_t, uint64_t>>{{0, MiB}});
  for (int i = 2; i < 5; ++i) CHECK_FALSE(PathExists(paths[i]));
  CHECK(PathExists(paths[7]));
  CHECK(reply.ToString() == files[1].data.substr(5 * G, 1000));
  // Still served from the cache.
  const uint64_t from_cache = h.stats().bytes_from_cache;
  REQUIRE(Mismatch(ReadWhole(h, files[0]), files[0].data) == "");
  CHECK(h.stats().bytes_from_cache == from_cache + MiB);

  // Let go. files[0] was in use until just now and counts as recently used.
  reply.Release();
  Release(h, files[0]);
  Fill(h, files[8]);
  Fill(h, files[9]);
  CHECK_FALSE(PathExists(paths[1]));
  CHECK(PathExists(paths[0]));
  CHECK(PathExists(paths[8]));
  CHECK(PathExists(paths[9]));
  Settle(h);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  CHECK(DuBytes(h.cache_dir) <= kLimit);
  DropAll(files);
}

TEST_CASE("culler: with nothing to evict a fetch is served but not cached; caching resumes after Unuse", "[culler]") {
  Harness h;
  constexpr uint64_t kLimit = 3 * MiB + 512 * KiB;
  h.opts.limits.cache_size = kLimit;
  std::vector<File> files = MakeFiles(h, "r", 5, MiB);
  h.OpenCache();
  for (int i = 0; i < 3; ++i) {
    OpenFile(h, files[i]);  // and kept open
    REQUIRE(Mismatch(ReadWhole(h, files[i]), files[i].data) == "");
    REQUIRE(h.WaitCached(*files[i].cookie, 0, MiB));
  }
  CHECK(h.stats().bytes_to_cache == 3 * MiB);

  // A fourth file does not fit, and everything cached is in use.
  OpenFile(h, files[3]);
  REQUIRE(Mismatch(ReadWhole(h, files[3]), files[3].data) == "");
  REQUIRE(Mismatch(ReadWhole(h, files[3]), files[3].data) == "");  // again: still from the source
  CHECK(h.stats().bytes_from_backend == 3 * MiB + 2 * MiB);
  CHECK(test::Ranges(*files[3].cookie).empty());
  CHECK_FALSE(h.cache->culler().Reserve(MiB));
  CHECK(h.cache->state() == CacheState::kActive);  // a full cache_size is not a full disk
  CHECK(h.stats().cache_errors == 0);
  // The refusals asked the culler thread for a pass; have it now, while all is
  // in use (it evicts nothing), so that none runs while they are released below.
  REQUIRE(h.cache->CullNow().ok());
  CHECK(h.stats().cull_objects == 0);
  Release(h, files[3]);

  // Released: the next fetch makes room (the least recently used goes) and is cached.
  for (int i = 0; i < 3; ++i) Release(h, files[i]);
  Fill(h, files[4]);
  CHECK(h.stats().cull_objects >= 1);
  CHECK_FALSE(PathExists(h.object_path(files[0].name)));
  CHECK(PathExists(h.object_path(files[4].name)));
  // files[3] was never written to the cache (its fetches had no reservation).
  CHECK(h.stats().bytes_to_cache == 4 * MiB);
  CHECK(test::Ranges(*files[3].cookie).empty());
  // More than the limit can ever hold is refused without evicting anything for it.
  const uint64_t culled = h.stats().cull_objects;
  CHECK_FALSE(h.cache->culler().Reserve(kLimit));
  CHECK(h.stats().cull_objects == culled);
  CHECK(PathExists(h.object_path(files[4].name)));
  Settle(h);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  CHECK(DuBytes(h.cache_dir) <= kLimit);
  DropAll(files);
}

TEST_CASE("culler: reservations all come back after a burst of concurrent reads", "[culler]") {
  Harness h;
  uint64_t limit = 0;
  SECTION("room for everything") {
    limit = 256 * MiB;
  }
  SECTION("a limit that evicts and refuses during the burst") {
    limit = 2 * MiB;
  }
  h.opts.limits.cache_size = limit;
  h.rh_opts.readahead = 512 * KiB;  // read-ahead fetches reserve too
  std::vector<File> files;
  // Sizes that end inside a granule (short, DIO-rounded last writes).
  const std::vector<size_t> sizes = {3 * G + 123, 700 * KiB + 1, 5 * G, 1 * MiB + 4097, 200 * KiB + 7, 9 * G - 1};
  for (size_t i = 0; i < sizes.size(); ++i) {
    File f;
    f.name = "b" + std::to_string(i);
    f.data = RandomBytes(sizes[i], static_cast<unsigned>(500 + i));
    test::WriteFile(h.src(f.name), f.data);
    files.push_back(std::move(f));
  }
  h.OpenCache();
  for (File& f : files) {
    f.cookie = h.Acquire(f.name);
    f.file = h.OpenFile(f.name);
  }

  constexpr int kThreads = 8;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      StreamState stream;
      for (int n = 0; n < 60; ++n) {
        File& f = files[rng() % files.size()];
        const uint64_t off = (t % 2 == 0) ? (rng() % f.data.size()) : (rng() % 4) * G;  // random; or granule starts
        const size_t len = 1 + rng() % (256 * KiB);
        UseToken u = f.cookie->Use(false);
        cache::ReadReply reply;
        Status st = h.helper->Read(u, f.file, &stream, off, len, &reply);
        if (!st.ok() || reply.ToString() != f.data.substr(off, len)) ++bad;
        reply.Release();
        h.Unuse(*f.cookie, u);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == 0);
  CHECK(h.stats().cache_errors == 0);
  // Wait for every fetch and cache write the burst started: ~ReadHelper waits for them.
  h.helper.reset();
  h.helper = std::make_unique<ReadHelper>(h.cache.get(), h.rh_opts);
  Settle(h);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  CHECK(h.stats().cache_objects == ObjectFiles(h.cache_dir).size());
  if (limit < 256 * MiB) CHECK(DuBytes(h.cache_dir) <= limit);

  // Nothing is still reserved: exactly the room left under the limit can be
  // reserved. (A leaked reservation fails every attempt; a few attempts only
  // tolerate the culler thread's own bookkeeping moving bytes_used meanwhile.)
  for (File& f : files) f.use = f.cookie->Use(false);  // nothing may be evicted by the attempts below
  bool reserved_all = false;
  for (int attempt = 0; attempt < 3 && !reserved_all; ++attempt) {
    const uint64_t room = limit - h.cache->culler().bytes_used();
    reserved_all = h.cache->culler().Reserve(room);
    if (reserved_all) {
      CHECK_FALSE(h.cache->culler().Reserve(4 * KiB));
      h.cache->culler().Unreserve(room);
    }
  }
  CHECK(reserved_all);
  for (File& f : files) Release(h, f);
  DropAll(files);
}

// ---------------------------------------------------------------------------
// (7) Counters and the forced pass

TEST_CASE("culler: a forced pass under the limits evicts nothing", "[culler]") {
  Harness h;
  SECTION("no cache_size") {
    h.opts.limits.cache_size = 0;
  }
  SECTION("a cache_size far above the use") {
    h.opts.limits.cache_size = 64 * MiB;
  }
  std::vector<File> files = MakeFiles(h, "n", 4, 5 * G);
  h.OpenCache();
  for (File& f : files) Fill(h, f);
  const std::set<std::string> before = ObjectFiles(h.cache_dir);
  REQUIRE(before.size() == 4);
  REQUIRE(h.cache->CullNow().ok());
  REQUIRE(h.cache->CullNow().ok());
  CHECK(ObjectFiles(h.cache_dir) == before);
  CHECK(h.stats().cull_objects == 0);
  CHECK(h.stats().cull_bytes == 0);
  CHECK(h.stats().cache_objects == 4);
  CHECK(h.stats().cache_bytes_used == DuBytes(h.cache_dir));
  CHECK(h.cache->state() == CacheState::kActive);
  // Still cached: read back from the cache alone.
  const uint64_t backend = h.stats().bytes_from_backend;
  for (File& f : files) {
    OpenFile(h, f);
    REQUIRE(Mismatch(ReadWhole(h, f), f.data) == "");
    Release(h, f);
  }
  CHECK(h.stats().bytes_from_backend == backend);
  DropAll(files);
}

// ---------------------------------------------------------------------------
// (6) Free-space and free-file thresholds, on a small loop-mounted ext4

TEST_CASE("culler: brun/bcull/bstop and fstop on a small filesystem", "[culler]") {
  LoopFs fs(32);
  if (!fs.ok()) {
    WARN(
        "no loop-mounted ext4 here (needs root and loop devices): thresholds are left to "
        "tests/integration/test_culling.py");
    return;
  }
  Harness h;  // after the LoopFs: the cache is closed before the unmount
  h.cache_dir = fs.path() + "/cache";
  h.opts.dir = h.cache_dir;
  const CullLimits limits = h.opts.limits;  // the defaults: 10/7/3 for blocks and files
  REQUIRE(limits.brun == 10);
  REQUIRE(limits.bcull == 7);
  REQUIRE(limits.bstop == 3);
  REQUIRE(limits.fstop == 3);
  std::vector<File> files = MakeFiles(h, "t", 9, MiB);
  std::vector<std::string> paths;
  for (File& f : files) paths.push_back(h.object_path(f.name));
  h.OpenCache();
  for (int i = 0; i < 6; ++i) Fill(h, files[i]);
  Fill(h, files[0]);  // used again: files[1] is the least recently used
  REQUIRE(fs.free_blocks_pct() > 50);

  // Below bcull (but above bstop): the culler thread evicts, oldest first, until brun.
  REQUIRE(fs.FillTo("junk-a", 5.0));
  INFO("free blocks " << fs.free_blocks_pct() << "%");
  REQUIRE(WaitUntil([&] { return fs.free_blocks_pct() >= limits.brun; }));
  // Files go before the counters move: a forced pass waits for that one to end
  // (one pass at a time) and, now that free space is above brun, evicts nothing.
  REQUIRE(h.cache->CullNow().ok());
  CHECK(h.cache->state() == CacheState::kActive);
  size_t k = 0;
  const std::vector<int> lru = {1, 2, 3, 4, 5, 0};
  while (k < lru.size() && !PathExists(paths[lru[k]])) ++k;
  for (size_t i = k; i < lru.size(); ++i) CHECK(PathExists(paths[lru[i]]));
  CHECK(k >= 1);
  CHECK(k <= 3);  // 5% of 32 MiB: two 1 MiB objects
  CHECK(h.stats().cull_objects == k);
  CHECK(fs.free_blocks_pct() < limits.brun + 5);  // it stopped at brun: the rest stays cached

  // Below bstop, with everything cached in use (culling cannot help): state
  // no-space, reads are served from the source and nothing new is cached.
  std::vector<int> held;
  for (size_t i = k; i < lru.size(); ++i) {
    held.push_back(lru[i]);
    OpenFile(h, files[lru[i]]);
  }
  REQUIRE(fs.FillTo("junk-b", 2.0));
  OpenFile(h, files[6]);
  REQUIRE(Mismatch(ReadWhole(h, files[6]), files[6].data) == "");
  CHECK(h.cache->state() == CacheState::kNoSpace);
  CHECK_FALSE(h.cache->accepting_writes());
  CHECK(test::Ranges(*files[6].cookie).empty());
  CHECK_FALSE(h.cache->culler().Reserve(G));
  CHECK(h.stats().cache_errors == 0);
  for (int i : held) CHECK(PathExists(paths[i]));  // in use: never evicted, not even now
  // Cached data is still served.
  const uint64_t from_cache = h.stats().bytes_from_cache;
  REQUIRE(Mismatch(ReadWhole(h, files[0]), files[0].data) == "");
  CHECK(h.stats().bytes_from_cache == from_cache + MiB);
  Release(h, files[6]);

  // Space comes back: the culler thread notices, caching resumes.
  REQUIRE(::unlink((fs.path() + "/junk-b").c_str()) == 0);
  REQUIRE(WaitUntil([&] { return h.cache->state() == CacheState::kActive; }));
  for (int i : held) Release(h, files[i]);
  Fill(h, files[7]);
  CHECK(h.stats().bytes_to_cache == 7 * MiB);  // files 0-5 and 7; never files[6]
  CHECK(test::Ranges(*files[6].cookie).empty());

  // Free files below fstop (empty files use up the inodes): no-space again, until they go.
  REQUIRE(::unlink((fs.path() + "/junk-a").c_str()) == 0);
  for (size_t i = k; i < lru.size(); ++i) OpenFile(h, files[lru[i]]);
  OpenFile(h, files[7]);
  std::vector<std::string> junk;
  for (int i = 0; fs.free_files_pct() >= 2.0 && i < 1000; ++i) {
    junk.push_back(fs.path() + "/inode-" + std::to_string(i));
    test::WriteFile(junk.back(), "");
  }
  REQUIRE(fs.free_files_pct() < limits.fstop);
  REQUIRE(fs.free_blocks_pct() > limits.brun);
  OpenFile(h, files[8]);
  REQUIRE(Mismatch(ReadWhole(h, files[8]), files[8].data) == "");
  CHECK(h.cache->state() == CacheState::kNoSpace);
  CHECK(test::Ranges(*files[8].cookie).empty());
  for (const auto& j : junk) ::unlink(j.c_str());
  REQUIRE(WaitUntil([&] { return h.cache->state() == CacheState::kActive; }));
  REQUIRE(Mismatch(ReadWhole(h, files[8]), files[8].data) == "");
  CHECK(h.WaitCached(*files[8].cookie, 0, MiB));
  CHECK(h.stats().cache_errors == 0);
  Release(h, files[8]);
  for (size_t i = k; i < lru.size(); ++i) Release(h, files[lru[i]]);
  Release(h, files[7]);
  DropAll(files);
}

}  // namespace cachefuse::cache
