// InodeTable: identity -> inode, (parent, name) -> inode, and paths.
#include "daemon/inode_table.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

namespace cachefuse::daemon {

InodeTable::InodeTable(std::string root_identity) {
  auto root = std::make_shared<Inode>(FUSE_ROOT_ID, root_identity, S_IFDIR);
  root->nlookup = 1;  // the root is never forgotten
  inodes_[FUSE_ROOT_ID] = root;
  by_identity_[root_identity] = FUSE_ROOT_ID;
}

InodeRef InodeTable::Get(fuse_ino_t ino) const {
  std::lock_guard lk(mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

InodeRef InodeTable::FindByIdentity(const std::string& identity) const {
  std::lock_guard lk(mu_);
  auto it = by_identity_.find(identity);
  if (it == by_identity_.end()) return nullptr;
  auto in = inodes_.find(it->second);
  return in == inodes_.end() ? nullptr : in->second;
}

size_t InodeTable::size() const {
  std::lock_guard lk(mu_);
  return inodes_.size();
}

InodeRef InodeTable::Remember(const std::string& identity, mode_t type, fuse_ino_t parent, const std::string& name,
                              const std::function<cache::CookieRef()>& make_cookie) {
  std::unique_lock lk(mu_);
  InodeRef inode;
  if (auto it = by_identity_.find(identity); it != by_identity_.end()) {
    inode = inodes_.at(it->second);
    if (inode->type != type) {
      // The source reused the identity for a different kind of file: a new inode.
      by_identity_.erase(it);
      inode.reset();
    }
  }
  if (!inode) {
    lk.unlock();
    cache::CookieRef cookie = (S_ISREG(type) && make_cookie) ? make_cookie() : nullptr;
    lk.lock();
    if (auto it = by_identity_.find(identity); it != by_identity_.end()) {
      inode = inodes_.at(it->second);  // made meanwhile by another thread
    } else {
      inode = std::make_shared<Inode>(next_ino_++, identity, type);
      inode->cookie = std::move(cookie);
      inodes_[inode->ino] = inode;
      by_identity_[identity] = inode->ino;
    }
  }
  inode->nlookup++;
  auto key = std::make_pair(parent, name);
  auto named = by_name_.find(key);
  if (named == by_name_.end() || named->second != inode->ino) {
    if (named != by_name_.end()) {
      // The name now belongs to another file: the old one loses it.
      if (auto old = inodes_.find(named->second); old != inodes_.end()) {
        auto& n = old->second->names;
        n.erase(std::remove(n.begin(), n.end(), key), n.end());
      }
    }
    by_name_[key] = inode->ino;
    inode->names.push_back(key);
  }
  // The name the source just answered for is the inode's path from now on: an
  // older name may be gone (a file removed at the source whose inode number a
  // new file reuses keeps the old name here until the kernel forgets it).
  if (auto at = std::find(inode->names.begin(), inode->names.end(), key); at != inode->names.begin()) {
    std::rotate(inode->names.begin(), at, at + 1);
  }
  if (inode->ino != FUSE_ROOT_ID) inode->unlinked = false;
  return inode;
}

InodeRef InodeTable::Forget(fuse_ino_t ino, uint64_t n) {
  std::lock_guard lk(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end() || ino == FUSE_ROOT_ID) return nullptr;
  InodeRef inode = it->second;
  if (inode->nlookup < n) {
    // The kernel never forgets more than it looked up; a broken count is a bug here.
    std::abort();
  }
  inode->nlookup -= n;
  if (inode->nlookup > 0) return nullptr;
  for (const auto& key : inode->names) {
    auto named = by_name_.find(key);
    if (named != by_name_.end() && named->second == ino) by_name_.erase(named);
  }
  inode->names.clear();
  if (auto id = by_identity_.find(inode->identity); id != by_identity_.end() && id->second == ino) {
    by_identity_.erase(id);
  }
  inodes_.erase(it);
  return inode;
}

void InodeTable::AddOpenFile(const InodeRef& inode, const netfs::OpenFileRef& file) {
  std::lock_guard lk(mu_);
  auto& v = inode->open_files;
  v.erase(std::remove_if(v.begin(), v.end(), [](const auto& w) { return w.expired(); }), v.end());
  v.push_back(file);
}

netfs::OpenFileRef InodeTable::AnyOpenFile(fuse_ino_t ino) const {
  std::lock_guard lk(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return nullptr;
  for (const auto& w : it->second->open_files) {
    if (auto f = w.lock()) return f;
  }
  return nullptr;
}

std::vector<InodeRef> InodeTable::Clear() {
  std::lock_guard lk(mu_);
  std::vector<InodeRef> all;
  all.reserve(inodes_.size());
  for (auto& [ino, inode] : inodes_) all.push_back(inode);
  inodes_.clear();
  by_identity_.clear();
  by_name_.clear();
  return all;
}

Result<std::string> InodeTable::PathLocked(fuse_ino_t ino) const {
  std::vector<const std::string*> parts;
  for (int depth = 0; ino != FUSE_ROOT_ID; ++depth) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end() || depth > 4096) return Status::FromErrno(ESTALE, "inode gone");
    // No name left (replaced or removed on the source): ESTALE makes the kernel
    // look the path up again (LOOKUP_REVAL) and find the truth.
    if (it->second->names.empty()) return Status::FromErrno(ESTALE, "file has no name any more");
    const auto& [parent, name] = it->second->names.front();
    parts.push_back(&name);
    ino = parent;
  }
  std::string path;
  for (auto p = parts.rbegin(); p != parts.rend(); ++p) {
    if (!path.empty()) path += '/';
    path += **p;
  }
  return path;
}

Result<std::string> InodeTable::Path(fuse_ino_t ino) const {
  std::lock_guard lk(mu_);
  return PathLocked(ino);
}

Result<std::string> InodeTable::ChildPath(fuse_ino_t parent, const std::string& name) const {
  std::lock_guard lk(mu_);
  auto p = PathLocked(parent);
  if (!p.ok()) return p;
  return p->empty() ? name : *p + "/" + name;
}

void InodeTable::UnindexNameLocked(fuse_ino_t parent, const std::string& name) {
  auto key = std::make_pair(parent, name);
  auto it = by_name_.find(key);
  if (it == by_name_.end()) return;
  if (auto in = inodes_.find(it->second); in != inodes_.end()) {
    auto& n = in->second->names;
    n.erase(std::remove(n.begin(), n.end(), key), n.end());
  }
  by_name_.erase(it);
}

void InodeTable::RemoveName(fuse_ino_t parent, const std::string& name, bool last_link) {
  std::lock_guard lk(mu_);
  auto it = by_name_.find(std::make_pair(parent, name));
  if (it == by_name_.end()) return;
  auto in = inodes_.find(it->second);
  if (in != inodes_.end() && last_link) in->second->unlinked = true;
  UnindexNameLocked(parent, name);
}

void InodeTable::Rename(fuse_ino_t parent, const std::string& name, fuse_ino_t newparent, const std::string& newname,
                        unsigned flags) {
  std::lock_guard lk(mu_);
  auto from = std::make_pair(parent, name);
  auto to = std::make_pair(newparent, newname);
  auto a = by_name_.find(from);
  auto b = by_name_.find(to);
  fuse_ino_t ino_a = a == by_name_.end() ? 0 : a->second;
  fuse_ino_t ino_b = b == by_name_.end() ? 0 : b->second;
  auto rename_one = [&](fuse_ino_t ino, const std::pair<fuse_ino_t, std::string>& old_key,
                        const std::pair<fuse_ino_t, std::string>& new_key) {
    auto in = inodes_.find(ino);
    if (in == inodes_.end()) return;
    for (auto& n : in->second->names) {
      if (n == old_key) n = new_key;
    }
    by_name_[new_key] = ino;
  };
  if (flags & RENAME_EXCHANGE) {
    if (ino_a) by_name_.erase(from);
    if (ino_b) by_name_.erase(to);
    if (ino_a) rename_one(ino_a, from, to);
    if (ino_b) rename_one(ino_b, to, from);
    return;
  }
  if (ino_b) UnindexNameLocked(newparent, newname);  // replaced; its unlinked flag is set by the caller
  if (ino_a) {
    by_name_.erase(from);
    rename_one(ino_a, from, to);
  }
}

}  // namespace cachefuse::daemon
