// Culler: LRU index persistence (snapshot + log), space accounting, reservations, eviction.
#include "cache/culler.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <unordered_set>

#include "cache/cache.h"
#include "common/crc32c.h"

namespace cachefuse::cache {
namespace {

// lru.log and lru.snap records: 56 bytes.
//   [0] type (1 = upsert, 2 = remove)  [1..3] 0  [4..7] CRC-32C of bytes 0..3 and 8..55
//   [8..23] volume hash  [24..39] object hash  [40..47] bytes on disk  [48..55] last use (unix s)
constexpr size_t kRecordSize = 56;
constexpr uint8_t kUpsert = 1;
constexpr uint8_t kRemove = 2;
// lru.snap: "CFIX" u8 version, 3 x 0, u64 count, count records, u32 CRC-32C of all before.
constexpr uint32_t kSnapMagic = 0x58494643;  // "CFIX"
constexpr uint8_t kIndexVersion = 1;

uint64_t Now() {
  return static_cast<uint64_t>(::time(nullptr));
}

void PutLe(char* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint64_t GetLe(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool IsHexName(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return HexVal(c) >= 0; });
}

bool HexToBytes(const std::string& hex, char* out) {
  if (!IsHexName(hex, 32)) return false;
  for (int i = 0; i < 16; ++i) out[i] = static_cast<char>(HexVal(hex[2 * i]) * 16 + HexVal(hex[2 * i + 1]));
  return true;
}

std::string BytesToHex(const char* p) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    auto b = static_cast<unsigned char>(p[i]);
    s[2 * i] = kDigits[b >> 4];
    s[2 * i + 1] = kDigits[b & 0xF];
  }
  return s;
}

uint32_t RecordCrc(const char* r) {
  uint32_t crc = Crc32c(std::string_view(r, 4));
  return Crc32c(std::string_view(r + 8, kRecordSize - 8), crc);
}

// Encodes one record; false if id is not "<32 hex>/<32 hex>".
bool EncodeRecord(uint8_t type, const std::string& id, uint64_t bytes, uint64_t last_use, char* r) {
  std::memset(r, 0, kRecordSize);
  if (id.size() != 65 || id[32] != '/') return false;
  r[0] = static_cast<char>(type);
  if (!HexToBytes(id.substr(0, 32), r + 8) || !HexToBytes(id.substr(33), r + 24)) return false;
  PutLe(r + 40, bytes, 8);
  PutLe(r + 48, last_use, 8);
  PutLe(r + 4, RecordCrc(r), 4);
  return true;
}

bool DecodeRecord(const char* r, uint8_t* type, std::string* id, uint64_t* bytes, uint64_t* last_use) {
  if (GetLe(r + 4, 4) != RecordCrc(r)) return false;
  *type = static_cast<uint8_t>(r[0]);
  if ((*type != kUpsert && *type != kRemove) || r[1] || r[2] || r[3]) return false;
  *id = BytesToHex(r + 8) + "/" + BytesToHex(r + 24);
  *bytes = GetLe(r + 40, 8);
  *last_use = GetLe(r + 48, 8);
  return true;
}

bool ReadAll(int fd, std::string* out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  out->assign(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::pread(fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

uint64_t BlocksAt(int dirfd, const char* name) {
  struct stat st {};
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::vector<std::string> ListDir(int dirfd, const char* name) {
  std::vector<std::string> out;
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return out;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return out;
  }
  while (struct dirent* de = ::readdir(d)) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) out.emplace_back(de->d_name);
  }
  ::closedir(d);
  return out;
}

}  // namespace

Culler::Culler(Cache* cache, int cache_dir_fd, int volumes_fd, CullLimits limits)
    : cache_(cache), dir_fd_(cache_dir_fd), volumes_fd_(volumes_fd), limits_(limits) {}

Culler::~Culler() {
  Stop();
}

Status Culler::Load() {
  index_fd_.reset(::openat(dir_fd_, "index", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!index_fd_.valid()) return ErrnoStatus("cannot open the cache's index dir");
  clean_start_ = ::unlinkat(index_fd_.get(), "CLEAN", 0) == 0;

  struct Loaded {
    uint64_t bytes;
    uint64_t last_use;
    uint64_t seq;  // first appearance: the snapshot is in LRU order, last_use only has seconds
  };
  std::unordered_map<std::string, Loaded> loaded;
  uint64_t seq = 0;
  {
    UniqueFd snap(::openat(index_fd_.get(), "lru.snap", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    // CLEAN without a snapshot (removed by hand?) proves nothing: rescan.
    if (!snap.valid()) clean_start_ = false;
    std::string data;
    if (snap.valid() && ReadAll(snap.get(), &data)) {
      bool ok =
          data.size() >= 20 && GetLe(data.data(), 4) == kSnapMagic && static_cast<uint8_t>(data[4]) == kIndexVersion;
      uint64_t count = ok ? GetLe(data.data() + 8, 8) : 0;
      ok = ok && data.size() == 16 + count * kRecordSize + 4 &&
           GetLe(data.data() + data.size() - 4, 4) == Crc32c(std::string_view(data.data(), data.size() - 4));
      for (uint64_t i = 0; ok && i < count; ++i) {
        uint8_t type = 0;
        std::string id;
        uint64_t bytes = 0;
        uint64_t last_use = 0;
        if (!DecodeRecord(data.data() + 16 + i * kRecordSize, &type, &id, &bytes, &last_use) || type != kUpsert) {
          ok = false;
          break;
        }
        loaded[id] = {bytes, last_use, seq++};
      }
      if (!ok) {
        spdlog::warn("cache index snapshot is damaged; the tree will be rescanned");
        loaded.clear();
        clean_start_ = false;
      }
    }
  }
  log_fd_.reset(::openat(index_fd_.get(), "lru.log", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!log_fd_.valid()) return ErrnoStatus("cannot open the cache's index log");
  std::string log;
  if (ReadAll(log_fd_.get(), &log)) {
    size_t pos = 0;
    for (; pos + kRecordSize <= log.size(); pos += kRecordSize) {
      uint8_t type = 0;
      std::string id;
      uint64_t bytes = 0;
      uint64_t last_use = 0;
      if (!DecodeRecord(log.data() + pos, &type, &id, &bytes, &last_use)) break;
      if (type == kUpsert) {
        auto it = loaded.find(id);
        loaded[id] = {bytes, last_use, it != loaded.end() ? it->second.seq : seq++};
      } else {
        loaded.erase(id);
      }
      ++log_records_;
    }
    if (pos != log.size()) {
      // A torn tail (the daemon died mid-append): keep what is whole.
      if (::ftruncate(log_fd_.get(), static_cast<off_t>(pos)) != 0) return ErrnoStatus("truncate index log");
      clean_start_ = false;
    }
  }
  ::lseek(log_fd_.get(), 0, SEEK_END);

  std::vector<std::pair<std::string, Loaded>> ordered(loaded.begin(), loaded.end());
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.second.last_use != b.second.last_use ? a.second.last_use < b.second.last_use : a.second.seq < b.second.seq;
  });
  {
    std::lock_guard lk(mu_);
    for (auto& [id, l] : ordered) {
      lru_.push_back(id);
      entries_[id] = Entry{l.bytes, l.last_use, std::prev(lru_.end())};
      data_bytes_ += l.bytes;
    }
    for (const auto& v : ListDir(volumes_fd_, ".")) {
      if (IsHexName(v, 32)) volumes_.push_back(v);
    }
  }
  RecountOverhead();
  std::lock_guard lk(mu_);
  PublishLocked();
  return Status::Ok();
}

void Culler::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Culler::Stop(bool persist) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (!index_fd_.valid()) return;
  if (!persist) {
    index_fd_.reset();
    return;
  }
  const bool compacted = Compact();
  bool reconciled;
  {
    std::lock_guard lk(mu_);
    reconciled = reconciled_ || clean_start_;
  }
  // Clean only if the index described the tree and is on disk: otherwise rescan next time.
  if (reconciled && compacted) {
    UniqueFd clean(::openat(index_fd_.get(), "CLEAN", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (clean.valid()) ::fsync(clean.get());
  }
  index_fd_.reset();
}

void Culler::PublishLocked() {
  cache_->stats().cache_bytes_used = data_bytes_ + overhead_bytes_;
  cache_->stats().cache_objects = entries_.size();
}

void Culler::MarkDirtyLocked(const std::string& id) {
  dirty_[id] = entries_.count(id) > 0;
}

void Culler::TouchLocked(const std::string& id, bool dirty) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  lru_.splice(lru_.end(), lru_, it->second.lru);
  uint64_t now = Now();
  if (it->second.last_use != now) {
    it->second.last_use = now;
    dirty = true;
  }
  if (dirty) MarkDirtyLocked(id);
}

void Culler::NoteObject(const std::string& id, uint64_t bytes, bool touch) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    lru_.push_back(id);
    it = entries_.emplace(id, Entry{0, Now(), std::prev(lru_.end())}).first;
    MarkDirtyLocked(id);
  }
  if (it->second.bytes != bytes) {
    data_bytes_ = data_bytes_ - it->second.bytes + bytes;
    it->second.bytes = bytes;
    MarkDirtyLocked(id);
  }
  if (touch) TouchLocked(id, false);
  PublishLocked();
}

void Culler::Touch(const std::string& id) {
  std::lock_guard lk(mu_);
  TouchLocked(id, false);
}

void Culler::Grow(const std::string& id, uint64_t bytes) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.bytes += bytes;
  data_bytes_ += bytes;
  PublishLocked();
}

void Culler::NoteRemoved(const std::string& id) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  data_bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
  dirty_[id] = false;
  PublishLocked();
}

void Culler::AddVolume(const std::string& name) {
  std::lock_guard lk(mu_);
  if (std::find(volumes_.begin(), volumes_.end(), name) == volumes_.end()) volumes_.push_back(name);
}

Culler::Fs Culler::StatFs() const {
  Fs fs;
  struct statvfs v {};
  if (::fstatvfs(dir_fd_, &v) != 0 || v.f_blocks == 0) return fs;
  uint64_t reserved;
  {
    std::lock_guard lk(mu_);
    reserved = reserved_;
  }
  double free_bytes = static_cast<double>(v.f_bavail) * v.f_frsize - static_cast<double>(reserved);
  fs.free_blocks_pct = 100.0 * std::max(0.0, free_bytes) / (static_cast<double>(v.f_blocks) * v.f_frsize);
  if (v.f_files > 0) fs.free_files_pct = 100.0 * static_cast<double>(v.f_favail) / static_cast<double>(v.f_files);
  return fs;
}

bool Culler::NeedCullLocked(const Fs& fs, bool forced) const {
  if (fs.free_blocks_pct < limits_.bcull || fs.free_files_pct < limits_.fcull) return true;
  if (limits_.cache_size > 0 && (data_bytes_ + overhead_bytes_ + reserved_) * 100 > limits_.cache_size * 95) {
    return true;
  }
  return forced || want_cull_;
}

bool Culler::DoneCullingLocked(const Fs& fs, uint64_t need) const {
  if (fs.free_blocks_pct < limits_.brun || fs.free_files_pct < limits_.frun) return false;
  const uint64_t used = data_bytes_ + overhead_bytes_ + reserved_;
  return limits_.cache_size == 0 || (used * 100 <= limits_.cache_size * 85 && used + need <= limits_.cache_size);
}

void Culler::UpdateStateLocked(const Fs& fs) {
  Stats& stats = cache_->stats();
  CacheState cur = stats.state.load();
  if (cur == CacheState::kDead) return;
  bool no_space = fs.free_blocks_pct < limits_.bstop || fs.free_files_pct < limits_.fstop;
  CacheState want = no_space ? CacheState::kNoSpace : CacheState::kActive;
  if (want != cur && stats.state.compare_exchange_strong(cur, want)) {
    if (no_space) {
      spdlog::warn("cache {}: free space below bstop/fstop: not caching new data until culling frees space",
                   cache_->dir());
    } else {
      spdlog::info("cache {}: space is back, caching resumes", cache_->dir());
    }
  }
}

bool Culler::Reserve(uint64_t bytes) {
  for (int attempt = 0;; ++attempt) {
    Fs fs = StatFs();
    std::unique_lock lk(mu_);
    UpdateStateLocked(fs);
    const bool no_space = cache_->state() != CacheState::kActive;
    const bool over = limits_.cache_size > 0 && data_bytes_ + overhead_bytes_ + reserved_ + bytes > limits_.cache_size;
    if (!no_space && !over) {
      reserved_ += bytes;  // checked and taken under one lock: concurrent fetches cannot overshoot
      if (NeedCullLocked(fs, false)) {
        want_cull_ = true;
        cv_.notify_all();
      }
      return true;
    }
    // No eviction can make room for more than cache_size less the overhead.
    const bool never_fits = limits_.cache_size > 0 && overhead_bytes_ + bytes > limits_.cache_size;
    if (attempt > 0 || cache_->state() == CacheState::kDead || never_fits) {
      want_cull_ = true;
      cv_.notify_all();
      return false;
    }
    // Full: make room now rather than leave this data uncached (unlinks are cheap).
    lk.unlock();
    CullIfNeeded(true, bytes);
  }
}

void Culler::RequestCull() {
  std::lock_guard lk(mu_);
  want_cull_ = true;
  cv_.notify_all();
}

void Culler::Unreserve(uint64_t bytes) {
  std::lock_guard lk(mu_);
  reserved_ -= std::min(reserved_, bytes);
}

int64_t Culler::Evict(const std::string& id) {
  // An object this daemon has open is culled by itself, if nobody uses it.
  uint64_t freed = 0;
  int r = cache_->TryCullOpen(id, &freed);
  if (r == 0) return -1;  // in use
  if (r < 0) {
    // Not open here: lock it (OFD), so nobody opens it meanwhile, and remove it.
    const std::string vol = id.substr(0, 32);
    const std::string obj = id.substr(33);
    const std::string path = vol + "/" + obj.substr(0, 2) + "/" + obj;
    UniqueFd fd(::openat(volumes_fd_, path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd.valid()) {
      struct flock fl {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) return -1;  // open in another process: in use
    }
    freed = BlocksAt(volumes_fd_, path.c_str()) + BlocksAt(volumes_fd_, (path + ".map").c_str());
    // Out of the index before the name goes: an open that then finds it gone
    // makes a new object and notes it after this. (TryCull does the same.)
    NoteRemoved(id);
    ::unlinkat(volumes_fd_, path.c_str(), 0);
    ::unlinkat(volumes_fd_, (path + ".map").c_str(), 0);
  }
  return static_cast<int64_t>(freed);
}

uint64_t Culler::CullIfNeeded(bool forced, uint64_t need) {
  std::lock_guard pass(cull_mu_);
  Fs fs = StatFs();
  std::unique_lock lk(mu_);
  UpdateStateLocked(fs);
  if (!NeedCullLocked(fs, forced)) {
    want_cull_ = false;
    return 0;
  }
  uint64_t total = 0;
  std::unordered_set<std::string> busy;
  while (!DoneCullingLocked(fs, need)) {
    std::string victim;
    for (const auto& id : lru_) {
      if (!busy.count(id)) {
        victim = id;
        break;
      }
    }
    if (victim.empty()) break;  // everything left is in use
    lk.unlock();
    int64_t freed = Evict(victim);
    fs = StatFs();
    lk.lock();
    if (freed < 0) {
      busy.insert(victim);
      continue;
    }
    cache_->stats().cull_objects++;
    cache_->stats().cull_bytes += static_cast<uint64_t>(freed);
    total += static_cast<uint64_t>(freed);
  }
  want_cull_ = false;
  UpdateStateLocked(fs);
  if (total > 0) spdlog::debug("cull: freed {} bytes, {} objects in use skipped", total, busy.size());
  return total;
}

void Culler::RecountOverhead() {
  std::vector<std::string> vols;
  {
    std::lock_guard lk(mu_);
    vols = volumes_;
  }
  uint64_t sum = BlocksAt(dir_fd_, ".");
  for (const char* n : {"LOCK", "FORMAT", "volumes", "graveyard", "index", "index/lru.snap", "index/lru.log"}) {
    sum += BlocksAt(dir_fd_, n);
  }
  for (const auto& v : ListDir(dir_fd_, "graveyard")) sum += BlocksAt(dir_fd_, ("graveyard/" + v).c_str());
  char xx[3];
  for (const auto& v : vols) {
    sum += BlocksAt(volumes_fd_, v.c_str()) + BlocksAt(volumes_fd_, (v + "/VOLUME").c_str());
    for (int i = 0; i < 256; ++i) {
      std::snprintf(xx, sizeof xx, "%02x", i);
      sum += BlocksAt(volumes_fd_, (v + "/" + xx).c_str());
    }
  }
  std::lock_guard lk(mu_);
  overhead_bytes_ = sum;
  PublishLocked();
}

void Culler::Reconcile() {
  std::unordered_set<std::string> known;
  std::vector<std::string> vols;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, e] : entries_) known.insert(id);
    vols = volumes_;
  }
  for (const auto& v : ListDir(volumes_fd_, ".")) {
    if (IsHexName(v, 32) && std::find(vols.begin(), vols.end(), v) == vols.end()) {
      vols.push_back(v);
      AddVolume(v);
    }
  }
  std::unordered_set<std::string> seen;
  uint64_t adopted = 0;
  const uint64_t now = Now();
  for (const auto& v : vols) {
    for (const auto& xx : ListDir(volumes_fd_, v.c_str())) {
      if (!IsHexName(xx, 2)) continue;
      const std::string dir = v + "/" + xx;
      for (const auto& name : ListDir(volumes_fd_, dir.c_str())) {
        const std::string path = dir + "/" + name;
        struct stat st {};
        if (::fstatat(volumes_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (IsHexName(name, 32)) {
          const std::string id = v + "/" + name;
          seen.insert(id);
          uint64_t bytes = static_cast<uint64_t>(st.st_blocks) * 512 + BlocksAt(volumes_fd_, (path + ".map").c_str());
          std::lock_guard lk(mu_);
          auto it = entries_.find(id);
          if (it == entries_.end()) {
            // Unknown to the index (written after the last index update): adopt it
            // as old, so it is among the first to go.
            lru_.push_front(id);
            entries_[id] = Entry{bytes, static_cast<uint64_t>(st.st_mtime), lru_.begin()};
            data_bytes_ += bytes;
            MarkDirtyLocked(id);
            ++adopted;
          } else if (it->second.bytes != bytes) {
            data_bytes_ = data_bytes_ - it->second.bytes + bytes;
            it->second.bytes = bytes;
            MarkDirtyLocked(id);
          }
          continue;
        }
        const bool sidecar = name.size() == 36 && IsHexName(name.substr(0, 32), 32) && name.substr(32) == ".map";
        if (sidecar &&
            ::faccessat(volumes_fd_, path.substr(0, path.size() - 4).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
          continue;  // counted with its object
        }
        // Orphan side-cars, leftover temporaries (older than a minute), junk.
        if (!S_ISDIR(st.st_mode) && (sidecar || now - static_cast<uint64_t>(st.st_mtime) > 60)) {
          ::unlinkat(volumes_fd_, path.c_str(), 0);
        }
      }
    }
  }
  uint64_t dropped = 0;
  for (const auto& id : known) {
    if (seen.count(id)) continue;
    const std::string path = id.substr(0, 32) + "/" + id.substr(33, 2) + "/" + id.substr(33);
    if (::faccessat(volumes_fd_, path.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
      NoteRemoved(id);
      ++dropped;
    }
  }
  RecountOverhead();
  std::lock_guard lk(mu_);
  reconciled_ = true;
  PublishLocked();
  spdlog::info("cache {}: index reconciled with the tree: {} objects adopted, {} entries dropped", cache_->dir(),
               adopted, dropped);
}

void Culler::PersistLog() {
  std::string buf;
  {
    std::lock_guard lk(mu_);
    if (dirty_.empty() || !log_fd_.valid()) return;
    buf.resize(dirty_.size() * kRecordSize);
    size_t n = 0;
    for (const auto& [id, present] : dirty_) {
      auto it = entries_.find(id);
      bool ok = present && it != entries_.end()
                    ? EncodeRecord(kUpsert, id, it->second.bytes, it->second.last_use, buf.data() + n * kRecordSize)
                    : EncodeRecord(kRemove, id, 0, 0, buf.data() + n * kRecordSize);
      if (ok) ++n;
    }
    buf.resize(n * kRecordSize);
    dirty_.clear();
    log_records_ += n;
  }
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t w = ::write(log_fd_.get(), buf.data() + done, buf.size() - done);
    if (w <= 0) {
      spdlog::warn("cannot append to the cache index log: {}", std::strerror(errno));
      return;
    }
    done += static_cast<size_t>(w);
  }
  bool compact;
  {
    std::lock_guard lk(mu_);
    compact = log_records_ > 2 * entries_.size() + 4096;
  }
  if (compact) Compact();
}

bool Culler::Compact() {
  PersistLog();  // nothing dirty left behind in memory
  std::string snap(16, '\0');
  {
    std::lock_guard lk(mu_);
    PutLe(snap.data(), kSnapMagic, 4);
    snap[4] = static_cast<char>(kIndexVersion);
    PutLe(snap.data() + 8, entries_.size(), 8);
    snap.resize(16 + entries_.size() * kRecordSize);
    size_t n = 0;
    for (const auto& id : lru_) {
      const Entry& e = entries_.at(id);
      if (EncodeRecord(kUpsert, id, e.bytes, e.last_use, snap.data() + 16 + n * kRecordSize)) ++n;
    }
    snap.resize(16 + n * kRecordSize);
    PutLe(snap.data() + 8, n, 8);
  }
  char crc[4];
  PutLe(crc, Crc32c(snap), 4);
  snap.append(crc, 4);
  UniqueFd tmp(::openat(index_fd_.get(), "lru.snap.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  bool ok = tmp.valid() && ::write(tmp.get(), snap.data(), snap.size()) == static_cast<ssize_t>(snap.size()) &&
            ::fsync(tmp.get()) == 0 && ::renameat(index_fd_.get(), "lru.snap.tmp", index_fd_.get(), "lru.snap") == 0;
  if (!ok) {
    spdlog::warn("cannot write the cache index snapshot: {}", std::strerror(errno));
    return false;
  }
  // The log restarts empty; a crash before this point replays old records over
  // the new snapshot, which the reconcile after an unclean stop puts right.
  if (::ftruncate(log_fd_.get(), 0) != 0) return false;
  ::lseek(log_fd_.get(), 0, SEEK_SET);
  std::lock_guard lk(mu_);
  log_records_ = 0;
  return true;
}

Status Culler::CullNow() {
  bool need_reconcile;
  {
    std::lock_guard lk(mu_);
    need_reconcile = !reconciled_ && !clean_start_;
  }
  if (need_reconcile) Reconcile();
  RecountOverhead();
  CullIfNeeded(true);
  PersistLog();
  return Status::Ok();
}

void Culler::Loop() {
  if (!clean_start_) Reconcile();
  {
    std::lock_guard lk(mu_);
    reconciled_ = true;
  }
  auto last_recount = std::chrono::steady_clock::now();
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, std::chrono::milliseconds(250), [&] { return stopping_ || want_cull_; });
    if (stopping_) break;
    lk.unlock();
    auto now = std::chrono::steady_clock::now();
    if (now - last_recount >= std::chrono::seconds(2)) {
      RecountOverhead();
      last_recount = now;
    }
    CullIfNeeded(false);
    PersistLog();
    lk.lock();
  }
}

uint64_t Culler::bytes_used() const {
  std::lock_guard lk(mu_);
  return data_bytes_ + overhead_bytes_;
}

uint64_t Culler::objects() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

bool Culler::reconciled() const {
  std::lock_guard lk(mu_);
  return reconciled_;
}

}  // namespace cachefuse::cache
