// ReadHelper: serves reads from the cache, fetches misses from the backend,
// writes them to the cache on the side, and reads ahead (DESIGN.md section 6;
// the seed's fscache_read_helper). The one place where cache and backend meet.
//
// Every read is shaped to whole granules. Each granule in flight is a Slot,
// linked into its CacheObject's slot table: a reader that wants a granule that
// is already being loaded waits for that load (single-flight) or takes the data
// from memory. Slots and their buffers come from a fixed pool; the hit path
// allocates nothing.
//
// Lock order: StreamState::mu -> CacheObject::mu() -> BufferPool (leaf).
// No I/O is submitted with CacheObject::mu() held (completions take it).
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cache/cache_object.h"
#include "cache/io_engine.h"
#include "common/status.h"
#include "netfs_backends/backend.h"

namespace cachefuse::cache {

class Cache;
class Cookie;
class ReadHelper;

// A granule in flight or held in memory (the seed's PG_fscache and the page it
// guards). Slot i owns pool buffer i. Fields below `owner` are guarded by
// owner->mu() while owner is set.
struct Slot {
  enum class State : uint8_t { kIdle, kLoading, kReady, kFailed };

  struct ReadDone final : IoCompletion {
    Slot* slot = nullptr;
    void OnIoComplete(ssize_t result) override;
  };
  struct WriteDone final : IoCompletion {
    Slot* slot = nullptr;
    void OnIoComplete(ssize_t result) override;
  };

  ReadHelper* helper = nullptr;
  int index = -1;
  char* data = nullptr;
  std::shared_ptr<CacheObject> owner;  // the generation this granule belongs to
  netfs::OpenFileRef file;             // where to refetch it from if the cache fails
  uint64_t granule = 0;
  uint32_t len = 0;     // bytes of the file in this granule (shorter at EOF)
  uint32_t io_len = 0;  // bytes a cache read/write transfers (len rounded up to DIO alignment)
  State state = State::kIdle;
  int err = 0;
  uint32_t refs = 0;        // demand readers holding the slot
  uint32_t waiters = 0;     // readers sleeping until it loads: only then is a wakeup needed
  bool writing = false;     // a cache write of this granule is in flight
  bool readahead = false;   // made by read-ahead and not consumed yet
  bool linked = false;      // in owner's slot table
  bool from_cache = false;  // loaded from the backing file
  bool stale = false;       // changed through the mount meanwhile: never mark present
  uint64_t fill_gen = 0;    // owner's modification generation when the load began
  std::chrono::steady_clock::time_point born;
  Slot* prev = nullptr;
  Slot* next = nullptr;
  ReadDone read_done;
  WriteDone write_done;
};

struct ReadHelperOptions {
  uint64_t readahead = 8ULL << 20;    // bytes read ahead of a sequential reader (0: none)
  unsigned max_backend_inflight = 4;  // backend fetches running at once for read-ahead
  uint64_t max_fetch = 2ULL << 20;    // largest single backend fetch
};

// Per open file: sequential-access detection for read-ahead.
struct StreamState {
  std::mutex mu;
  uint64_t next_off = 0;  // where a sequential reader reads next
  uint64_t ra_next = 0;   // first granule not yet read ahead
  unsigned seq = 0;       // sequential reads in a row
};

// The bytes of one read, held in slots until the reply has been sent.
class ReadReply {
 public:
  static constexpr int kMaxSlots = 260;  // a 1 MiB read over 4 KiB granules, plus both ends
  ReadReply() = default;
  ~ReadReply() { Release(); }
  ReadReply(const ReadReply&) = delete;
  ReadReply& operator=(const ReadReply&) = delete;

  const struct iovec* iov() const { return iov_; }
  int iovcnt() const { return iovcnt_; }
  size_t bytes() const { return bytes_; }
  // Copies the bytes out (tests, and callers that need one buffer).
  std::string ToString() const;
  // Lets go of the slots; call after the reply is sent. Idempotent.
  void Release();

 private:
  friend class ReadHelper;
  ReadHelper* helper_ = nullptr;
  std::shared_ptr<CacheObject> obj_;
  Slot* slots_[kMaxSlots] = {};
  int nslots_ = 0;
  struct iovec iov_[kMaxSlots] = {};
  int iovcnt_ = 0;
  size_t bytes_ = 0;
};

class ReadHelper {
 public:
  ReadHelper(Cache* cache, ReadHelperOptions options);
  // Waits for the fetches and cache I/O it started (their completions use its
  // slots) and takes back the granules it keeps in memory for read-ahead (they
  // are linked into objects that live on). Call when no Read is running and
  // every ReadReply has been released.
  ~ReadHelper();
  ReadHelper(const ReadHelper&) = delete;
  ReadHelper& operator=(const ReadHelper&) = delete;

  // Reads [off, off+len) of the cookie's file, opened on the backend as `file`.
  // len <= 1 MiB. On success `out` holds the bytes (short only at EOF). Cache
  // failures never surface: the bytes are then fetched from the backend.
  Status Read(Cookie& cookie, const netfs::OpenFileRef& file, StreamState* stream, uint64_t off, size_t len,
              ReadReply* out);
  // The same, on a given generation of the file's data: an open file reads the
  // generation it was opened with, so bytes it fetches through its own backend
  // handle never land in a newer generation.
  Status Read(const std::shared_ptr<CacheObject>& obj, const netfs::OpenFileRef& file, StreamState* stream,
              uint64_t off, size_t len, ReadReply* out);

  // Returns a slot to the pool if nothing holds it any more. Needs owner->mu().
  void MaybeFreeLocked(Slot* s);

  const ReadHelperOptions& options() const { return options_; }

 private:
  friend struct Slot;
  friend class ReadReply;
  struct FetchJob {
    std::shared_ptr<CacheObject> obj;
    netfs::OpenFileRef file;
    std::vector<Slot*> slots;
  };

  Slot* InitSlotLocked(CacheObject* obj, const std::shared_ptr<CacheObject>& ref, const netfs::OpenFileRef& file,
                       int index, uint64_t g, bool readahead);
  // Loads a run of consecutive slots from the backend, then writes them to the cache.
  void FetchRun(const std::shared_ptr<CacheObject>& obj, const netfs::OpenFileRef& file, Slot* const* run, size_t n);
  void SubmitCacheRead(Slot* s);
  void OnCacheRead(Slot* s, ssize_t result);
  void OnCacheWrite(Slot* s, ssize_t result);
  // Works out the read-ahead range for a read at [off, end) of a file of `granules` granules.
  void PlanReadahead(StreamState* stream, uint64_t off, uint64_t end, uint64_t granules, uint64_t* ra_from,
                     uint64_t* ra_to);
  void Enqueue(FetchJob job);
  void Worker();
  // Work that still uses slots: queued or running fetch jobs, cache I/O in flight.
  void AddPending();
  void DonePending();

  Cache* const cache_;
  const ReadHelperOptions options_;
  const uint64_t granule_;
  std::vector<Slot> slots_;

  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<FetchJob> jobs_;        // guarded by jobs_mu_
  bool stopping_ = false;            // guarded by jobs_mu_
  unsigned pending_ = 0;             // guarded by jobs_mu_ (see AddPending)
  std::condition_variable idle_cv_;  // pending_ reached 0
  std::vector<std::thread> workers_;
  // A leaf lock: Slot::owner also changes under it, so that ~ReadHelper can
  // find the objects that keep our slots.
  std::mutex owners_mu_;
};

}  // namespace cachefuse::cache
