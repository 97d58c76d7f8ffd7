// CacheObject: one generation of a file's cached data: the backing file, its
// content map and aux data. It knows nothing of the read helper: it says what
// is present, takes cache writes of granules and counts I/O in flight.
//
// Lock order: Cookie::mu_ -> (ReadHelper stripe) -> CacheObject::mu_. mu_
// guards the maps, the aux and the I/O counters. Engine completions take mu_ briefly.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cache/aux_xattr.h"
#include "cache/content_map.h"
#include "cache/io_engine.h"
#include "common/unique_fd.h"

namespace cachefuse::cache {

class Cache;
class Volume;

class CacheObject : public std::enable_shared_from_this<CacheObject> {
 public:
  enum class Mode {
    kClosed,     // no backing file open (yet, or closed when idle)
    kOpen,       // backing file open and validated
    kUncached,   // no cache for this generation (cache dead, file locked, errors)
    kAbandoned,  // replaced by a newer generation or retired: nothing persists
  };

  CacheObject(Cache* cache, Volume* volume, std::string key, std::string name, AuxData aux);
  ~CacheObject();
  CacheObject(const CacheObject&) = delete;
  CacheObject& operator=(const CacheObject&) = delete;

  // --- Lifecycle (called by Cookie under Cookie::mu_) ---
  // Opens and validates the backing file, or creates it when absent or unusable.
  // fresh: replace whatever is on disk with a new empty object (invalidation).
  void Open(bool fresh);
  // modify: the user opened the file for writing (see Cookie::Use).
  void AddUser(bool modify);
  void RemoveUser(bool modify);
  // New coherency token / size from the netfs (persisted lazily).
  void SetAux(const std::string& coherency, uint64_t size);
  // Sets DIRTY in the aux xattr (durably) before the first change through the
  // mount of an object opened for writing. Not under mu_.
  void PrepareModify();
  // This generation replaces whatever is at its name when it opens, even if no
  // one uses it yet (a generation made by invalidation: the old data, possibly
  // still open in the old generation, is never picked up again).
  void ReplaceOnOpen();
  // A new cookie of the same key takes this open generation over, if it
  // describes that version of the file (token and size). False: not usable.
  bool TakeOver(const std::string& coherency, uint64_t size);
  // Marks the generation dead: no map or aux is written from now on.
  void Abandon();
  // Removes the backing file (unlinked source file) and abandons.
  void Retire();

  // --- Persistence (flusher thread, Cache::Close) ---
  // fdatasync, then the map, then the aux. closing: also close the file if idle.
  // Returns true if the object may be dropped from the flusher's list.
  // batch_synced: a syncfs after TakeSyncSnapshot made the snapshotted data durable.
  bool Flush(bool closing, std::chrono::steady_clock::time_point now, bool batch_synced = false);
  // Moves the data written so far into the set a coming syncfs will make
  // durable; true if there was any.
  bool TakeSyncSnapshot();
  // In the Cache's list of open objects (or about to be).
  bool IsRegistered();

  // --- Data path (ReadHelper, Cookie::NoteWrite) ---
  // The coherency token of the version this generation holds (moves with
  // changes made through the mount).
  const std::string& CoherencyLocked() const { return aux_.coherency; }
  unsigned UsersLocked() const { return users_; }
  // A change through the mount is on its way to the source (Cookie::BeginChange).
  void BeginChangeLocked() {
    ++changing_;
    ++mod_gen_;
  }
  void EndChangeLocked() {
    if (changing_ > 0) --changing_;
  }
  bool ChangingLocked() const { return changing_ > 0; }
  std::mutex& mu() { return mu_; }
  std::condition_variable& cv() { return cv_; }
  Cache* cache() const { return cache_; }
  int fd() const { return fd_.get(); }
  uint64_t SizeLocked() const { return aux_.object_size; }
  uint64_t ModGenLocked() const { return mod_gen_; }
  bool ReadableLocked() const;  // present granules may be read from the backing file
  bool WritableLocked() const;  // fetched granules may be written to the backing file
  bool PresentLocked(uint64_t g) const { return ReadableLocked() && present_.Contains(g); }
  void BeginIoLocked() { ++io_inflight_; }
  void EndIoLocked();
  // A cache write of granule g (of data fetched at modification generation
  // fill_gen) is submitted / finished. A finished write marks the granule
  // present only if it wrote, the generation was not changed through the mount
  // since the fetch began, and no other write of g is still in flight (an
  // older write of outdated bytes may land after it).
  void BeginWriteLocked(uint64_t g);
  void EndWriteLocked(uint64_t g, uint64_t fill_gen, bool written);
  // Bytes [off, off+len) changed through the mount (and the size is now new_size).
  void NoteModifiedLocked(uint64_t off, uint64_t len, uint64_t new_size);
  void SetAuxCoherencyLocked(const std::string& coherency) { aux_.coherency = coherency; }
  // Something on disk is not what the map says (short read): withdraw this generation.
  void WithdrawLocked(const std::string& why);
  ContentMap PresentMapLocked() const { return present_; }
  Mode ModeLocked() const { return mode_; }
  const std::string& name() const { return name_; }
  // "<volume hash>/<object hash>": the culler's name for this object.
  const std::string& id() const { return id_; }
  // Culls this object if nobody uses it: removes the backing file and starts
  // over empty (and out of the culler's index). 1 culled (*freed = bytes), 0 in
  // use, -1 no backing file open.
  int TryCull(uint64_t* freed);

 private:
  // Validation and creation of the backing file (mu_ held).
  bool OpenExistingLocked(int dirfd);
  bool CreateLocked(int dirfd);
  bool LoadMapLocked(int dirfd, const MapRecord& rec, ContentMap* out);
  // Writers of the on-disk metadata; need persist_mu_ (not mu_).
  bool WriteMap(int fd, const ContentMap& map);
  bool WriteAux(int fd, const AuxData& aux);
  // Bytes the backing file (and side-car) take on disk.
  uint64_t DiskBytes(int fd) const;
  void BuryLocked(int dirfd, const std::string& why);

  Cache* const cache_;
  Volume* const volume_;
  const std::string key_;
  const std::string name_;
  const std::string id_;

  std::mutex persist_mu_;  // serializes writers of the xattrs and side-car; before mu_
  mutable std::mutex mu_;
  std::condition_variable cv_;  // slot state changes, io_inflight_ reaching 0
  Mode mode_ = Mode::kClosed;
  UniqueFd fd_;
  AuxData aux_;             // what the aux xattr should say
  AuxData aux_on_disk_;     // what it says
  ContentMap present_;      // granules whose data is in the backing file
  ContentMap unsynced_;     // subset of present_ written since the last fdatasync began
  ContentMap presynced_;    // subset of present_ that a coming batch syncfs makes durable
  ContentMap map_on_disk_;  // what the map xattr / side-car says
  uint64_t map_generation_ = 0;
  uint64_t mod_gen_ = 0;   // bumped by changes through the mount
  unsigned changing_ = 0;  // changes through the mount on their way to the source
  unsigned users_ = 0;
  unsigned modifiers_ = 0;  // users that opened the file for writing: DIRTY stays while any
  unsigned io_inflight_ = 0;
  // Cache writes in flight per granule (see EndWriteLocked).
  std::map<uint64_t, unsigned> writes_inflight_;
  bool replace_on_open_ = false;  // Open replaces what is on disk (see ReplaceOnOpen)
  bool registered_ = false;       // in the Cache's flusher list
  bool has_sidecar_ = false;      // a side-car map file may exist on disk
  std::chrono::steady_clock::time_point last_active_;
};

}  // namespace cachefuse::cache
