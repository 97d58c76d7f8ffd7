// Culler: space accounting, reservations, the culling thread, reconcile after an unclean stop, eviction.
//
// Lock order: Culler::cull_mu_ -> CacheObject locks -> Culler::mu_ -> LruIndex::mu_.
// The index files are written (LruIndex::io_mu_) without Culler::mu_ held.
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
#include <optional>
#include <unordered_set>

#include "cache/cache.h"
#include "cache/layout.h"

namespace cachefuse::cache {
namespace {

uint64_t Now() {
  return static_cast<uint64_t>(::time(nullptr));
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
  LruLoadReport report;
  Status st = index_.Load(dir_fd_, &report);
  if (!st.ok()) return st;
  // CLEAN without a snapshot (removed by hand?) proves nothing: rescan.
  clean_start_ = report.clean();
  if (report.snapshot_damaged) spdlog::warn("cache index snapshot is damaged; the tree will be rescanned");
  {
    std::lock_guard lk(mu_);
    for (const auto& v : ListDir(volumes_fd_, ".")) {
      if (layout::IsHashName(v)) volumes_.push_back(v);
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
  if (!index_.is_open()) return;
  if (!persist) {
    index_.Close();
    return;
  }
  const bool compacted = index_.Compact();
  bool reconciled;
  {
    std::lock_guard lk(mu_);
    reconciled = reconciled_ || clean_start_;
  }
  // Clean only if the index described the tree and is on disk: otherwise rescan next time.
  if (reconciled && compacted) index_.MarkClean();
  index_.Close();
}

void Culler::PublishLocked() {
  cache_->stats().cache_bytes_used = index_.data_bytes() + overhead_bytes_;
  cache_->stats().cache_objects = index_.size();
}

void Culler::NoteObject(const std::string& id, uint64_t bytes, bool touch) {
  std::lock_guard lk(mu_);
  index_.Note(id, bytes, touch);
  PublishLocked();
}

void Culler::Touch(const std::string& id) {
  std::lock_guard lk(mu_);
  index_.Touch(id);
}

void Culler::Grow(const std::string& id, uint64_t bytes) {
  std::lock_guard lk(mu_);
  index_.Grow(id, bytes);
  PublishLocked();
}

void Culler::NoteRemoved(const std::string& id) {
  std::lock_guard lk(mu_);
  if (index_.Remove(id)) PublishLocked();
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
  if (limits_.cache_size > 0 && (index_.data_bytes() + overhead_bytes_ + reserved_) * 100 > limits_.cache_size * 95) {
    return true;
  }
  return forced || want_cull_;
}

bool Culler::DoneCullingLocked(const Fs& fs, uint64_t need) const {
  if (fs.free_blocks_pct < limits_.brun || fs.free_files_pct < limits_.frun) return false;
  const uint64_t used = index_.data_bytes() + overhead_bytes_ + reserved_;
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
    const bool over =
        limits_.cache_size > 0 && index_.data_bytes() + overhead_bytes_ + reserved_ + bytes > limits_.cache_size;
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
    const std::string path = layout::ObjectPathOfId(id);
    const std::string sidecar = layout::SidecarName(path);
    UniqueFd fd(::openat(volumes_fd_, path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd.valid()) {
      struct flock fl {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) return -1;  // open in another process: in use
    }
    freed = BlocksAt(volumes_fd_, path.c_str()) + BlocksAt(volumes_fd_, sidecar.c_str());
    // Out of the index before the name goes: an open that then finds it gone
    // makes a new object and notes it after this. (TryCull does the same.)
    NoteRemoved(id);
    ::unlinkat(volumes_fd_, path.c_str(), 0);
    ::unlinkat(volumes_fd_, sidecar.c_str(), 0);
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
    std::optional<std::string> oldest = index_.Oldest(busy);
    if (!oldest) break;  // everything left is in use
    const std::string victim = std::move(*oldest);
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
  for (const char* n :
       {layout::kLock, layout::kFormat, layout::kVolumesDir, layout::kGraveyardDir, layout::kIndexDir}) {
    sum += BlocksAt(dir_fd_, n);
  }
  for (const char* n : {layout::kLruSnapshot, layout::kLruLog}) sum += BlocksAt(dir_fd_, layout::IndexPath(n).c_str());
  for (const auto& v : ListDir(dir_fd_, layout::kGraveyardDir)) {
    sum += BlocksAt(dir_fd_, layout::GraveyardPath(v).c_str());
  }
  for (const auto& v : vols) {
    sum += BlocksAt(volumes_fd_, v.c_str()) + BlocksAt(volumes_fd_, layout::VolumeFilePath(v).c_str());
    for (int i = 0; i < layout::kFanoutDirs; ++i) {
      sum += BlocksAt(volumes_fd_, layout::FanoutPath(v, layout::FanoutName(i)).c_str());
    }
  }
  std::lock_guard lk(mu_);
  overhead_bytes_ = sum;
  PublishLocked();
}

void Culler::Reconcile() {
  std::vector<std::string> known = index_.Ids();
  std::vector<std::string> vols;
  {
    std::lock_guard lk(mu_);
    vols = volumes_;
  }
  for (const auto& v : ListDir(volumes_fd_, ".")) {
    if (layout::IsHashName(v) && std::find(vols.begin(), vols.end(), v) == vols.end()) {
      vols.push_back(v);
      AddVolume(v);
    }
  }
  std::unordered_set<std::string> seen;
  uint64_t adopted = 0;
  const uint64_t now = Now();
  for (const auto& v : vols) {
    for (const auto& xx : ListDir(volumes_fd_, v.c_str())) {
      if (!layout::IsFanoutName(xx)) continue;
      for (const auto& name : ListDir(volumes_fd_, layout::FanoutPath(v, xx).c_str())) {
        const std::string path = layout::FanoutEntryPath(v, xx, name);
        struct stat st {};
        if (::fstatat(volumes_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (layout::IsHashName(name)) {
          const std::string id = layout::ObjectId(v, name);
          seen.insert(id);
          uint64_t bytes =
              static_cast<uint64_t>(st.st_blocks) * 512 + BlocksAt(volumes_fd_, layout::SidecarName(path).c_str());
          std::lock_guard lk(mu_);
          // Unknown to the index (written after the last index update): adopted
          // as old, so it is among the first to go.
          if (index_.Adopt(id, bytes, static_cast<uint64_t>(st.st_mtime))) ++adopted;
          continue;
        }
        const std::optional<std::string> owner = layout::SidecarOwner(name);
        if (owner &&
            ::faccessat(volumes_fd_, layout::FanoutEntryPath(v, xx, *owner).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
          continue;  // counted with its object
        }
        // Orphan side-cars, leftover temporaries (older than a minute), junk.
        if (!S_ISDIR(st.st_mode) && (owner || now - static_cast<uint64_t>(st.st_mtime) > 60)) {
          ::unlinkat(volumes_fd_, path.c_str(), 0);
        }
      }
    }
  }
  uint64_t dropped = 0;
  for (const auto& id : known) {
    if (seen.count(id)) continue;
    if (::faccessat(volumes_fd_, layout::ObjectPathOfId(id).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
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

Status Culler::CullNow() {
  bool need_reconcile;
  {
    std::lock_guard lk(mu_);
    need_reconcile = !reconciled_ && !clean_start_;
  }
  if (need_reconcile) Reconcile();
  RecountOverhead();
  CullIfNeeded(true);
  index_.PersistLog();
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
    index_.PersistLog();
    lk.lock();
  }
}

uint64_t Culler::bytes_used() const {
  std::lock_guard lk(mu_);
  return index_.data_bytes() + overhead_bytes_;
}

uint64_t Culler::objects() const {
  std::lock_guard lk(mu_);
  return index_.size();
}

bool Culler::reconciled() const {
  std::lock_guard lk(mu_);
  return reconciled_;
}

}  // namespace cachefuse::cache
