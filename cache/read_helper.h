// ReadHelper: serves reads from the cache, fetches misses from the source,
// writes them to the cache on the side, and reads ahead (DESIGN.md section 6;
// the seed's fscache_read_helper). The one place where cache and source I/O
// meet, through the narrow Fetcher interface (cache/fetcher.h).
//
// Every read is shaped to whole granules (cache/shape.h). Each granule in
// flight or held in memory is a Slot in the helper's slot table, keyed by
// (generation, granule): a reader that wants a granule already being loaded
// waits for that load (single-flight) or takes the data from memory. Slots and
// their buffers come from a fixed pool; the hit path allocates nothing. The
// CacheObject knows nothing of slots: it answers what is present, takes cache
// writes, and counts I/O in flight (the netfs drives, the cache answers).
//
// No read mixes two versions of a file: every fetch names the coherency token
// of the generation it fills, and a fetch the source cannot serve from that
// version (kStale, or an early end of file) fails the read with kStale; the
// next open starts a new generation. Changes made through the mount move the
// generation's token along with them (Cookie::BeginChange/NoteWrite).
//
// Lock order: StreamState::mu -> Stripe::mu -> CacheObject::mu() -> Culler/BufferPool (leaves).
// No I/O is submitted and no fetch is made with a Stripe::mu or CacheObject::mu() held.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/cache_object.h"
#include "cache/cookie.h"
#include "cache/fetcher.h"
#include "cache/io_engine.h"
#include "common/status.h"

namespace cachefuse::cache {

class Cache;
class ReadHelper;

// A granule in flight or held in memory (the seed's PG_fscache and the page it
// guards). Slot i owns pool buffer i. While `owner` is set, the fields below it
// are guarded by the owner's stripe mutex (ReadHelper::StripeOf).
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
  FetcherRef fetcher;                  // where to refetch it from if the cache fails
  uint64_t granule = 0;
  uint32_t len = 0;     // bytes of the file in this granule (shorter at EOF)
  uint32_t io_len = 0;  // bytes a cache read/write transfers (len rounded up to DIO alignment)
  State state = State::kIdle;
  Status err;                // why it failed (kFailed)
  uint32_t refs = 0;         // demand readers holding the slot
  uint32_t waiters = 0;      // readers sleeping until it loads: only then is a wakeup needed
  bool writing = false;      // a cache write of this granule is in flight
  bool readahead = false;    // made by read-ahead and not consumed yet
  bool linked = false;       // in the slot table
  bool from_cache = false;   // loaded from the backing file
  bool uncacheable = false;  // changed through the mount meanwhile, or short: serve, never cache
  uint64_t fill_gen = 0;     // owner's modification generation when the load began
  std::chrono::steady_clock::time_point born;
  ReadDone read_done;
  WriteDone write_done;
};

struct ReadHelperOptions {
  uint64_t readahead = 8ULL << 20;    // bytes read ahead of a sequential reader (0: none)
  unsigned max_backend_inflight = 4;  // source fetches running at once in the background
  uint64_t max_fetch = 2ULL << 20;    // largest single source fetch
  // Read-ahead granules nobody consumed are dropped after this long.
  std::chrono::milliseconds readahead_ttl{5000};
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
  // slots) and frees every slot. Call when no Read is running and every
  // ReadReply has been released.
  ~ReadHelper();
  ReadHelper(const ReadHelper&) = delete;
  ReadHelper& operator=(const ReadHelper&) = delete;

  // Reads [off, off+len) of the generation `use` was opened on, fetching what
  // the cache lacks through `fetcher`. len <= 1 MiB. On success `out` holds the
  // bytes (short only at EOF). Cache failures never surface: the bytes are then
  // fetched. Errors: the fetcher's (after its retries), or kStale when the
  // source no longer holds this generation's version of the bytes.
  Status Read(const UseToken& use, const FetcherRef& fetcher, StreamState* stream, uint64_t off, size_t len,
              ReadReply* out);

  // The open of `use` ends: if nobody else uses its generation, the read-ahead
  // granules kept in memory for it are freed.
  void Release(const UseToken& use);

  const ReadHelperOptions& options() const { return options_; }

 private:
  friend struct Slot;
  friend class ReadReply;

  struct SlotKey {
    const CacheObject* obj;
    uint64_t granule;
    bool operator==(const SlotKey&) const = default;
  };
  // Pointers are aligned (low bits zero) and std::hash of one is the identity:
  // mix before taking a remainder.
  static size_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return static_cast<size_t>(x);
  }
  struct SlotKeyHash {
    size_t operator()(const SlotKey& k) const {
      return Mix(reinterpret_cast<uintptr_t>(k.obj) ^ (k.granule * 0x9e3779b97f4a7c15ULL));
    }
  };
  // The slot table, in stripes by generation so that readers of different
  // files rarely share a lock.
  struct Stripe {
    std::mutex mu;
    std::condition_variable cv;                             // slot state changes
    std::unordered_map<SlotKey, Slot*, SlotKeyHash> table;  // guarded by mu
  };
  static constexpr size_t kStripes = 32;
  Stripe& StripeOf(const CacheObject* obj) { return stripes_[Mix(reinterpret_cast<uintptr_t>(obj)) % kStripes]; }

  struct FetchJob {
    std::shared_ptr<CacheObject> obj;
    FetcherRef fetcher;
    std::vector<Slot*> slots;
  };

  // A usable slot of granule g of obj, or nullptr; drops one filled before a
  // change through the mount. Needs the stripe's mu and obj->mu().
  Slot* FindSlotLocked(Stripe& st, CacheObject* obj, uint64_t g);
  Slot* InitSlotLocked(Stripe& st, const std::shared_ptr<CacheObject>& obj, const FetcherRef& fetcher, int index,
                       uint64_t g, bool readahead);
  void UnlinkLocked(Stripe& st, Slot* s);
  // Returns a slot to the pool if nothing holds it any more. Needs its stripe's mu.
  void MaybeFreeLocked(Stripe& st, Slot* s);
  // Loads a run of consecutive slots from the source, then writes them to the cache.
  void FetchRun(const std::shared_ptr<CacheObject>& obj, const FetcherRef& fetcher, Slot* const* run, size_t n);
  void SubmitCacheRead(Slot* s);
  void OnCacheRead(Slot* s, ssize_t result);
  void OnCacheWrite(Slot* s, ssize_t result);
  // Works out the read-ahead range for a read at [off, end) of a file of `granules` granules.
  void PlanReadahead(StreamState* stream, uint64_t off, uint64_t end, uint64_t granules, uint64_t* ra_from,
                     uint64_t* ra_to);
  // front: a demand fetch, ahead of queued read-ahead.
  void Enqueue(FetchJob job, bool front);
  void Worker();
  // Frees read-ahead slots of obj (all objects: nullptr) unused for max_age.
  void DropReadahead(const CacheObject* obj, std::chrono::steady_clock::duration max_age);
  // Work that still uses slots: queued or running fetch jobs, cache I/O in flight.
  void AddPending();
  void DonePending();

  Cache* const cache_;
  const ReadHelperOptions options_;
  const uint64_t granule_;
  std::vector<Slot> slots_;
  Stripe stripes_[kStripes];

  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<FetchJob> jobs_;        // guarded by jobs_mu_
  bool stopping_ = false;            // guarded by jobs_mu_
  unsigned pending_ = 0;             // guarded by jobs_mu_ (see AddPending)
  std::condition_variable idle_cv_;  // pending_ reached 0
  std::vector<std::thread> workers_;
  std::chrono::steady_clock::time_point last_sweep_;  // guarded by jobs_mu_
};

}  // namespace cachefuse::cache
