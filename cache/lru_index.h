// LruIndex: the culler's persistent record of every object (size on disk, last use), in LRU order.
//
// Pure bookkeeping: no limits, no statfs, no threads. The Culler (culler.h)
// decides what to do with it. On disk (docs/cache-format.md, "The LRU index"),
// in CACHE_DIR/index/: lru.snap, a snapshot in LRU order; lru.log, the changes
// since, appended by PersistLog; CLEAN, written by MarkClean after a clean stop
// and removed by Load. Load replays snapshot + log and cuts a torn log tail.
//
// Ids are "<vhash>/<ohash>" (layout.h). An id of another form is kept in memory
// but never written to disk (the record holds the two hashes as bytes).
//
// Thread safety: every method may be called from any thread. mu_ guards the
// entries and is a leaf: the index never calls out while holding it. io_mu_
// serializes the file I/O (Load, PersistLog, Compact, MarkClean, Close).
// Lock order: LruIndex::io_mu_ -> LruIndex::mu_, both after any lock of the
// caller (e.g. Culler::mu_); the Culler persists without holding its own.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cachefuse::cache {

struct LruEntry {
  std::string id;
  uint64_t bytes = 0;     // on disk: the data file's blocks plus its side-car's
  uint64_t last_use = 0;  // unix seconds
  bool operator==(const LruEntry&) const = default;
};

// What Load found.
struct LruLoadReport {
  bool clean_marker = false;      // CLEAN was there (Load removed it)
  bool snapshot_found = false;    // lru.snap exists
  bool snapshot_damaged = false;  // ... but was not trusted (bad size, magic, version, CRC, record): ignored
  uint64_t log_records = 0;       // whole records replayed from lru.log
  uint64_t log_torn_bytes = 0;    // bytes cut off the log's tail (a crash mid-append, or garbage)

  // The index describes the tree as the last daemon left it: a clean stop, an
  // intact snapshot, a whole log. Otherwise the tree should be rescanned.
  bool clean() const { return clean_marker && snapshot_found && !snapshot_damaged && log_torn_bytes == 0; }
};

class LruIndex {
 public:
  // On-disk units (docs/cache-format.md).
  static constexpr size_t kRecordSize = 56;
  static constexpr size_t kSnapshotHeader = 16;
  static constexpr size_t kSnapshotTrailer = 4;

  // Unix seconds; the default reads the system clock.
  using Clock = std::function<uint64_t()>;
  explicit LruIndex(Clock clock = nullptr);
  LruIndex(const LruIndex&) = delete;
  LruIndex& operator=(const LruIndex&) = delete;

  // Opens CACHE_DIR/index (cache_dir_fd borrowed, only during the call),
  // removes CLEAN, reads the snapshot, replays the log and truncates it to its
  // whole records. Call once, on an empty index. The order: last use, ties in
  // the order the snapshot and the log first name the ids.
  Status Load(int cache_dir_fd, LruLoadReport* report = nullptr);
  bool is_open() const;

  // --- Changes: in memory at once, on disk at the next PersistLog.
  // The object exists with `bytes` on disk. A new one enters at the young end,
  // last used now. touch: it was used just now, as Touch.
  void Note(const std::string& id, uint64_t bytes, bool touch);
  // Used now: the id moves to the young end. Logged if its last use changed.
  void Touch(const std::string& id);
  // The object grew by `bytes`. Not logged: its exact size comes with its next Note.
  void Grow(const std::string& id, uint64_t bytes);
  // The object is gone; false if the index did not know it.
  bool Remove(const std::string& id);
  // An object found on disk by a scan: unknown ones enter at the old end with
  // `last_use` (true is returned); a known one only gets its size updated.
  bool Adopt(const std::string& id, uint64_t bytes, uint64_t last_use);

  // --- Queries
  size_t size() const;
  uint64_t data_bytes() const;  // sum of the entries' bytes
  std::vector<std::string> Ids() const;
  // The least recently used id not in `except`.
  std::optional<std::string> Oldest(const std::unordered_set<std::string>& except = {}) const;
  // All entries, least recently used first.
  std::vector<LruEntry> Entries() const;
  std::optional<LruEntry> Find(const std::string& id) const;
  uint64_t log_records() const;  // records in lru.log now

  // --- Persistence (no-ops before Load and after Close)
  // Appends the changes since the last call to the log; compacts when the log
  // holds more than 2 * size() + 4096 records.
  void PersistLog();
  // Writes the snapshot (tmp + fsync + rename) and empties the log. False if
  // the index on disk may be stale.
  bool Compact();
  // Writes CLEAN: the index on disk describes the tree. Call after Compact.
  bool MarkClean();
  // Closes the files; the index stays readable in memory.
  void Close();

 private:
  struct Entry {
    uint64_t bytes = 0;
    uint64_t last_use = 0;
    std::list<std::string>::iterator lru;  // position in lru_
  };

  uint64_t Now() const;
  // io_mu_ held. Appends the dirty entries to the log; true if it should now be compacted.
  bool AppendLogLocked();
  // io_mu_ held. Compact().
  bool CompactLocked();
  void TouchLocked(const std::string& id, bool dirty);
  void MarkDirtyLocked(const std::string& id);

  const Clock clock_;
  mutable std::mutex io_mu_;
  UniqueFd index_fd_;  // guarded by io_mu_
  UniqueFd log_fd_;    // guarded by io_mu_

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::list<std::string> lru_;                      // guarded by mu_: oldest first
  std::unordered_map<std::string, bool> dirty_;     // guarded by mu_: id -> still present
  uint64_t data_bytes_ = 0;                         // guarded by mu_: sum of entries
  uint64_t log_records_ = 0;                        // guarded by mu_
};

}  // namespace cachefuse::cache
