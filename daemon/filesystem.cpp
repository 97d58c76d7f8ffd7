// Filesystem: construction, teardown and the helpers every operation shares.
#include "daemon/filesystem.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace cachefuse::daemon {
namespace {

std::string RootIdentity(netfs::Backend& backend, Status* status) {
  auto root = backend.stat("");
  *status = root.status();
  return root.ok() ? root->identity : std::string("root");
}

}  // namespace

Filesystem::Filesystem(MountOptions options, std::unique_ptr<netfs::Backend> source,
                       std::unique_ptr<cache::Cache> cache, std::shared_ptr<cache::Volume> volume)
    : options_(std::move(options)),
      stack_(BuildSourceStack(options_, std::move(source))),
      backend_(stack_.top.get()),
      cache_(std::move(cache)),
      volume_(std::move(volume)),
      read_helper_(std::make_unique<cache::ReadHelper>(cache_.get(), options_.ToReadHelperOptions())),
      inodes_(RootIdentity(*backend_, &root_status_)) {
  notifier_ = std::thread([this] { NotifierLoop(); });
}

Filesystem::~Filesystem() {
  Shutdown();
}

void Filesystem::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard lk(notify_mu_);
    notify_stop_ = true;
    notify_cv_.notify_all();
  }
  if (notifier_.joinable()) notifier_.join();
  session_ = nullptr;
  std::vector<FileHandle*> files;
  std::vector<DirHandle*> dirs;
  {
    std::lock_guard lk(handles_mu_);
    files.assign(open_handles_.begin(), open_handles_.end());
    dirs.assign(open_dirs_.begin(), open_dirs_.end());
  }
  for (FileHandle* fh : files) Release(fh);
  for (DirHandle* dh : dirs) ReleaseDir(dh);
  // Read-ahead jobs hold objects and backend handles: stop them first.
  read_helper_.reset();
  for (const InodeRef& inode : inodes_.Clear()) {
    if (inode->cookie) inode->cookie->Relinquish(false);
  }
  volume_.reset();
  cache_->Close();
}

std::vector<std::pair<std::string, std::string>> Filesystem::StatsSnapshot() const {
  auto out = cache_->stats().Snapshot();
  for (auto& kv : stack_.Snapshot()) out.push_back(std::move(kv));
  return out;
}

double Filesystem::Remaining(double timeout, const netfs::Attr& attr) {
  if (attr.as_of == netfs::Clock::time_point{}) return timeout;
  const double age = std::chrono::duration<double>(netfs::Clock::now() - attr.as_of).count();
  return std::max(0.0, timeout - age);
}

Result<Entry> Filesystem::Remember(fuse_ino_t parent, const std::string& name, const netfs::Attr& attr) {
  auto make_cookie = [&] { return volume_->Acquire(attr.identity, attr.coherency.bytes, attr.st.st_size); };
  InodeRef inode = inodes_.Remember(attr.identity, attr.st.st_mode & S_IFMT, parent, name, make_cookie);
  Revalidate(inode, attr);
  Entry e;
  e.param.ino = inode->ino;
  e.param.generation = 1;
  e.param.attr = attr.st;
  e.param.attr_timeout = Remaining(options_.attr_timeout, attr);
  e.param.entry_timeout = Remaining(options_.entry_timeout, attr);
  return e;
}

void Filesystem::Revalidate(const InodeRef& inode, const netfs::Attr& attr) {
  if (!inode->cookie || !S_ISREG(attr.st.st_mode)) return;
  if (inode->cookie->coherent_with(attr.coherency.bytes)) return;
  spdlog::debug("ino={} why=token-changed: invalidating cached data", inode->ino);
  inode->cookie->Invalidate(attr.coherency.bytes, static_cast<uint64_t>(attr.st.st_size));
  inode->page_cache_stale = true;  // the next open drops it, whatever the notice below does first
  QueueKernelInval(inode->ino);
}

void Filesystem::ChownToCaller(const std::string& path, const Caller& who) {
  if (::geteuid() != 0 || (who.uid == 0 && who.gid == 0)) return;
  netfs::SetAttr change;
  change.uid = who.uid;
  change.gid = who.gid;
  auto r = backend_->setattr(path, change, nullptr);
  if (!r.ok()) spdlog::debug("chown of new file {} to the caller failed: {}", path, r.status().ToString());
}

FileHandle* Filesystem::Track(FileHandle* fh) {
  std::lock_guard lk(handles_mu_);
  open_handles_.insert(fh);
  return fh;
}

DirHandle* Filesystem::Track(DirHandle* dh) {
  std::lock_guard lk(handles_mu_);
  open_dirs_.insert(dh);
  return dh;
}

void Filesystem::ReleaseDir(DirHandle* dh) {
  {
    std::lock_guard lk(handles_mu_);
    open_dirs_.erase(dh);
  }
  delete dh;
}

Result<Filesystem::Target> Filesystem::TargetOf(fuse_ino_t ino) const {
  auto path = inodes_.Path(ino);
  if (path.ok()) return Target{*path, nullptr};
  if (auto file = inodes_.AnyOpenFile(ino)) return Target{std::string(), file};
  return path.status();
}

Status Filesystem::CheckWritable() const {
  if (options_.read_only || !backend_->capabilities().writable) return Status::ReadOnly("read-only");
  return Status::Ok();
}

void Filesystem::QueueKernelInval(fuse_ino_t ino) {
  std::lock_guard lk(notify_mu_);
  notify_queue_.push_back(ino);
  notify_cv_.notify_one();
}

void Filesystem::NotifierLoop() {
  std::unique_lock lk(notify_mu_);
  for (;;) {
    notify_cv_.wait(lk, [&] { return notify_stop_ || !notify_queue_.empty(); });
    if (notify_stop_) return;
    fuse_ino_t ino = notify_queue_.front();
    notify_queue_.pop_front();
    fuse_session* se = session_;
    lk.unlock();
    // Not from a request handler: the kernel may hold page locks that a
    // pending read of ours must release first.
    if (se) fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
    lk.lock();
  }
}

}  // namespace cachefuse::daemon

namespace cachefuse::daemon {

Status Filesystem::InvalidatePath(const std::string& path, bool cache_only) {
  auto attr = backend_->stat(path);
  if (!attr.ok()) return attr.status();
  if (!S_ISREG(attr->st.st_mode)) return Status::FromErrno(EINVAL, path + " is not a regular file");
  cache::CookieRef cookie =
      volume_->Acquire(attr->identity, attr->coherency.bytes, static_cast<uint64_t>(attr->st.st_size));
  cookie->Forget();
  stack_.attrs->Drop(path);
  if (!cache_only) {
    if (InodeRef inode = inodes_.FindByIdentity(attr->identity)) QueueKernelInval(inode->ino);
  }
  return Status::Ok();
}

Status Filesystem::Cull() {
  return cache_->CullNow();
}

}  // namespace cachefuse::daemon
