// CacheObject: validation, creation and lazy persistence of one backing file.
#include "cache/cache_object.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <random>

#include "cache/cache.h"
#include "cache/layout.h"
#include "cache/volume.h"
#include "common/crc32c.h"

namespace cachefuse::cache {
namespace {

uint64_t RandomGeneration() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng() | 1;  // never 0
}

std::string ProcFd(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

// Reads a whole xattr; nullopt with errno set when absent or unreadable.
std::optional<std::string> GetXattr(int fd, const char* name) {
  std::string buf(4096, '\0');
  ssize_t n = ::fgetxattr(fd, name, buf.data(), buf.size());
  if (n < 0 && errno == ERANGE) {
    n = ::fgetxattr(fd, name, nullptr, 0);
    if (n < 0) return std::nullopt;
    buf.assign(static_cast<size_t>(n), '\0');
    n = ::fgetxattr(fd, name, buf.data(), buf.size());
  }
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

bool ReadWholeFile(int dirfd, const std::string& name, std::string* out) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return false;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) return false;
  out->assign(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::pread(fd.get(), out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// SEEK_DATA/SEEK_HOLE never prove presence (rule 1: extent filesystems may
// call zero-filled blocks data), but a hole is certain absence: a claimed
// extent with a hole in it lost its data (the file was truncated and extended
// again, or damaged otherwise). One lseek per extent, at open.
bool ClaimedDataAllocated(int fd, const ContentMap& map, uint64_t granule, uint64_t object_size) {
  for (const auto& e : map.Extents()) {
    const uint64_t start = e.start * granule;
    const uint64_t end = std::min(e.end * granule, object_size);
    if (start >= end) continue;
    off_t hole = ::lseek(fd, static_cast<off_t>(start), SEEK_HOLE);
    if (hole < 0) return true;  // no hole information: nothing to say
    if (static_cast<uint64_t>(hole) < end) return false;
  }
  return true;
}

}  // namespace

CacheObject::CacheObject(Cache* cache, Volume* volume, std::string key, std::string name, AuxData aux)
    : cache_(cache),
      volume_(volume),
      key_(std::move(key)),
      name_(std::move(name)),
      id_(layout::ObjectId(volume->name(), name_)),
      aux_(std::move(aux)) {
  aux_.key = key_;
  last_active_ = std::chrono::steady_clock::now();
}

CacheObject::~CacheObject() = default;

bool CacheObject::ReadableLocked() const {
  return mode_ == Mode::kOpen && cache_->readable();
}

bool CacheObject::WritableLocked() const {
  return mode_ == Mode::kOpen && cache_->accepting_writes();
}

void CacheObject::Open(bool fresh) {
  std::unique_lock lk(mu_);
  fresh = fresh || replace_on_open_;
  if (mode_ == Mode::kAbandoned || mode_ == Mode::kUncached) return;
  if (mode_ == Mode::kOpen && !fresh) return;
  if (!cache_->readable()) {
    mode_ = Mode::kUncached;
    return;
  }
  auto dirfd = volume_->FanoutDir(name_);
  if (!dirfd.ok()) {
    cache_->NoteError("fan-out dir for " + name_ + ": " + dirfd.status().ToString());
    mode_ = Mode::kUncached;
    return;
  }
  bool ok = (!fresh && OpenExistingLocked(*dirfd)) || mode_ == Mode::kUncached || CreateLocked(*dirfd);
  if (!ok) mode_ = Mode::kUncached;
  if (mode_ == Mode::kOpen) {
    replace_on_open_ = false;
    // Just opened for a user: the flusher must not take it for idle before AddUser.
    last_active_ = std::chrono::steady_clock::now();
  }
  if (mode_ == Mode::kOpen && !registered_) {
    registered_ = true;
    lk.unlock();
    cache_->Register(shared_from_this());
  }
}

bool CacheObject::OpenExistingLocked(int dirfd) {
  int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (cache_->engine().direct() ? O_DIRECT : 0);
  UniqueFd fd(::openat(dirfd, name_.c_str(), flags));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    BuryLocked(dirfd, std::string("cannot open backing file: ") + std::strerror(errno));
    return false;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    BuryLocked(dirfd, "not a regular file");
    return false;
  }
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int tries = 0;
  while (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) {
    // The culler holds an object's lock only while it removes the file.
    if (++tries > 20) {
      spdlog::warn("object={} why=locked-elsewhere: backing file in use by another process; file runs uncached", name_);
      mode_ = Mode::kUncached;
      return false;
    }
    ::usleep(2000);
  }
  struct stat after {};
  if (::fstat(fd.get(), &after) != 0 || after.st_nlink == 0) return false;  // culled meanwhile: make a new one
  auto raw_aux = GetXattr(fd.get(), kAuxXattr);
  std::optional<AuxData> aux = raw_aux ? DecodeAux(*raw_aux) : std::nullopt;
  if (!aux) {
    BuryLocked(dirfd, raw_aux ? "aux xattr garbled" : "aux xattr missing");
    return false;
  }
  if (aux->key != key_) {
    BuryLocked(dirfd, "key mismatch (hash collision)");
    return false;
  }
  if (aux->dirty()) {
    BuryLocked(dirfd, "found DIRTY (the daemon stopped while it was being modified)");
    return false;
  }
  if (aux->coherency != aux_.coherency || aux->object_size != aux_.object_size) {
    cache_->stats().invalidations++;
    BuryLocked(dirfd, "source changed since it was cached");
    return false;
  }
  ContentMap map;
  errno = 0;
  auto raw_map = GetXattr(fd.get(), kMapXattr);
  if (raw_map) {
    auto rec = DecodeMapXattr(*raw_map);
    if (!rec || rec->granule_shift != cache_->granule_shift()) {
      BuryLocked(dirfd, "map xattr garbled");
      return false;
    }
    if (!LoadMapLocked(dirfd, *rec, &map)) {
      BuryLocked(dirfd, "side-car map torn");
      return false;
    }
    map_generation_ = rec->generation;
    has_sidecar_ = rec->in_sidecar;
  } else if (errno != ENODATA) {
    BuryLocked(dirfd, "map xattr unreadable");
    return false;
  }
  const uint64_t g = cache_->granule();
  const uint64_t granules = (aux_.object_size + g - 1) / g;
  if (map.End() > granules) {
    BuryLocked(dirfd, "map claims granules beyond the object size");
    return false;
  }
  uint64_t needed = map.empty() ? 0 : std::min(map.End() * g, aux_.object_size);
  if (static_cast<uint64_t>(st.st_size) < needed) {
    BuryLocked(dirfd, "backing file shorter than its map");
    return false;
  }
  if (!ClaimedDataAllocated(fd.get(), map, g, aux_.object_size)) {
    BuryLocked(dirfd, "a hole where the map claims data");
    return false;
  }
  fd_ = std::move(fd);
  aux_on_disk_ = *aux;
  present_ = map;
  map_on_disk_ = map;
  unsynced_.Clear();
  presynced_.Clear();
  mode_ = Mode::kOpen;
  cache_->culler().NoteObject(id_, DiskBytes(fd_.get()), true);
  spdlog::debug("object={} op=open why=valid granules={}", name_, map.CountGranules());
  return true;
}

bool CacheObject::LoadMapLocked(int dirfd, const MapRecord& rec, ContentMap* out) {
  std::string body = rec.body;
  if (rec.in_sidecar) {
    std::string raw;
    if (!ReadWholeFile(dirfd, layout::SidecarName(name_), &raw)) return false;
    auto decoded = DecodeSidecar(raw, rec);
    if (!decoded) return false;
    body = std::move(*decoded);
  }
  auto map = ContentMap::Decode(body);
  if (!map) return false;
  *out = std::move(*map);
  return true;
}

bool CacheObject::CreateLocked(int dirfd) {
  const int direct = cache_->engine().direct() ? O_DIRECT : 0;
  UniqueFd fd(::openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC | direct, 0600));
  if (!fd.valid()) {
    cache_->NoteError("O_TMPFILE in cache dir: " + std::string(std::strerror(errno)));
    return false;
  }
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  ::fcntl(fd.get(), F_OFD_SETLK, &fl);  // a fresh inode: cannot be held by anyone
  AuxData aux = aux_;
  aux.flags = 0;
  std::string enc = EncodeAux(aux);
  if (::fsetxattr(fd.get(), kAuxXattr, enc.data(), enc.size(), 0) != 0) {
    cache_->NoteError("set aux xattr: " + std::string(std::strerror(errno)));
    return false;
  }
  // Link the tmpfile under a temporary name, then rename it over the object's
  // name: an existing object (the old generation) is replaced atomically.
  std::string tmp = layout::NewObjectName(name_, RandomGeneration() % 1000000);
  if (::linkat(AT_FDCWD, ProcFd(fd.get()).c_str(), dirfd, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    cache_->NoteError("link tmpfile: " + std::string(std::strerror(errno)));
    return false;
  }
  if (::renameat(dirfd, tmp.c_str(), dirfd, name_.c_str()) != 0) {
    cache_->NoteError("rename tmpfile: " + std::string(std::strerror(errno)));
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return false;
  }
  ::unlinkat(dirfd, layout::SidecarName(name_).c_str(), 0);
  has_sidecar_ = false;
  fd_ = std::move(fd);
  aux_on_disk_ = aux;
  present_.Clear();
  unsynced_.Clear();
  presynced_.Clear();
  map_on_disk_.Clear();
  mode_ = Mode::kOpen;
  cache_->culler().NoteObject(id_, DiskBytes(fd_.get()), true);
  spdlog::debug("object={} op=create", name_);
  return true;
}

void CacheObject::BuryLocked(int dirfd, const std::string& why) {
  cache_->stats().objects_discarded++;
  cache_->culler().NoteRemoved(id_);
  cache_->Bury(dirfd, name_, why);
}

void CacheObject::AddUser(bool modify) {
  std::lock_guard lk(mu_);
  ++users_;
  if (modify) ++modifiers_;
  last_active_ = std::chrono::steady_clock::now();
  if (mode_ == Mode::kOpen) cache_->culler().Touch(id_);
}

void CacheObject::RemoveUser(bool modify) {
  std::lock_guard lk(mu_);
  if (users_ > 0) --users_;
  if (modify && modifiers_ > 0) --modifiers_;
  last_active_ = std::chrono::steady_clock::now();
  if (mode_ == Mode::kOpen) cache_->culler().Touch(id_);  // used until now, not just at open
}

void CacheObject::SetAux(const std::string& coherency, uint64_t size) {
  std::lock_guard lk(mu_);
  aux_.coherency = coherency;
  if (size != aux_.object_size) {
    // Only our own writes change the size without a new generation; the
    // granules past the shorter end are no longer what the map describes.
    NoteModifiedLocked(size, 0, size);
  }
}

void CacheObject::PrepareModify() {
  std::lock_guard plk(persist_mu_);
  std::unique_lock lk(mu_);
  if (mode_ != Mode::kOpen || aux_.dirty()) return;
  aux_.flags |= AuxData::kDirty;
  AuxData aux = aux_on_disk_;
  aux.flags |= AuxData::kDirty;
  int fd = fd_.get();
  lk.unlock();
  // DIRTY must be on disk before anything changes: a crash from here on discards the object.
  if (!WriteAux(fd, aux) || ::fsync(fd) != 0) {
    lk.lock();
    WithdrawLocked("cannot mark DIRTY");
    return;
  }
  lk.lock();
  aux_on_disk_ = aux;
}

bool CacheObject::TakeOver(const std::string& coherency, uint64_t size) {
  std::lock_guard lk(mu_);
  return mode_ == Mode::kOpen && aux_.coherency == coherency && aux_.object_size == size;
}

void CacheObject::ReplaceOnOpen() {
  std::lock_guard lk(mu_);
  replace_on_open_ = true;
}

void CacheObject::Abandon() {
  // After a flush in progress: it must not write the map or side-car of the
  // name that the next generation takes over.
  std::lock_guard plk(persist_mu_);
  std::lock_guard lk(mu_);
  mode_ = Mode::kAbandoned;
  present_.Clear();
  unsynced_.Clear();
  presynced_.Clear();
  cv_.notify_all();
}

void CacheObject::Retire() {
  std::lock_guard plk(persist_mu_);
  std::lock_guard lk(mu_);
  if (mode_ == Mode::kOpen || mode_ == Mode::kClosed) {
    auto dirfd = volume_->FanoutDir(name_);
    if (dirfd.ok()) {
      ::unlinkat(*dirfd, name_.c_str(), 0);
      ::unlinkat(*dirfd, layout::SidecarName(name_).c_str(), 0);
    }
    cache_->culler().NoteRemoved(id_);
  }
  mode_ = Mode::kAbandoned;
  present_.Clear();
  unsynced_.Clear();
  presynced_.Clear();
}

void CacheObject::EndIoLocked() {
  if (io_inflight_ > 0) --io_inflight_;
  last_active_ = std::chrono::steady_clock::now();
  if (io_inflight_ == 0) cv_.notify_all();
}

void CacheObject::BeginWriteLocked(uint64_t g) {
  ++io_inflight_;
  ++writes_inflight_[g];
}

void CacheObject::EndWriteLocked(uint64_t g, uint64_t fill_gen, bool written) {
  bool alone = true;
  auto it = writes_inflight_.find(g);
  if (it != writes_inflight_.end()) {
    alone = it->second == 1;
    if (--it->second == 0) writes_inflight_.erase(it);
  }
  if (written && alone && mode_ == Mode::kOpen && fill_gen == mod_gen_) {
    present_.Add(g, g + 1);
    unsynced_.Add(g, g + 1);
  }
  EndIoLocked();
}

void CacheObject::NoteModifiedLocked(uint64_t off, uint64_t len, uint64_t new_size) {
  const uint64_t g = cache_->granule();
  ++mod_gen_;
  uint64_t old_size = aux_.object_size;
  uint64_t drop_a = UINT64_MAX;
  uint64_t drop_b = 0;
  if (len > 0) {
    drop_a = off / g;
    drop_b = (off + len + g - 1) / g;
    present_.Remove(drop_a, drop_b);
    unsynced_.Remove(drop_a, drop_b);
    presynced_.Remove(drop_a, drop_b);
  }
  uint64_t tail = UINT64_MAX;
  if (new_size != old_size) {
    tail = std::min(old_size, new_size) / g;
    present_.Remove(tail, UINT64_MAX);
    unsynced_.Remove(tail, UINT64_MAX);
    presynced_.Remove(tail, UINT64_MAX);
  }
  aux_.object_size = new_size;
  // Granules in memory or on their way to the cache that were fetched before
  // this change carry an older fill_gen: the read helper drops them, and
  // EndWriteLocked does not mark them present.
}

void CacheObject::WithdrawLocked(const std::string& why) {
  if (mode_ != Mode::kOpen) return;
  spdlog::warn("object={} why=withdrawn: {}", name_, why);
  cache_->NoteError("object " + name_ + ": " + why);
  auto dirfd = volume_->FanoutDir(name_);
  if (dirfd.ok()) BuryLocked(*dirfd, why);
  mode_ = Mode::kUncached;
  present_.Clear();
  unsynced_.Clear();
  presynced_.Clear();
}

bool CacheObject::WriteAux(int fd, const AuxData& aux) {
  std::string enc = EncodeAux(aux);
  if (::fsetxattr(fd, kAuxXattr, enc.data(), enc.size(), 0) != 0) {
    cache_->NoteError("write aux xattr of " + name_ + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

bool CacheObject::WriteMap(int fd, const ContentMap& map) {
  MapRecord rec;
  rec.granule_shift = static_cast<uint8_t>(cache_->granule_shift());
  rec.generation = RandomGeneration();
  rec.body = map.Encode();
  if (rec.body.size() <= kInlineMapLimit) {
    std::string enc = EncodeMapXattr(rec);
    if (::fsetxattr(fd, kMapXattr, enc.data(), enc.size(), 0) == 0) {
      if (has_sidecar_) {
        auto dirfd = volume_->FanoutDir(name_);
        if (dirfd.ok()) ::unlinkat(*dirfd, layout::SidecarName(name_).c_str(), 0);
        has_sidecar_ = false;
      }
      return true;
    }
    if (errno != ENOSPC && errno != E2BIG) {
      cache_->NoteError("write map xattr of " + name_ + ": " + std::strerror(errno));
      return false;
    }
  }
  // Side-car: tmp + fsync + rename, then the xattr that names its generation.
  auto dirfd = volume_->FanoutDir(name_);
  if (!dirfd.ok()) return false;
  std::string tmp = layout::SidecarTmpName(name_);
  std::string final_name = layout::SidecarName(name_);
  std::string content = EncodeSidecar(rec.generation, rec.body);
  UniqueFd sfd(::openat(*dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  bool ok = sfd.valid();
  size_t done = 0;
  while (ok && done < content.size()) {
    ssize_t n = ::write(sfd.get(), content.data() + done, content.size() - done);
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(sfd.get()) == 0 && ::renameat(*dirfd, tmp.c_str(), *dirfd, final_name.c_str()) == 0;
  if (!ok) {
    cache_->NoteError("write side-car of " + name_ + ": " + std::strerror(errno));
    ::unlinkat(*dirfd, tmp.c_str(), 0);
    return false;
  }
  has_sidecar_ = true;
  rec.in_sidecar = true;
  rec.body_len = static_cast<uint32_t>(rec.body.size());
  rec.body_crc = Crc32c(rec.body);
  std::string enc = EncodeMapXattr(rec);
  if (::fsetxattr(fd, kMapXattr, enc.data(), enc.size(), 0) != 0) {
    cache_->NoteError("write map xattr of " + name_ + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

bool CacheObject::IsRegistered() {
  std::lock_guard lk(mu_);
  return registered_;
}

bool CacheObject::TakeSyncSnapshot() {
  std::lock_guard lk(mu_);
  if (mode_ != Mode::kOpen || unsynced_.empty()) return false;
  for (const auto& e : unsynced_.Extents()) presynced_.Add(e.start, e.end);
  unsynced_.Clear();
  return true;
}

bool CacheObject::Flush(bool closing, std::chrono::steady_clock::time_point now, bool batch_synced) {
  std::lock_guard plk(persist_mu_);
  std::unique_lock lk(mu_);
  if (mode_ != Mode::kOpen) {
    // Uncached, abandoned or closed: nothing to persist; close once I/O is done.
    if (io_inflight_ != 0) return false;
    fd_.reset();
    registered_ = false;
    return true;
  }
  // Data written since the last sync needs one now, unless a batch syncfs
  // already covered it (granules snapshotted before that syncfs).
  const bool need_sync = !unsynced_.empty() || (!batch_synced && !presynced_.empty());
  unsynced_.Clear();
  presynced_.Clear();
  const int fd = fd_.get();
  lk.unlock();

  if (need_sync) {
    int rc = cache_->engine().FdatasyncSync(fd);
    if (rc < 0) {
      lk.lock();
      WithdrawLocked(std::string("fdatasync failed: ") + std::strerror(-rc));
      return false;
    }
  }

  lk.lock();
  // Persist only what was synced: granules written after the sync began stay out.
  ContentMap to_persist = present_;
  to_persist.Subtract(unsynced_);
  // No writer left: what was changed through the mount is synced above.
  if (modifiers_ == 0) aux_.flags &= static_cast<uint8_t>(~AuxData::kDirty);
  AuxData aux = aux_;
  bool map_changed = !(to_persist == map_on_disk_);
  lk.unlock();

  // The map goes first: until the aux loses DIRTY, a crash discards the object.
  bool ok = true;
  if (map_changed) {
    ok = WriteMap(fd, to_persist);
    if (ok) {
      lk.lock();
      map_on_disk_ = to_persist;
      lk.unlock();
    }
  }
  if (ok && !(aux == aux_on_disk_)) {
    if (aux_on_disk_.dirty() && !aux.dirty() && cache_->engine().FdatasyncSync(fd) < 0) ok = false;
    if (ok && WriteAux(fd, aux)) {
      lk.lock();
      aux_on_disk_ = aux;
      lk.unlock();
    }
  }

  // The exact space the object takes, now that its data is on disk.
  if (need_sync || batch_synced || map_changed) cache_->culler().NoteObject(id_, DiskBytes(fd), false);

  lk.lock();
  bool idle = users_ == 0 && io_inflight_ == 0 && unsynced_.empty() && present_ == map_on_disk_ && aux_ == aux_on_disk_;
  if (idle && (closing || now - last_active_ >= cache_->options().idle_close)) {
    fd_.reset();
    mode_ = Mode::kClosed;
    present_.Clear();
    map_on_disk_.Clear();
    registered_ = false;
    return true;
  }
  return false;
}

uint64_t CacheObject::DiskBytes(int fd) const {
  struct stat st {};
  uint64_t bytes = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
  if (has_sidecar_) {
    auto dirfd = volume_->FanoutDir(name_);
    if (dirfd.ok() && ::fstatat(*dirfd, layout::SidecarName(name_).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return bytes;
}

int CacheObject::TryCull(uint64_t* freed) {
  std::lock_guard plk(persist_mu_);
  std::lock_guard lk(mu_);
  if (mode_ != Mode::kOpen || !fd_.valid()) return -1;
  if (users_ > 0 || io_inflight_ > 0) return 0;  // in use: never culled
  *freed = DiskBytes(fd_.get());
  auto dirfd = volume_->FanoutDir(name_);
  if (dirfd.ok()) {
    ::unlinkat(*dirfd, name_.c_str(), 0);
    ::unlinkat(*dirfd, layout::SidecarName(name_).c_str(), 0);
  }
  fd_.reset();
  has_sidecar_ = false;
  mode_ = Mode::kClosed;  // the next use starts a new, empty object
  present_.Clear();
  unsynced_.Clear();
  presynced_.Clear();
  map_on_disk_.Clear();
  aux_on_disk_ = AuxData{};
  // Out of the index under mu_: an Open that finds the file gone notes its new object after this.
  cache_->culler().NoteRemoved(id_);
  spdlog::debug("object={} op=cull", name_);
  return 1;
}

}  // namespace cachefuse::cache
