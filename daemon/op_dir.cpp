// Operations on directories: opendir, readdir and readdirplus.
#include "daemon/filesystem.h"

namespace cachefuse::daemon {

Result<DirHandle*> Filesystem::OpenDir(fuse_ino_t ino) {
  auto path = inodes_.Path(ino);
  if (!path.ok()) return path.status();
  auto entries = backend_->list(*path);
  if (!entries.ok()) return entries.status();
  auto* dh = new DirHandle;
  dh->entries = std::move(entries.value());
  return Track(dh);
}

Result<size_t> Filesystem::ReadDir(fuse_req_t req, fuse_ino_t ino, DirHandle* dh, off_t off, char* buf, size_t size,
                                   bool plus) {
  size_t pos = 0;
  const size_t total = dh->entries.size() + 2;  // ".", "..", then the source's entries
  for (size_t i = static_cast<size_t>(off); i < total; ++i) {
    const bool dot = i < 2;
    const char* name = i == 0 ? "." : i == 1 ? ".." : dh->entries[i - 2].name.c_str();
    const off_t next = static_cast<off_t>(i + 1);
    size_t len = 0;
    if (plus) {
      fuse_entry_param e{};
      if (dot) {
        // No lookup for "." and "..": ino 0 tells the kernel to take only the name.
        e.attr.st_mode = S_IFDIR;
        e.attr.st_ino = i == 0 ? ino : 1;
      } else if (!dh->entries[i - 2].attr_complete) {
        // The listing gave no attributes to stand on: the name and type only,
        // and the kernel looks the entry up (a stat at the source) when it needs more.
        e.attr.st_mode = dh->entries[i - 2].attr.st.st_mode & S_IFMT;
        e.attr.st_ino = dh->entries[i - 2].attr.st.st_ino;
      } else {
        auto entry = Remember(ino, dh->entries[i - 2].name, dh->entries[i - 2].attr);
        if (!entry.ok()) continue;
        e = entry->param;
      }
      len = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, next);
      if (len > size - pos) {
        if (!dot) Forget(e.ino, 1);  // did not fit: the kernel never saw this lookup
        break;
      }
    } else {
      struct stat st {};
      if (dot) {
        st.st_mode = S_IFDIR;
        st.st_ino = i == 0 ? ino : 1;
      } else {
        st = dh->entries[i - 2].attr.st;
      }
      len = fuse_add_direntry(req, buf + pos, size - pos, name, &st, next);
      if (len > size - pos) break;
    }
    pos += len;
  }
  return pos;
}

}  // namespace cachefuse::daemon
