// InodeTable: the FUSE inode numbers of this mount, their names and lookup counts.
//
// Each inode is one file of the source (by the backend's identity), known under
// one or more (parent, name) aliases; its path is built from the first alias,
// the one most recently found on the source.
// One mutex guards the table and every Inode's mutable fields.
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/cookie.h"
#include "common/status.h"
#include "netfs_backends/backend.h"

namespace cachefuse::daemon {

struct Inode {
  Inode(fuse_ino_t i, std::string id, mode_t t) : ino(i), identity(std::move(id)), type(t) {}
  const fuse_ino_t ino;
  const std::string identity;
  const mode_t type;        // S_IFMT bits
  cache::CookieRef cookie;  // regular files; set when the inode is made
  // The cookie was invalidated outside an open (getattr, lookup): the kernel's
  // page cache of the file may be stale, so the next open must not keep it.
  std::atomic<bool> page_cache_stale{false};
  // Guarded by InodeTable::mu_:
  std::vector<std::pair<fuse_ino_t, std::string>> names;  // (parent, name) aliases
  uint64_t nlookup = 0;
  bool unlinked = false;  // its last name was removed: retire the cache object on forget
  std::vector<std::weak_ptr<netfs::OpenFile>> open_files;  // for fstat-like calls once the name is gone
};
using InodeRef = std::shared_ptr<Inode>;

class InodeTable {
 public:
  explicit InodeTable(std::string root_identity);

  InodeRef Get(fuse_ino_t ino) const;
  // Finds or makes the inode of `identity` and records (parent, name) as one of
  // its names; the lookup count goes up by one. make_cookie runs for new regular files.
  InodeRef Remember(const std::string& identity, mode_t type, fuse_ino_t parent, const std::string& name,
                    const std::function<cache::CookieRef()>& make_cookie);
  // Drops n lookups; returns the inode when it leaves the table (count reached 0).
  InodeRef Forget(fuse_ino_t ino, uint64_t n);
  // The inode's path relative to the source root ("" for the root).
  Result<std::string> Path(fuse_ino_t ino) const;
  Result<std::string> ChildPath(fuse_ino_t parent, const std::string& name) const;
  // The name (parent, name) is gone. last_link: the file itself is gone.
  void RemoveName(fuse_ino_t parent, const std::string& name, bool last_link);
  // A rename happened on the source (flags as renameat2).
  void Rename(fuse_ino_t parent, const std::string& name, fuse_ino_t newparent, const std::string& newname,
              unsigned flags);
  InodeRef FindByIdentity(const std::string& identity) const;
  size_t size() const;
  // Open files of an inode: an inode whose name is gone is reached through them.
  void AddOpenFile(const InodeRef& inode, const netfs::OpenFileRef& file);
  netfs::OpenFileRef AnyOpenFile(fuse_ino_t ino) const;
  // Empties the table (at unmount); returns what was in it.
  std::vector<InodeRef> Clear();

 private:
  Result<std::string> PathLocked(fuse_ino_t ino) const;
  void UnindexNameLocked(fuse_ino_t parent, const std::string& name);

  mutable std::mutex mu_;
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;                            // guarded by mu_
  std::unordered_map<fuse_ino_t, InodeRef> inodes_;                   // guarded by mu_
  std::unordered_map<std::string, fuse_ino_t> by_identity_;           // guarded by mu_
  std::map<std::pair<fuse_ino_t, std::string>, fuse_ino_t> by_name_;  // guarded by mu_
};

}  // namespace cachefuse::daemon
