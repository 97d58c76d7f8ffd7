// Cache: one cache directory owned by this daemon (DESIGN.md section 4).
//
// Holds the LOCK, checks FORMAT, owns the I/O engine, the buffer pool, the
// volumes, the graveyard and the flusher thread that persists maps and aux data
// lazily. Knows nothing of FUSE or of any backend.
//
// Lock order (cache/ as a whole):
//   Volume::mu_ -> Cookie::mu_ -> CacheObject::mu_ -> Cache::objects_mu_ -> Cache::grave_mu_
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "cache/buffer_pool.h"
#include "cache/culler.h"
#include "cache/io_engine.h"
#include "cache/stats.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace cachefuse::cache {

class CacheObject;
class Volume;

struct CacheOptions {
  std::string dir;
  uint64_t granule = 256 * 1024;  // power of two, >= 4 KiB
  EngineChoice engine = EngineChoice::kAuto;
  uint64_t max_inflight = 32ULL << 20;             // bytes of the buffer pool
  unsigned cache_error_limit = 8;                  // cache I/O errors before the cache is withdrawn
  std::chrono::milliseconds flush_interval{1000};  // lazy map/aux persistence
  std::chrono::milliseconds idle_close{2000};      // close backing files unused this long
  bool debug_fail_cache_reads = false;             // tests: every cache read fails with EIO
  CullLimits limits;                               // cache_size and free-space thresholds
  bool persist_on_close = true;                    // tests: false simulates a crash at Close
  // tests: wraps the engine (e.g. in a FaultEngine) before the cache uses it.
  std::function<std::unique_ptr<IoEngine>(std::unique_ptr<IoEngine>)> wrap_engine;
};

class Cache {
 public:
  // Creates or opens the cache dir: takes LOCK (fails naming the holder's pid),
  // checks or writes FORMAT, picks the engine. Starts the flusher.
  static Result<std::unique_ptr<Cache>> Open(const CacheOptions& options);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // Persists every map and aux, closes every backing file, stops threads. Idempotent.
  void Close();

  // One volume per SOURCE; key is the canonical source ("posix:/srv/data").
  Result<std::shared_ptr<Volume>> AcquireVolume(const std::string& key);

  const CacheOptions& options() const { return options_; }
  const std::string& dir() const { return options_.dir; }
  uint64_t granule() const { return options_.granule; }
  unsigned granule_shift() const { return granule_shift_; }
  uint32_t dio_align() const { return dio_align_; }
  Stats& stats() { return stats_; }
  IoEngine& engine() { return *engine_; }
  BufferPool& pool() { return *pool_; }
  const std::string& engine_reason() const { return engine_reason_; }

  CacheState state() const { return stats_.state.load(); }
  // May new data be written to the cache now?
  bool accepting_writes() const { return state() == CacheState::kActive; }
  // May the cache be read at all?
  bool readable() const { return state() != CacheState::kDead; }

  // A cache I/O error: counted; after cache_error_limit the cache is withdrawn
  // (state dead, logged once) and the mount goes on uncached.
  void NoteError(const std::string& what);

  // Moves dirfd/name (and name.map) into the graveyard for background deletion.
  void Bury(int dirfd, const std::string& name, const std::string& why);

  // Objects with an open backing file, for the flusher and for Close.
  void Register(const std::shared_ptr<CacheObject>& obj);
  void Unregister(CacheObject* obj);
  // Asks the flusher to look at the objects soon (after an unuse).
  void Kick();
  // Runs a culling pass now (cachefusectl cull).
  Status CullNow();
  Culler& culler() { return *culler_; }
  // Culls an object this daemon has open, if nobody uses it: 1 culled (bytes
  // freed in *freed), 0 in use, -1 not open here.
  int TryCullOpen(const std::string& id, uint64_t* freed);
  // The object with this id that has its backing file open here, if any.
  std::shared_ptr<CacheObject> FindOpenObject(const std::string& id);

 private:
  explicit Cache(CacheOptions options) : options_(std::move(options)) {}
  Status Init();
  Status CheckFormat();
  void FlusherLoop();
  void FlushAll(bool closing);
  void ReapGraveyard();

  CacheOptions options_;
  unsigned granule_shift_ = 0;
  uint32_t dio_align_ = 512;
  UniqueFd dir_fd_;
  UniqueFd lock_fd_;
  UniqueFd volumes_fd_;
  UniqueFd graveyard_fd_;
  Stats stats_;
  std::string engine_reason_;
  std::unique_ptr<BufferPool> pool_;  // declared before engine_: the engine must stop first
  std::unique_ptr<IoEngine> engine_;
  std::unique_ptr<Culler> culler_;

  std::mutex volumes_mu_;
  std::map<std::string, std::shared_ptr<Volume>> volumes_;  // guarded by volumes_mu_

  std::mutex objects_mu_;
  std::condition_variable flusher_cv_;
  std::map<CacheObject*, std::shared_ptr<CacheObject>> objects_;  // guarded by objects_mu_
  std::map<std::string, std::weak_ptr<CacheObject>> by_id_;       // guarded by objects_mu_
  bool kicked_ = false;                                           // guarded by objects_mu_
  bool closing_ = false;                                          // guarded by objects_mu_
  std::thread flusher_;
  std::mutex flush_mu_;  // one FlushAll at a time (flusher, Close, cachefusectl cull)
  // Backing files kept open at most (a quarter of RLIMIT_NOFILE): beyond it,
  // unused objects are closed at once instead of after idle_close.
  size_t max_open_objects_ = 1024;

  std::mutex grave_mu_;
  uint64_t grave_seq_ = 0;  // guarded by grave_mu_
  bool closed_ = false;
};

}  // namespace cachefuse::cache
