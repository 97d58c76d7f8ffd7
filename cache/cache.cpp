// Cache: the cache directory's lock, format, volumes, graveyard and flusher.
#include "cache/cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <vector>

#include "cache/cache_object.h"
#include "cache/fault_engine.h"
#include "cache/layout.h"
#include "cache/volume.h"
#include "common/units.h"

namespace cachefuse::cache {
namespace {

constexpr const char* kFormatName = "cachefuse-cache";
constexpr int kFormatVersionNumber = 1;

// mkdir -p: parents 0755, the last component `mode`.
Status MakeDirs(const std::string& path, mode_t mode) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    bool last = pos == std::string::npos;
    if (::mkdir(cur.c_str(), last ? mode : 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create cache dir " + cur);
    }
  }
  return Status::Ok();
}

bool ReadSmallFile(int dirfd, const char* name, std::string* out) {
  UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return false;
  char buf[512];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

Status WriteFileAtomic(int dirfd, const std::string& name, const std::string& content) {
  std::string tmp = layout::TmpName(name);
  UniqueFd fd(::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("create " + tmp);
  if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      ::fsync(fd.get()) != 0) {
    return ErrnoStatus("write " + tmp);
  }
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) return ErrnoStatus("rename " + tmp);
  return Status::Ok();
}

bool DirHasEntriesBesides(int dirfd, std::initializer_list<const char*> allowed) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return true;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return true;
  }
  bool other = false;
  while (struct dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n == "." || n == "..") continue;
    bool ok = false;
    for (const char* a : allowed) ok = ok || n == a;
    if (!ok) {
      other = true;
      break;
    }
  }
  ::closedir(d);
  return other;
}

// Removes dirfd/name, a whole directory tree included: the graveyard takes
// whatever was found at an object's name.
void RemoveTree(int dirfd, const char* name) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno != EISDIR) return;
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    if (DIR* d = ::fdopendir(fd)) {
      std::vector<std::string> names;
      while (struct dirent* de = ::readdir(d)) {
        if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) names.emplace_back(de->d_name);
      }
      for (const auto& n : names) RemoveTree(::dirfd(d), n.c_str());
      ::closedir(d);
    } else {
      ::close(fd);
    }
  }
  ::unlinkat(dirfd, name, AT_REMOVEDIR);
}

}  // namespace

Result<std::unique_ptr<Cache>> Cache::Open(const CacheOptions& options) {
  std::unique_ptr<Cache> cache(new Cache(options));
  Status st = cache->Init();
  if (!st.ok()) return st;
  return cache;
}

Status Cache::Init() {
  const std::string& dir = options_.dir;
  if (options_.granule < 4096 || (options_.granule & (options_.granule - 1)) != 0 || options_.granule > (64 << 20)) {
    return Status::Invalid("granule must be a power of two between 4 KiB and 64 MiB");
  }
  granule_shift_ = static_cast<unsigned>(__builtin_ctzll(options_.granule));
  Status st = MakeDirs(dir, 0700);
  if (!st.ok()) return st;
  dir_fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd_.valid()) return ErrnoStatus("cannot open cache dir " + dir);
  if (::faccessat(dir_fd_.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    return ErrnoStatus("cache dir " + dir + " is not writable");
  }
  const std::string lock_path = dir + "/" + layout::kLock;
  lock_fd_.reset(::openat(dir_fd_.get(), layout::kLock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock_fd_.valid()) return ErrnoStatus("cannot open " + lock_path);
  if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    std::string pid;
    ReadSmallFile(dir_fd_.get(), layout::kLock, &pid);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Status::FromErrno(EBUSY, "cache dir " + dir + " is in use by another cachefuse (pid " +
                                        (pid.empty() ? std::string("unknown") : pid) + " holds " + lock_path + ")");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_.get(), 0) != 0 || ::pwrite(lock_fd_.get(), pid.data(), pid.size(), 0) < 0) {
    return ErrnoStatus("cannot write " + lock_path);
  }
  st = CheckFormat();
  if (!st.ok()) return st;
  for (const char* sub : {layout::kVolumesDir, layout::kGraveyardDir, layout::kIndexDir}) {
    if (::mkdirat(dir_fd_.get(), sub, 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create " + dir + "/" + sub);
    }
  }
  volumes_fd_.reset(::openat(dir_fd_.get(), layout::kVolumesDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  graveyard_fd_.reset(::openat(dir_fd_.get(), layout::kGraveyardDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!volumes_fd_.valid() || !graveyard_fd_.valid()) return ErrnoStatus("cannot open " + dir + " subdirectories");

  // DIO alignment: what statx reports for this filesystem, else a safe 4 KiB.
  struct statx stx {};
  dio_align_ = 4096;
  if (::statx(dir_fd_.get(), ".", 0, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
      stx.stx_dio_offset_align > 0) {
    dio_align_ = std::max(stx.stx_dio_offset_align, stx.stx_dio_mem_align);
  }
  // Does O_DIRECT work here, and is it worth it? On a memory filesystem (tmpfs,
  // ramfs) the data lives in the page cache anyway: newer kernels accept O_DIRECT
  // there, but it saves nothing, so such a cache runs the sync engine.
  bool direct_ok = false;
  struct statfs sfs {};
  const bool in_memory =
      ::fstatfs(dir_fd_.get(), &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
  if (in_memory) {
    engine_reason_ = "the cache filesystem is in memory (tmpfs): O_DIRECT buys nothing there";
  } else {
    UniqueFd probe(::openat(dir_fd_.get(), ".", O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600));
    direct_ok = probe.valid();
    if (!probe.valid() && errno != EINVAL) {
      UniqueFd plain(::openat(dir_fd_.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
      if (!plain.valid()) return ErrnoStatus("cannot create files in cache dir " + dir + " (O_TMPFILE)");
    }
  }
  if (dio_align_ > options_.granule) return Status::Invalid("granule is smaller than the cache dir's DIO alignment");

  auto engine = MakeEngine(options_.engine, direct_ok, &stats_, &engine_reason_);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(engine.value());
  if (options_.debug_fail_cache_reads) {
    EngineFaults f;
    f.fail_reads = true;
    engine_ = std::make_unique<FaultEngine>(std::move(engine_), f);
    engine_reason_ += "; debug_cache_fail_reads: every cache read fails";
  }
  if (options_.wrap_engine) engine_ = options_.wrap_engine(std::move(engine_));
  stats_.io_engine = engine_->name();
  size_t count = std::max<uint64_t>(16, options_.max_inflight / options_.granule);
  pool_ = std::make_unique<BufferPool>(options_.granule, count, count / 4);
  engine_->RegisterBuffers(pool_->Iovecs());
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    max_open_objects_ = std::clamp<size_t>(static_cast<size_t>(rl.rlim_cur) / 4, 64, 16384);
  }
  culler_ = std::make_unique<Culler>(this, dir_fd_.get(), volumes_fd_.get(), options_.limits);
  st = culler_->Load();
  if (!st.ok()) return st;
  culler_->Start();
  flusher_ = std::thread([this] { FlusherLoop(); });
  return Status::Ok();
}

Status Cache::CheckFormat() {
  const std::string& dir = options_.dir;
  std::ostringstream want;
  want << kFormatName << "\nversion " << kFormatVersionNumber << "\ngranule " << options_.granule << "\n";
  std::string have;
  if (!ReadSmallFile(dir_fd_.get(), layout::kFormat, &have)) {
    if (DirHasEntriesBesides(dir_fd_.get(), {layout::kLock})) {
      return Status::Invalid("cache dir " + dir +
                             " is not empty and has no FORMAT file: refusing to use it (give an empty or new dir)");
    }
    return WriteFileAtomic(dir_fd_.get(), layout::kFormat, want.str());
  }
  std::istringstream in(have);
  std::string name;
  std::string word;
  int version = 0;
  uint64_t granule = 0;
  in >> name >> word >> version;
  if (name != kFormatName || word != "version") {
    return Status::Invalid("cache dir " + dir + " has a FORMAT file that is not cachefuse's");
  }
  if (version != kFormatVersionNumber) {
    return Status::Invalid("cache dir " + dir + " has format version " + std::to_string(version) +
                           "; this cachefuse uses version " + std::to_string(kFormatVersionNumber) +
                           ": remove it or use another cache_dir");
  }
  in >> word >> granule;
  if (word != "granule" || granule == 0) {
    return Status::Invalid("cache dir " + dir + " has a damaged FORMAT file");
  }
  if (granule != options_.granule) {
    return Status::Invalid("cache dir " + dir + " was made with granule=" + FormatSize(granule) +
                           "; mount with that granule or use another cache_dir");
  }
  return Status::Ok();
}

Cache::~Cache() {
  Close();
}

void Cache::Close() {
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard lk(objects_mu_);
    closing_ = true;
    flusher_cv_.notify_all();
  }
  if (flusher_.joinable()) flusher_.join();
  if (engine_) {
    if (options_.persist_on_close) FlushAll(true);
    engine_->Shutdown();
    if (options_.persist_on_close) FlushAll(true);
  }
  if (culler_) culler_->Stop(options_.persist_on_close);
  std::lock_guard lk(objects_mu_);
  if (!objects_.empty()) spdlog::debug("cache close: {} objects still busy", objects_.size());
}

Result<std::shared_ptr<Volume>> Cache::AcquireVolume(const std::string& key) {
  std::lock_guard lk(volumes_mu_);
  auto it = volumes_.find(key);
  if (it != volumes_.end()) return it->second;
  std::string name = layout::VolumeName(key);
  if (::mkdirat(volumes_fd_.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("cannot create volume dir " + name);
  }
  UniqueFd vfd(::openat(volumes_fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!vfd.valid()) return ErrnoStatus("cannot open volume dir " + name);
  std::string have;
  if (ReadSmallFile(vfd.get(), layout::kVolumeFile, &have)) {
    if (have != key + "\n") {
      return Status::Corruption("volume dir " + name + " belongs to '" + have + "', not '" + key + "'");
    }
  } else {
    Status st = WriteFileAtomic(vfd.get(), layout::kVolumeFile, key + "\n");
    if (!st.ok()) return st;
  }
  auto vol = std::make_shared<Volume>(this, key, name, std::move(vfd));
  culler_->AddVolume(name);
  volumes_[key] = vol;
  return vol;
}

void Cache::NoteError(const std::string& what) {
  uint64_t n = ++stats_.cache_errors;
  spdlog::warn("cache error ({} of {}): {}", n, options_.cache_error_limit, what);
  if (n >= options_.cache_error_limit) {
    CacheState prev = stats_.state.exchange(CacheState::kDead);
    if (prev != CacheState::kDead) {
      spdlog::error("cache {} withdrawn after {} errors; the mount goes on uncached", options_.dir, n);
    }
  }
}

void Cache::Bury(int dirfd, const std::string& name, const std::string& why) {
  std::string target;
  {
    std::lock_guard lk(grave_mu_);
    target = layout::GraveName(name, ::getpid(), ++grave_seq_);
  }
  if (::renameat(dirfd, name.c_str(), graveyard_fd_.get(), target.c_str()) != 0 && errno != ENOENT) {
    ::unlinkat(dirfd, name.c_str(), 0);
  }
  ::renameat(dirfd, layout::SidecarName(name).c_str(), graveyard_fd_.get(), layout::SidecarName(target).c_str());
  spdlog::info("object={} why=graveyard: {}", name, why);
}

void Cache::Register(const std::shared_ptr<CacheObject>& obj) {
  std::lock_guard lk(objects_mu_);
  objects_[obj.get()] = obj;
  by_id_[obj->id()] = obj;
  if (objects_.size() > max_open_objects_) {
    kicked_ = true;
    flusher_cv_.notify_all();
  }
}

void Cache::Unregister(CacheObject* obj) {
  std::lock_guard lk(objects_mu_);
  objects_.erase(obj);
}

void Cache::Kick() {
  std::lock_guard lk(objects_mu_);
  kicked_ = true;
  flusher_cv_.notify_all();
}

Status Cache::CullNow() {
  FlushAll(false);
  ReapGraveyard();
  return culler_->CullNow();
}

std::shared_ptr<CacheObject> Cache::FindOpenObject(const std::string& id) {
  std::lock_guard lk(objects_mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.lock();
}

int Cache::TryCullOpen(const std::string& id, uint64_t* freed) {
  std::shared_ptr<CacheObject> obj;
  {
    std::lock_guard lk(objects_mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) obj = it->second.lock();
  }
  if (!obj) return -1;
  return obj->TryCull(freed);
}

void Cache::FlushAll(bool closing) {
  std::lock_guard pass(flush_mu_);
  std::vector<std::shared_ptr<CacheObject>> objs;
  {
    std::lock_guard lk(objects_mu_);
    objs.reserve(objects_.size());
    for (auto& [p, ref] : objects_) objs.push_back(ref);
  }
  // Too many backing files open: close the unused ones now.
  const bool pressure = objs.size() > max_open_objects_;
  // Many objects with new data: one syncfs instead of one fdatasync each. The
  // data of each object is snapshotted before the syncfs, so only what it
  // covers is marked durable (rule 1 of docs/cache-format.md).
  size_t with_data = 0;
  for (auto& o : objs) with_data += o->TakeSyncSnapshot() ? 1 : 0;
  const bool batch_synced = with_data >= 4 && engine_->SyncfsSync(dir_fd_.get()) == 0;
  auto now = std::chrono::steady_clock::now();
  for (auto& o : objs) {
    if (o->Flush(closing || pressure, now, batch_synced)) {
      {
        std::lock_guard lk(objects_mu_);
        objects_.erase(o.get());
        auto it = by_id_.find(o->id());
        if (it != by_id_.end() && it->second.lock() == o) by_id_.erase(it);
      }
      // Reopened between its Flush and the erase: it registered while still
      // listed, so list it again (a later Open registers by itself).
      if (o->IsRegistered()) Register(o);
    }
  }
}

void Cache::ReapGraveyard() {
  int fd = ::openat(graveyard_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* de = ::readdir(d)) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) names.emplace_back(de->d_name);
  }
  ::closedir(d);
  for (const auto& n : names) RemoveTree(graveyard_fd_.get(), n.c_str());
}

void Cache::FlusherLoop() {
  ReapGraveyard();
  std::unique_lock lk(objects_mu_);
  while (!closing_) {
    flusher_cv_.wait_for(lk, options_.flush_interval / 4, [&] { return closing_ || kicked_; });
    if (closing_) break;
    kicked_ = false;
    lk.unlock();
    FlushAll(false);
    ReapGraveyard();
    lk.lock();
  }
}

}  // namespace cachefuse::cache
