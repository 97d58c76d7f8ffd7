// Filesystem: the state of one mount and its operations, as functions that
// return values. The FUSE handlers (fuse_ops.cpp) decode, call one of these,
// and reply; errors become errnos only there.
//
// Lock order: InodeTable::mu_ is a leaf towards cache/ (never held while calling
// into the cache or the backend).
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cache/cache.h"
#include "cache/cookie.h"
#include "cache/fetcher.h"
#include "cache/read_helper.h"
#include "cache/volume.h"
#include "daemon/inode_table.h"
#include "daemon/mount_options.h"
#include "daemon/source_stack.h"
#include "netfs_backends/backend.h"

namespace cachefuse::daemon {

// What the caller of an operation is (for ownership of new files).
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct FileHandle {
  InodeRef inode;
  netfs::OpenFileRef file;
  cache::UseToken use;        // the cookie's generation this open reads (regular files with a cookie)
  cache::FetcherRef fetcher;  // how the read helper fetches this open's misses
  cache::StreamState stream;
  bool writable = false;
  std::atomic<bool> wrote{false};
  std::atomic<bool> stale_logged{false};  // "changed on the source" said once per open
};

struct DirHandle {
  std::vector<netfs::DirEntry> entries;
};

struct Entry {
  fuse_entry_param param{};
};

// Attributes for a getattr reply and how long the kernel may keep them.
struct AttrReply {
  struct stat st {};
  double timeout = 0;
};

class Filesystem {
 public:
  // source: the bare source; the filesystem puts the shared layers around it
  // (BuildSourceStack).
  Filesystem(MountOptions options, std::unique_ptr<netfs::Backend> source, std::unique_ptr<cache::Cache> cache,
             std::shared_ptr<cache::Volume> volume);
  ~Filesystem();

  // The session, for kernel cache invalidation notices (set once mounted).
  void set_session(fuse_session* se) { session_ = se; }
  // Stops background threads and lets go of every inode and cookie; then the
  // cache persists its state. Call after the FUSE loop ended.
  void Shutdown();

  // How the source answered the stat of its root at construction, through
  // the retry policy: a mount whose source does not answer fails with it.
  const Status& root_status() const { return root_status_; }
  const MountOptions& options() const { return options_; }
  cache::Cache& cache() { return *cache_; }
  netfs::Backend& backend() { return *backend_; }
  // Every counter of cachefusectl stats: the cache's, then backend.*.
  std::vector<std::pair<std::string, std::string>> StatsSnapshot() const;
  InodeTable& inodes() { return inodes_; }
  cache::ReadHelper& read_helper() { return *read_helper_; }

  // --- entries and attributes (op_entry.cpp)
  Result<Entry> Lookup(fuse_ino_t parent, const std::string& name);
  void Forget(fuse_ino_t ino, uint64_t nlookup);
  Result<AttrReply> GetAttr(fuse_ino_t ino, FileHandle* fh);
  Result<struct stat> SetAttr(fuse_ino_t ino, const struct stat& attr, int to_set, FileHandle* fh);
  Result<std::string> ReadLink(fuse_ino_t ino);
  Result<struct statvfs> StatFs(fuse_ino_t ino);
  Status Access(fuse_ino_t ino, int mask);

  // --- names (op_namespace.cpp)
  Result<Entry> MkDir(fuse_ino_t parent, const std::string& name, mode_t mode, const Caller& who);
  Result<Entry> MkNod(fuse_ino_t parent, const std::string& name, mode_t mode, dev_t rdev, const Caller& who);
  Result<Entry> SymLink(const std::string& target, fuse_ino_t parent, const std::string& name, const Caller& who);
  Result<Entry> Link(fuse_ino_t ino, fuse_ino_t newparent, const std::string& newname);
  Status Unlink(fuse_ino_t parent, const std::string& name);
  Status RmDir(fuse_ino_t parent, const std::string& name);
  Status Rename(fuse_ino_t parent, const std::string& name, fuse_ino_t newparent, const std::string& newname,
                unsigned flags);

  // --- files (op_file.cpp)
  Result<FileHandle*> Open(fuse_ino_t ino, int flags, bool* keep_cache);
  Result<std::pair<Entry, FileHandle*>> Create(fuse_ino_t parent, const std::string& name, mode_t mode, int flags,
                                               const Caller& who);
  Status Read(FileHandle* fh, uint64_t off, size_t size, cache::ReadReply* out);
  Result<size_t> Write(FileHandle* fh, uint64_t off, const char* data, size_t size);
  Status Fsync(FileHandle* fh, bool datasync);
  Status Flush(FileHandle* fh);
  Status Fallocate(FileHandle* fh, int mode, uint64_t off, uint64_t len);
  void Release(FileHandle* fh);

  // --- directories (op_dir.cpp)
  Result<DirHandle*> OpenDir(fuse_ino_t ino);
  // Fills buf with entries from offset off; plus: readdirplus (each entry is a lookup).
  Result<size_t> ReadDir(fuse_req_t req, fuse_ino_t ino, DirHandle* dh, off_t off, char* buf, size_t size, bool plus);
  void ReleaseDir(DirHandle* dh);

  // --- extended attributes (op_xattr.cpp)
  Result<std::string> GetXattr(fuse_ino_t ino, const std::string& name);
  Result<std::string> ListXattr(fuse_ino_t ino);  // NUL-separated names
  Status SetXattr(fuse_ino_t ino, const std::string& name, const std::string& value, int flags);
  Status RemoveXattr(fuse_ino_t ino, const std::string& name);

  // --- control (control_socket.cpp)
  // Drops the cached data of one file (path relative to the source); unless
  // cache_only, the kernel's page cache of it too.
  Status InvalidatePath(const std::string& path, bool cache_only);
  // Runs a culling pass now.
  Status Cull();
  // Where cachefusectl finds the control socket (the user.cachefuse.control xattr).
  void set_control_socket(std::string path) { control_socket_ = std::move(path); }
  const std::string& control_socket() const { return control_socket_; }

 private:
  // How long the kernel may keep attributes the source gave at attr.as_of: the
  // timeout less their age, so that our cache and the kernel's together never
  // keep them longer than the timeout.
  static double Remaining(double timeout, const netfs::Attr& attr);
  // Makes the entry reply for a file just found or made under (parent, name).
  Result<Entry> Remember(fuse_ino_t parent, const std::string& name, const netfs::Attr& attr);
  // The source says attr: if the file's data changed, invalidate its cache.
  void Revalidate(const InodeRef& inode, const netfs::Attr& attr);
  // Gives a file made by a root daemon to the caller (allow_other mounts).
  void ChownToCaller(const std::string& path, const Caller& who);
  Status CheckWritable() const;
  // The path of ino, or else an open file of it (a name-less inode that is
  // still open: fstat, fchmod, fsetxattr work as on a local filesystem).
  struct Target {
    std::string path;
    netfs::OpenFileRef file;  // set when there is no path
    netfs::OpenFile* handle() const { return file.get(); }
  };
  Result<Target> TargetOf(fuse_ino_t ino) const;
  void NoteMetadataChange(fuse_ino_t ino, const Target& target);
  // The cookie follows a change made through the mount (attributes from the source after it).
  void FollowWrite(FileHandle* fh, uint64_t off, uint64_t len, const netfs::Attr& attr);
  // Queues a kernel page-cache invalidation for ino (sent from a helper thread).
  void QueueKernelInval(fuse_ino_t ino);
  void NotifierLoop();

  const MountOptions options_;
  SourceStack stack_;
  netfs::Backend* const backend_;  // stack_.top
  std::unique_ptr<cache::Cache> cache_;
  std::shared_ptr<cache::Volume> volume_;
  std::unique_ptr<cache::ReadHelper> read_helper_;
  Status root_status_;  // the answer to the stat of the root made at construction (before inodes_)
  InodeTable inodes_;
  fuse_session* session_ = nullptr;
  std::string control_socket_;

  // Handles the kernel has not released yet; released at Shutdown (a daemon
  // stopped with files open must still unuse their cookies and persist them).
  std::mutex handles_mu_;
  std::unordered_set<FileHandle*> open_handles_;  // guarded by handles_mu_
  std::unordered_set<DirHandle*> open_dirs_;      // guarded by handles_mu_
  FileHandle* Track(FileHandle* fh);
  DirHandle* Track(DirHandle* dh);

  std::mutex notify_mu_;
  std::condition_variable notify_cv_;
  std::deque<fuse_ino_t> notify_queue_;  // guarded by notify_mu_
  bool notify_stop_ = false;             // guarded by notify_mu_
  std::thread notifier_;
  bool shut_down_ = false;
};

}  // namespace cachefuse::daemon
