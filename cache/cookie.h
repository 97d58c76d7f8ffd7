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

  // On open. will_modify: the file is opened for writing (DIRTY before the first change).
  void Use(bool will_modify);
  // On release: the netfs's latest aux and size, written to the xattrs lazily.
  void Unuse(const std::string& aux, uint64_t size);
  // The source changed: a new, empty generation replaces the data (O_TMPFILE
  // linked over the old object); I/O in flight on the old one is abandoned.
  void Invalidate(const std::string& aux, uint64_t size);
  // On forget. retire: the file is gone (unlinked) and its object is removed.
  void Relinquish(bool retire);

  // Granule and DIO shaping of [start, start+len) against a file of i_size bytes.
  Shape shape(uint64_t start, uint64_t len, uint64_t i_size);

  // Bytes [off, off+len) were written through to the source; the file is now
  // new_size bytes with token new_aux. Drops the granules those bytes touch.
  void NoteWrite(uint64_t off, uint64_t len, const std::string& new_aux, uint64_t new_size);
  // The file's size changed through us (truncate): drops the granules beyond.
  void NoteResize(const std::string& new_aux, uint64_t new_size);
  // Only metadata changed through us (chmod, utimes): new token, same data.
  void NoteAttrChange(const std::string& new_aux);
  // Drops the cached data and removes the backing file (cachefusectl forget).
  void Forget();

  // The current generation; I/O paths hold it for the length of one operation.
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
  bool relinquished_ = false;            // guarded by mu_
  std::shared_ptr<CacheObject> object_;  // guarded by mu_
};

}  // namespace cachefuse::cache
