// Helpers for the cache core's unit tests: a cache + local source harness (read
// through FakeFetcher, as the daemon reads through its backend), engines that
// hold or drop I/O on purpose, and small waiting and xattr utilities. Nothing
// here depends on netfs_backends/: cache_unit_tests links cf_cache only.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cache/aux_xattr.h"
#include "cache/cache.h"
#include "cache/cookie.h"
#include "cache/io_engine.h"
#include "cache/read_helper.h"
#include "cache/volume.h"
#include "common/hash.h"
#include "fake_fetcher.h"
#include "test_util.h"

namespace cachefuse::test {

// Polls pred until it holds or `limit` passes; a hang detector, never a timing assertion.
inline bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// "" when a == b, else a short description of the first difference (no bytes
// printed: test data is binary). Use as CHECK(Mismatch(a, b) == "").
inline std::string Mismatch(const std::string& a, const std::string& b) {
  if (a == b) return "";
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) + ", first difference at " +
         std::to_string(i);
}

// Where a cookie's backing file lives (DESIGN.md section 4).
inline std::string ObjectPath(const std::string& cache_dir, const std::string& volume_key,
                              const std::string& cookie_key) {
  std::string name = ToHex(HashBytes(cookie_key));
  return cache_dir + "/volumes/" + ToHex(HashBytes(volume_key)) + "/" + name.substr(0, 2) + "/" + name;
}

inline bool PathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline std::optional<std::string> GetXattr(const std::string& path, const char* name) {
  std::string buf(65536, '\0');
  ssize_t n = ::lgetxattr(path.c_str(), name, buf.data(), buf.size());
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

inline bool SetXattr(const std::string& path, const char* name, const std::string& value) {
  return ::lsetxattr(path.c_str(), name, value.data(), value.size(), 0) == 0;
}

inline std::optional<cache::AuxData> ReadAux(const std::string& path) {
  auto raw = GetXattr(path, cache::kAuxXattr);
  if (!raw) return std::nullopt;
  return cache::DecodeAux(*raw);
}

// Number of entries in a directory besides . and .. (0 if it cannot be read).
inline size_t CountEntries(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

// Overwrites bytes of a file (created if absent).
inline void PatchFile(const std::string& path, uint64_t off, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + path);
  bool ok = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(data.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("pwrite " + path);
}

// Overwrites bytes of a file in place (same inode) and makes sure its token
// moved: file times may be coarser than the gap between two writes, so the
// write is repeated until they differ. Returns the new token.
inline std::string ChangeInPlace(const std::string& path, uint64_t off, const std::string& data) {
  const std::string before = PathToken(path);
  for (;;) {
    PatchFile(path, off, data);
    std::string now = PathToken(path);
    if (now != before) return now;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Creates a sparse file of `size` bytes, then writes each (offset, bytes) piece.
inline void MakeSparseFile(const std::string& path, uint64_t size,
                           const std::vector<std::pair<uint64_t, std::string>>& pieces = {}) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) throw std::runtime_error("truncate " + path);
  ::close(fd);
  for (const auto& [off, data] : pieces) PatchFile(path, off, data);
}

// Reads [off, off+len) of a file with pread (short at EOF).
inline std::string PreadFile(const std::string& path, uint64_t off, size_t len) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  std::string out(len, '\0');
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, out.data() + done, len - done, static_cast<off_t>(off + done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

// An IoEngine wrapper that can hold writes until the test lets them go, and can
// drop writes (reporting success) and fail syncs, as a disk that loses unsynced
// data would. Shutdown lets held writes go first.
class TestEngine final : public cache::IoEngine {
 public:
  explicit TestEngine(std::unique_ptr<cache::IoEngine> inner) : inner_(std::move(inner)) {}
  ~TestEngine() override { Shutdown(); }

  const char* name() const override { return inner_->name(); }
  bool direct() const override { return inner_->direct(); }
  void Read(int fd, uint64_t off, void* buf, size_t len, int buf_index, cache::IoCompletion* done) override {
    inner_->Read(fd, off, buf, len, buf_index, done);
  }
  void Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index, cache::IoCompletion* done) override;
  void Fdatasync(int fd, cache::IoCompletion* done) override;
  bool RegisterBuffers(const std::vector<struct iovec>& bufs) override { return inner_->RegisterBuffers(bufs); }
  void Shutdown() override;

  // Holds every write from now on (they are in flight for the cache, not done).
  void HoldWrites();
  // Submits the held writes (last held first when reverse) and stops holding.
  void ReleaseWrites(bool reverse = false);
  // Waits until at least n writes are held.
  bool WaitHeld(size_t n);
  size_t held();
  // Writes complete with their full length but never reach the file; syncs fail with EIO.
  void set_lose_unsynced(bool on) {
    std::lock_guard lk(mu_);
    lose_ = on;
  }
  uint64_t writes_dropped() {
    std::lock_guard lk(mu_);
    return dropped_;
  }

 private:
  struct Held {
    int fd;
    uint64_t off;
    const void* buf;
    size_t len;
    int buf_index;
    cache::IoCompletion* done;
  };
  std::unique_ptr<cache::IoEngine> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  bool lose_ = false;
  uint64_t dropped_ = 0;
  std::deque<Held> held_;
};

// What the harness's source says about a file, as a backend's stat would:
// the cookie key (identity), the coherency token and the size.
struct SourceAttr {
  std::string identity;  // "i<inode>", as the posix source names files
  std::string token;     // TokenOfStat
  uint64_t size = 0;
};

// A cache dir and a source dir in one TempDir, with the cache, the volume of
// the source and a ReadHelper. Files of the source are read through
// FakeFetchers (OpenFile) that share the harness's fault plan and counters
// and check versions by default, as a source that can tell does. Tests must
// drop their cookies, uses and replies before CloseCache/destruction.
class Harness {
 public:
  Harness();
  ~Harness();

  std::string src(const std::string& name) const { return src_dir + "/" + name; }
  std::string volume_key() const { return "fake:" + src_dir; }
  std::string object_path(const std::string& name) const;

  // Opens (or reopens) the cache with `opts`, the volume and a ReadHelper.
  void OpenCache();
  // Closes the cache (its engine stops), lets go of the helper and the volume,
  // and destroys the cache.
  void CloseCache();
  // The faults of the fetchers opened from now on (FaultBackend's role).
  void UseFaults(const FetchPlan& p) { plan = p; }

  SourceAttr Stat(const std::string& name) const;
  cache::CookieRef Acquire(const std::string& name);
  // A fetcher of the source file (one open file of the source), with the
  // harness's plan and counters; it checks versions unless check_versions is off.
  FakeFetcherRef OpenFile(const std::string& name);
  // Reads through the ReadHelper; the bytes, or throws on error unless st is given.
  std::string Read(const cache::UseToken& use, const cache::FetcherRef& file, uint64_t off, size_t len,
                   cache::StreamState* stream = nullptr, Status* st = nullptr);
  // The release of an open, as the daemon does it: Unuse with the cookie's
  // aux and size, then ReadHelper::Release.
  void Unuse(cache::Cookie& cookie, const cache::UseToken& use);
  // The same with the netfs's latest aux and size.
  void Unuse(cache::Cookie& cookie, const cache::UseToken& use, const std::string& aux, uint64_t size);
  // Waits until the cookie's cached ranges cover [off, off+len).
  bool WaitCached(cache::Cookie& cookie, uint64_t off, uint64_t len);
  cache::Stats& stats() { return cache->stats(); }

  TempDir root;
  std::string cache_dir;
  std::string src_dir;
  cache::CacheOptions opts;
  cache::ReadHelperOptions rh_opts;
  std::unique_ptr<cache::Cache> cache;
  std::shared_ptr<cache::Volume> volume;
  std::unique_ptr<cache::ReadHelper> helper;
  FetchPlan plan;                                                              // for fetchers opened from now on
  bool check_versions = true;                                                  // for fetchers opened from now on
  std::shared_ptr<FetchCounters> fetches = std::make_shared<FetchCounters>();  // of every fetcher it opened
};

// The byte ranges a cookie's cache holds, as pairs for comparisons.
std::vector<std::pair<uint64_t, uint64_t>> Ranges(cache::Cookie& cookie);

// --- TestEngine

inline void TestEngine::Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index,
                              cache::IoCompletion* done) {
  bool lose = false;
  {
    std::lock_guard lk(mu_);
    if (hold_) {
      held_.push_back({fd, off, buf, len, buf_index, done});
      cv_.notify_all();
      return;
    }
    lose = lose_;
    if (lose) ++dropped_;
  }
  if (lose) {
    done->OnIoComplete(static_cast<ssize_t>(len));
    return;
  }
  inner_->Write(fd, off, buf, len, buf_index, done);
}

inline void TestEngine::Fdatasync(int fd, cache::IoCompletion* done) {
  bool lose = false;
  {
    std::lock_guard lk(mu_);
    lose = lose_;
  }
  if (lose) {
    done->OnIoComplete(-EIO);
    return;
  }
  inner_->Fdatasync(fd, done);
}

inline void TestEngine::HoldWrites() {
  std::lock_guard lk(mu_);
  hold_ = true;
}

inline void TestEngine::ReleaseWrites(bool reverse) {
  std::deque<Held> go;
  {
    std::lock_guard lk(mu_);
    hold_ = false;
    go.swap(held_);
  }
  if (reverse) std::reverse(go.begin(), go.end());
  // One at a time, in order: each completes before the next is submitted.
  for (const Held& h : go) {
    cache::WaitableCompletion c;
    inner_->Write(h.fd, h.off, h.buf, h.len, h.buf_index, &c);
    h.done->OnIoComplete(c.Wait());
  }
}

inline bool TestEngine::WaitHeld(size_t n) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, std::chrono::seconds(20), [&] { return held_.size() >= n; });
}

inline size_t TestEngine::held() {
  std::lock_guard lk(mu_);
  return held_.size();
}

inline void TestEngine::Shutdown() {
  ReleaseWrites();
  inner_->Shutdown();
}

// --- Harness

inline Harness::Harness() : cache_dir(root / "cache"), src_dir(root / "src") {
  std::filesystem::create_directories(src_dir);
  opts.dir = cache_dir;
  opts.granule = 64 * 1024;
  opts.max_inflight = 16ULL << 20;
  rh_opts.readahead = 0;
}

inline Harness::~Harness() {
  CloseCache();
}

inline std::string Harness::object_path(const std::string& name) const {
  return ObjectPath(cache_dir, volume_key(), Stat(name).identity);
}

inline void Harness::OpenCache() {
  auto c = cache::Cache::Open(opts);
  if (!c.ok()) throw std::runtime_error("Cache::Open: " + c.status().ToString());
  cache = std::move(c.value());
  auto v = cache->AcquireVolume(volume_key());
  if (!v.ok()) throw std::runtime_error("AcquireVolume: " + v.status().ToString());
  volume = v.value();
  helper = std::make_unique<cache::ReadHelper>(cache.get(), rh_opts);
}

inline void Harness::CloseCache() {
  if (cache) cache->Close();
  helper.reset();
  volume.reset();
  cache.reset();
}

inline SourceAttr Harness::Stat(const std::string& name) const {
  struct stat st {};
  if (::stat(src(name).c_str(), &st) != 0) throw std::runtime_error("stat " + name);
  return SourceAttr{"i" + std::to_string(st.st_ino), TokenOfStat(st), static_cast<uint64_t>(st.st_size)};
}

inline cache::CookieRef Harness::Acquire(const std::string& name) {
  SourceAttr a = Stat(name);
  return volume->Acquire(a.identity, a.token, a.size);
}

inline FakeFetcherRef Harness::OpenFile(const std::string& name) {
  auto f = std::make_shared<FakeFetcher>(src(name), plan, fetches);
  if (check_versions) f->CheckVersions();
  return f;
}

inline std::string Harness::Read(const cache::UseToken& use, const cache::FetcherRef& file, uint64_t off, size_t len,
                                 cache::StreamState* stream, Status* st) {
  cache::ReadReply reply;
  Status s = helper->Read(use, file, stream, off, len, &reply);
  if (st) *st = s;
  if (!s.ok()) {
    if (!st) throw std::runtime_error("read: " + s.ToString());
    return {};
  }
  return reply.ToString();
}

inline void Harness::Unuse(cache::Cookie& cookie, const cache::UseToken& use) {
  Unuse(cookie, use, cookie.aux(), cookie.size());
}

inline void Harness::Unuse(cache::Cookie& cookie, const cache::UseToken& use, const std::string& aux, uint64_t size) {
  cookie.Unuse(use, aux, size);
  if (helper) helper->Release(use);
}

inline bool Harness::WaitCached(cache::Cookie& cookie, uint64_t off, uint64_t len) {
  return WaitUntil([&] {
    for (const auto& r : cookie.CachedRanges()) {
      if (r.start <= off && r.end >= off + len) return true;
    }
    return len == 0;
  });
}

inline std::vector<std::pair<uint64_t, uint64_t>> Ranges(cache::Cookie& cookie) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& r : cookie.CachedRanges()) out.emplace_back(r.start, r.end);
  return out;
}

}  // namespace cachefuse::test
