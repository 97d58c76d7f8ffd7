// Culler: the cache's space policy (DESIGN.md section 7): limits, space
// accounting, fetch reservations, and eviction of least-recently-used objects
// that nobody uses. The record of the objects is the LruIndex (lru_index.h).
//
// Limits: cache_size (bytes, 0 = none) and cachefilesd's thresholds on the cache
// filesystem's free space and free files, in percent: below *cull, evict until
// above *run; below *stop, no new data is cached (state no-space) until culling
// brings free space back above *stop.
//
// The index is loaded at start-up instead of scanning the tree. After an
// unclean stop (no CLEAN, a damaged snapshot, a torn log) the background thread
// first reconciles index and tree (adopting unknown files, dropping entries
// without a file).
//
// Lock order: Culler::cull_mu_ -> CacheObject locks -> Culler::mu_ -> LruIndex::mu_.
// The culler never holds mu_ while calling into a CacheObject, nor while the
// index writes its files (LruIndex::io_mu_). Every change to index_ is made
// under mu_, so that what mu_ guards and the index agree.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/lru_index.h"
#include "common/status.h"

namespace cachefuse::cache {

class Cache;

struct CullLimits {
  uint64_t cache_size = 0;                   // bytes the cache dir may use; 0 = no limit
  unsigned brun = 10, bcull = 7, bstop = 3;  // percent of the filesystem's blocks free
  unsigned frun = 10, fcull = 7, fstop = 3;  // percent of the filesystem's files free
};

class Culler {
 public:
  // cache_dir_fd, volumes_fd: borrowed, must outlive the culler.
  Culler(Cache* cache, int cache_dir_fd, int volumes_fd, CullLimits limits);
  ~Culler();
  Culler(const Culler&) = delete;
  Culler& operator=(const Culler&) = delete;

  // Reads index/ (fast: no tree scan). Call once, before Start.
  Status Load();
  // Starts the background thread (reconcile after an unclean stop, then checks).
  void Start();
  // Stops the thread; with persist, writes the index and marks the stop clean
  // (without: as if the daemon died, for tests).
  void Stop(bool persist = true);

  // --- Accounting (called by CacheObject; id = "<volume hash>/<object hash>")
  // The object exists with `bytes` on disk; touch: it was used just now.
  void NoteObject(const std::string& id, uint64_t bytes, bool touch);
  // The object was used (opened, read): moves it to the young end of the LRU.
  void Touch(const std::string& id);
  // The object grew by a completed cache write (exact size comes at its next flush).
  void Grow(const std::string& id, uint64_t bytes);
  // The object is gone (culled, buried, retired).
  void NoteRemoved(const std::string& id);
  // A volume directory to account for (fan-out dirs are overhead).
  void AddVolume(const std::string& name);

  // --- Reservations: space for a fetch is reserved before the fetch starts.
  // False: do not cache this data (over cache_size or no space); a cull is queued.
  bool Reserve(uint64_t bytes);
  // Gives back an unused or consumed reservation.
  void Unreserve(uint64_t bytes);
  // Asks for a culling pass soon (a write found the disk full).
  void RequestCull();

  // A synchronous pass: reconciles if needed, then culls to the limits.
  Status CullNow();

  uint64_t bytes_used() const;  // objects + directories + index, as du counts them
  uint64_t objects() const;
  bool reconciled() const;

 private:
  struct Fs {
    double free_blocks_pct = 100;
    double free_files_pct = 100;
  };

  void Loop();
  Fs StatFs() const;
  // Runs one culling pass if the limits ask for it; returns bytes freed.
  // need: a reservation waiting for room: the pass also makes that much room under cache_size.
  uint64_t CullIfNeeded(bool forced, uint64_t need = 0);
  bool NeedCullLocked(const Fs& fs, bool forced) const;
  bool DoneCullingLocked(const Fs& fs, uint64_t need) const;
  void UpdateStateLocked(const Fs& fs);
  // Evicts one object; returns bytes freed, or nullopt-like -1 if it was busy.
  int64_t Evict(const std::string& id);
  void Reconcile();
  void RecountOverhead();
  void PublishLocked();

  Cache* const cache_;
  const int dir_fd_;
  const int volumes_fd_;
  const CullLimits limits_;
  LruIndex index_;  // changed only under mu_; persisted by the thread, CullNow and Stop

  std::mutex cull_mu_;  // one culling pass at a time; taken before mu_, never under a CacheObject lock
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> volumes_;  // guarded by mu_
  uint64_t overhead_bytes_ = 0;       // guarded by mu_: dirs and index
  uint64_t reserved_ = 0;             // guarded by mu_
  bool want_cull_ = false;            // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  bool clean_start_ = false;          // set by Load: the index describes the tree, no reconcile
  bool reconciled_ = false;           // guarded by mu_
  std::thread thread_;
};

}  // namespace cachefuse::cache
