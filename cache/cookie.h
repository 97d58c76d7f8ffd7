// Cookie: the netfs's handle on one file's cache data (the seed's fscache_cookie).
//
// Acquired at lookup, used on open, unused on release, invalidated when the
// source's coherency token changes, relinquished on forget. The cookie holds
// the current CacheObject (one generation of the file's data); invalidation
// swaps in a new generation while I/O on the old one finishes and is dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/volume.h"

namespace cachefuse::cache {

class CacheObject;
class Cookie;

// One open's hold on a cookie, as Cookie::Use returns it: the generation of the
// file's data that this open reads. An open file keeps reading the generation
// it was opened with, so bytes it fetches never land in a newer generation,
// and a read that the source can no longer serve from that version fails
// instead of mixing versions. The daemon keeps it next to the cookie and hands
// it to the ReadHelper; it is opaque outside cache/.
class UseToken {
 public:
  UseToken() = default;
  bool valid() const { return object_ != nullptr; }
  bool will_modify() const { return will_modify_; }

 private:
  friend class Cookie;
  friend class ReadHelper;
  UseToken(std::shared_ptr<CacheObject> object, bool will_modify)
      : object_(std::move(object)), will_modify_(will_modify) {}
  std::shared_ptr<CacheObject> object_;
  bool will_modify_ = false;
};

// A change through the mount in progress (Cookie::BeginChange); ends when it
// goes away.
class ChangeScope {
 public:
  ChangeScope() = default;
  ~ChangeScope() { End(); }
  ChangeScope(ChangeScope&& other) noexcept = default;
  ChangeScope& operator=(ChangeScope&& other) noexcept {
    if (this != &other) {
      End();
      object_ = std::move(other.object_);
    }
    return *this;
  }
  ChangeScope(const ChangeScope&) = delete;
  ChangeScope& operator=(const ChangeScope&) = delete;
  // Ends the change now (idempotent).
  void End();

 private:
  friend class Cookie;
  explicit ChangeScope(std::shared_ptr<CacheObject> object) : object_(std::move(object)) {}
  std::shared_ptr<CacheObject> object_;
};

// What the cache says about a requested byte range (the seed's fscache_request_shape).
struct Shape {
  uint64_t granule_start = 0;  // first granule touched
  uint64_t granule_end = 0;    // one past the last granule touched (clipped to EOF)
  uint64_t byte_start = 0;     // granule-aligned start
  uint64_t byte_end = 0;       // end of the last granule, clipped to i_size
  uint64_t dio_end = 0;        // byte_end rounded up to the DIO alignment
  std::vector<bool> present;   // per granule in [granule_start, granule_end)
};

struct ByteRange {
  uint64_t start = 0;
  uint64_t end = 0;
};

class Cookie {
 public:
  Cookie(Volume* volume, std::string key, std::string aux, uint64_t size);
  ~Cookie();

  // On open. will_modify: the file is opened for writing: DIRTY goes on disk
  // before its first change and comes off once no writer uses the object.
  UseToken Use(bool will_modify);
  // On release of that open: the netfs's latest aux and size, written to the
  // xattrs lazily.
  void Unuse(const UseToken& use, const std::string& aux, uint64_t size);
  // The source changed: a new, empty generation replaces the data (O_TMPFILE
  // linked over the old object); I/O in flight on the old one is abandoned.
  void Invalidate(const std::string& aux, uint64_t size);
  // On forget. retire: the file is gone (unlinked) and its object is removed.
  void Relinquish(bool retire);

  // Granule and DIO shaping of [start, start+len) against a file of i_size bytes.
  Shape shape(uint64_t start, uint64_t len, uint64_t i_size);

  // A change through the mount (write, truncate, fallocate, chmod) is about to
  // reach the source: while the scope lives, a fetch that finds the source's
  // token moved is retried, not failed as stale (the token moves with our own
  // change, and NoteWrite & co. then move the generation's token along).
  [[nodiscard]] ChangeScope BeginChange();
  // Bytes [off, off+len) were written through to the source; the file is now
  // new_size bytes with token new_aux. Drops the granules those bytes touch.
  void NoteWrite(uint64_t off, uint64_t len, const std::string& new_aux, uint64_t new_size);
  // The file's size changed through us (truncate): drops the granules beyond.
  void NoteResize(const std::string& new_aux, uint64_t new_size);
  // Only metadata changed through us (chmod, utimes): new token, same data.
  void NoteAttrChange(const std::string& new_aux);
  // Drops the cached data and removes the backing file (cachefusectl forget).
  void Forget();

  // The current generation (tests and the cache's own bookkeeping; the netfs
  // reads through a UseToken).
  std::shared_ptr<CacheObject> object();
  // Byte ranges of the file that the cache holds (for user.cachefuse.cached).
  std::vector<ByteRange> CachedRanges();

  const std::string& key() const { return key_; }
  std::string aux();
  uint64_t size();
  bool coherent_with(const std::string& aux);
  Volume* volume() const { return volume_; }

 private:
  // Opens or creates the backing file of object_ if closed. Needs mu_.
  void OpenObjectLocked();
  std::shared_ptr<CacheObject> NewGenerationLocked(bool replace_on_disk);

  Volume* const volume_;
  const std::string key_;
  const std::string name_;  // hashed object name
  std::mutex mu_;
  std::string aux_;                      // guarded by mu_
  uint64_t size_ = 0;                    // guarded by mu_
  unsigned users_ = 0;                   // guarded by mu_
  unsigned modifiers_ = 0;               // users opened for writing; guarded by mu_
  bool relinquished_ = false;            // guarded by mu_
  std::shared_ptr<CacheObject> object_;  // guarded by mu_
};

}  // namespace cachefuse::cache
