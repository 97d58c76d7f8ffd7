// AttrCacheBackend: attributes and listings kept in memory for their lifetime,
// dropped by the changes made through this layer.
//
// One mutex (Impl::mu) guards all of Impl; it is never held across a call to
// the inner backend. A result fetched while a drop happened is not stored
// (Impl::generation): it may predate the change that caused the drop.
#include "netfs_backends/attr_cache.h"

#include <fcntl.h>

#include <atomic>
#include <map>
#include <set>

namespace cachefuse::netfs {

struct AttrCacheBackend::Impl {
  // Entries in the order they were stored, oldest first: the eviction order.
  struct Slot {
    bool listing;
    std::string key;
  };
  using Order = std::list<Slot>;
  struct StatEntry {
    Attr attr;
    Clock::time_point stored;
    Order::iterator pos;
  };
  struct ListEntry {
    std::vector<DirEntry> entries;
    Clock::time_point stored;
    Order::iterator pos;
  };
  using Stats = std::map<std::string, StatEntry>;  // ordered: what is below a path is a range
  using Lists = std::map<std::string, ListEntry>;

  std::mutex mu;
  Stats stats;                                                         // GUARDED_BY(mu)
  Lists lists;                                                         // GUARDED_BY(mu)
  std::unordered_map<std::string, std::set<std::string>> by_identity;  // GUARDED_BY(mu): identity -> paths in stats
  Order order;                                                         // GUARDED_BY(mu)
  uint64_t generation = 0;                                             // GUARDED_BY(mu): bumped by every drop
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};

  void EraseStatLocked(Stats::iterator it) {
    if (!it->second.attr.identity.empty()) {
      auto ids = by_identity.find(it->second.attr.identity);
      if (ids != by_identity.end()) {
        ids->second.erase(it->first);
        if (ids->second.empty()) by_identity.erase(ids);
      }
    }
    order.erase(it->second.pos);
    stats.erase(it);
  }

  void EraseListLocked(Lists::iterator it) {
    order.erase(it->second.pos);
    lists.erase(it);
  }

  void StoreStatLocked(const std::string& path, const Attr& attr, Clock::time_point now) {
    if (auto it = stats.find(path); it != stats.end()) EraseStatLocked(it);
    auto pos = order.insert(order.end(), Slot{false, path});
    Attr stamped = attr;
    stamped.as_of = now;  // answers from memory say how old they are
    stats.emplace(path, StatEntry{std::move(stamped), now, pos});
    if (!attr.identity.empty()) by_identity[attr.identity].insert(path);
  }

  void StoreListLocked(const std::string& dir, const std::vector<DirEntry>& entries, Clock::time_point now) {
    if (auto it = lists.find(dir); it != lists.end()) EraseListLocked(it);
    auto pos = order.insert(order.end(), Slot{true, dir});
    std::vector<DirEntry> stamped = entries;
    for (DirEntry& e : stamped) e.attr.as_of = now;
    lists.emplace(dir, ListEntry{std::move(stamped), now, pos});
  }

  void EvictLocked(size_t max_entries) {
    while (stats.size() + lists.size() > max_entries && !order.empty()) {
      const Slot& oldest = order.front();
      if (oldest.listing) {
        EraseListLocked(lists.find(oldest.key));
      } else {
        EraseStatLocked(stats.find(oldest.key));
      }
    }
  }

  void DropStatLocked(const std::string& path) {
    if (auto it = stats.find(path); it != stats.end()) EraseStatLocked(it);
  }

  void DropListLocked(const std::string& dir) {
    if (auto it = lists.find(dir); it != lists.end()) EraseListLocked(it);
  }

  // Every name of a file (hard links): their attributes and their parents'
  // listings, which show the attributes too.
  void DropIdentityLocked(const std::string& identity) {
    ++generation;
    if (identity.empty()) return;
    auto ids = by_identity.find(identity);
    if (ids == by_identity.end()) return;
    const std::set<std::string> paths = ids->second;
    for (const std::string& p : paths) {
      DropStatLocked(p);
      DropListLocked(ParentPath(p));
    }
  }

  void DropLocked(const std::string& path, bool recursive) {
    ++generation;
    if (auto it = stats.find(path); it != stats.end()) {
      // Other names of the same file changed too (link count, ctime).
      const std::string identity = it->second.attr.identity;
      EraseStatLocked(it);
      DropIdentityLocked(identity);
    }
    DropListLocked(ParentPath(path));
    // A name made or removed changes its directory's own attributes (mtime, nlink).
    if (!path.empty()) DropStatLocked(ParentPath(path));
    if (!recursive) return;
    DropListLocked(path);
    if (path.empty()) {
      while (!stats.empty()) EraseStatLocked(stats.begin());
      while (!lists.empty()) EraseListLocked(lists.begin());
      return;
    }
    const std::string prefix = path + "/";
    for (auto it = stats.lower_bound(prefix); it != stats.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      EraseStatLocked(it++);
    }
    for (auto it = lists.lower_bound(prefix); it != lists.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      EraseListLocked(it++);
    }
  }
};

AttrCacheBackend::AttrCacheBackend(std::unique_ptr<Backend> inner, AttrCacheOptions options, NowFn now)
    : ForwardingBackend(std::move(inner)), impl_(std::make_unique<Impl>()), options_(options), now_(std::move(now)) {
  if (!now_) now_ = [] { return Clock::now(); };
}

AttrCacheBackend::~AttrCacheBackend() = default;

void AttrCacheBackend::Drop(const std::string& path, bool recursive) {
  std::lock_guard lock(impl_->mu);
  impl_->DropLocked(path, recursive);
}

void AttrCacheBackend::DropAll() {
  std::lock_guard lock(impl_->mu);
  impl_->DropLocked("", true);
}

uint64_t AttrCacheBackend::hits() const {
  return impl_->hits.load(std::memory_order_relaxed);
}

uint64_t AttrCacheBackend::misses() const {
  return impl_->misses.load(std::memory_order_relaxed);
}

Result<Attr> AttrCacheBackend::stat(const std::string& path) {
  const Clock::time_point now = now_();
  uint64_t generation;
  {
    std::lock_guard lock(impl_->mu);
    if (auto it = impl_->stats.find(path); it != impl_->stats.end()) {
      if (now < it->second.stored + options_.attr_ttl) {
        impl_->hits.fetch_add(1, std::memory_order_relaxed);
        return it->second.attr;
      }
      impl_->EraseStatLocked(it);
    }
    generation = impl_->generation;
  }
  impl_->misses.fetch_add(1, std::memory_order_relaxed);
  auto r = inner().stat(path);
  if (r.ok()) {
    std::lock_guard lock(impl_->mu);
    if (generation == impl_->generation) {
      impl_->StoreStatLocked(path, *r, now);
      impl_->EvictLocked(options_.max_entries);
    }
  }
  return r;
}

Result<std::vector<DirEntry>> AttrCacheBackend::list(const std::string& dir) {
  const Clock::time_point now = now_();
  uint64_t generation;
  {
    std::lock_guard lock(impl_->mu);
    if (auto it = impl_->lists.find(dir); it != impl_->lists.end()) {
      if (now < it->second.stored + options_.entry_ttl) {
        impl_->hits.fetch_add(1, std::memory_order_relaxed);
        return it->second.entries;
      }
      impl_->EraseListLocked(it);
    }
    generation = impl_->generation;
  }
  impl_->misses.fetch_add(1, std::memory_order_relaxed);
  auto r = inner().list(dir);
  if (r.ok()) {
    std::lock_guard lock(impl_->mu);
    if (generation == impl_->generation) {
      // The entries first, the listing last: eviction takes the oldest first,
      // and the listing is what the entries came with.
      for (const DirEntry& e : *r) {
        // An entry without attributes to stand on is looked up on its own.
        if (e.attr_complete) impl_->StoreStatLocked(JoinPath(dir, e.name), e.attr, now);
      }
      impl_->StoreListLocked(dir, *r, now);
      impl_->EvictLocked(options_.max_entries);
    }
  }
  return r;
}

Result<OpenFileRef> AttrCacheBackend::open(const std::string& path, int flags) {
  const Clock::time_point now = now_();
  uint64_t generation;
  {
    std::lock_guard lock(impl_->mu);
    generation = impl_->generation;
  }
  auto r = inner().open(path, flags);
  std::lock_guard lock(impl_->mu);
  const bool fresh = generation == impl_->generation;
  if (flags & O_TRUNC) impl_->DropLocked(path, false);
  if (r.ok() && fresh) {
    // The attributes the open came with are the newest there are.
    impl_->StoreStatLocked(path, (*r)->attr(), now);
    impl_->EvictLocked(options_.max_entries);
  }
  return r;
}

Result<OpenFileRef> AttrCacheBackend::create(const std::string& path, int flags, mode_t mode) {
  const Clock::time_point now = now_();
  uint64_t generation;
  {
    std::lock_guard lock(impl_->mu);
    generation = impl_->generation;
  }
  auto r = inner().create(path, flags, mode);
  std::lock_guard lock(impl_->mu);
  const bool fresh = generation == impl_->generation;
  impl_->DropLocked(path, false);
  if (r.ok() && fresh) {
    impl_->StoreStatLocked(path, (*r)->attr(), now);
    impl_->EvictLocked(options_.max_entries);
  }
  return r;
}

// Changes are dropped whatever the answer: a call that failed on the way back
// may have been made at the source.

Result<WriteResult> AttrCacheBackend::write(OpenFile& f, uint64_t offset, std::span<const char> data) {
  auto r = inner().write(f, offset, data);
  std::lock_guard lock(impl_->mu);
  impl_->DropIdentityLocked(f.attr().identity);
  return r;
}

Status AttrCacheBackend::fallocate(OpenFile& f, int mode, uint64_t offset, uint64_t length) {
  Status s = inner().fallocate(f, mode, offset, length);
  std::lock_guard lock(impl_->mu);
  impl_->DropIdentityLocked(f.attr().identity);
  return s;
}

Result<Attr> AttrCacheBackend::setattr(const std::string& path, const SetAttr& change, OpenFile* f) {
  auto r = inner().setattr(path, change, f);
  std::lock_guard lock(impl_->mu);
  impl_->DropLocked(path, false);
  if (f != nullptr) impl_->DropIdentityLocked(f->attr().identity);
  return r;
}

Result<Attr> AttrCacheBackend::mkdir(const std::string& path, mode_t mode) {
  auto r = inner().mkdir(path, mode);
  Drop(path);
  return r;
}

Result<Attr> AttrCacheBackend::mknod(const std::string& path, mode_t mode, dev_t rdev) {
  auto r = inner().mknod(path, mode, rdev);
  Drop(path);
  return r;
}

Result<Attr> AttrCacheBackend::symlink(const std::string& target, const std::string& path) {
  auto r = inner().symlink(target, path);
  Drop(path);
  return r;
}

Status AttrCacheBackend::unlink(const std::string& path) {
  Status s = inner().unlink(path);
  Drop(path);
  return s;
}

Status AttrCacheBackend::rmdir(const std::string& path) {
  Status s = inner().rmdir(path);
  Drop(path, true);
  return s;
}

Status AttrCacheBackend::rename(const std::string& from, const std::string& to, unsigned flags) {
  Status s = inner().rename(from, to, flags);
  std::lock_guard lock(impl_->mu);
  impl_->DropLocked(from, true);
  impl_->DropLocked(to, true);
  return s;
}

Result<Attr> AttrCacheBackend::link(const std::string& existing, const std::string& newpath) {
  auto r = inner().link(existing, newpath);
  std::lock_guard lock(impl_->mu);
  impl_->DropLocked(existing, false);
  impl_->DropLocked(newpath, false);
  return r;
}

Status AttrCacheBackend::setxattr(const std::string& path, const std::string& name, const std::string& value, int flags,
                                  OpenFile* f) {
  Status s = inner().setxattr(path, name, value, flags, f);
  std::lock_guard lock(impl_->mu);
  impl_->DropLocked(path, false);
  if (f != nullptr) impl_->DropIdentityLocked(f->attr().identity);
  return s;
}

Status AttrCacheBackend::removexattr(const std::string& path, const std::string& name, OpenFile* f) {
  Status s = inner().removexattr(path, name, f);
  std::lock_guard lock(impl_->mu);
  impl_->DropLocked(path, false);
  if (f != nullptr) impl_->DropIdentityLocked(f->attr().identity);
  return s;
}

}  // namespace cachefuse::netfs
