// The FUSE handlers: decode the request, call one Filesystem function, reply.
// No exception and no Status crosses this line: errors become errnos here.
#include "daemon/fuse_ops.h"

#include <spdlog/spdlog.h>
#include <sys/xattr.h>

#include <vector>

#include "daemon/filesystem.h"
#include "daemon/fuse_errno.h"

namespace cachefuse::daemon {
namespace {

Filesystem& Fs(fuse_req_t req) {
  return *static_cast<Filesystem*>(fuse_req_userdata(req));
}
FileHandle* Fh(const fuse_file_info* fi) {
  return fi ? reinterpret_cast<FileHandle*>(fi->fh) : nullptr;
}
DirHandle* Dh(const fuse_file_info* fi) {
  return reinterpret_cast<DirHandle*>(fi->fh);
}

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid};
}

void ReplyStatus(fuse_req_t req, const Status& st) {
  fuse_reply_err(req, FuseErrno(st));
}

void ReplyEntry(fuse_req_t req, const Result<Entry>& r) {
  if (!r.ok()) return ReplyStatus(req, r.status());
  fuse_reply_entry(req, &r.value().param);
}

void ReplyAttr(fuse_req_t req, const Result<struct stat>& r, double timeout) {
  if (!r.ok()) return ReplyStatus(req, r.status());
  fuse_reply_attr(req, &r.value(), timeout);
}

void ReplyXattrValue(fuse_req_t req, const Result<std::string>& r, size_t size) {
  if (!r.ok()) return ReplyStatus(req, r.status());
  if (size == 0) return (void)fuse_reply_xattr(req, r->size());
  if (r->size() > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, r->data(), r->size());
}

void Init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<Filesystem*>(userdata);
  // Write-through: no writeback cache. The kernel page cache of unchanged files is
  // kept (keep_cache on open); changed mtime/size in attributes drop it.
  if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  conn->max_write = 1 << 20;
  conn->max_readahead = std::max<unsigned>(conn->max_readahead, 1u << 20);
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  (void)fs;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = Fs(req).Lookup(parent, name);
  if (!r.ok() && FuseErrno(r.status()) == ENOENT && Fs(req).options().negative_timeout > 0) {
    fuse_entry_param e{};
    e.ino = 0;  // a negative entry the kernel may remember
    e.entry_timeout = Fs(req).options().negative_timeout;
    fuse_reply_entry(req, &e);
    return;
  }
  ReplyEntry(req, r);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Fs(req).Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Fs(req).Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = Fs(req).GetAttr(ino, Fh(fi));
  if (!r.ok()) return ReplyStatus(req, r.status());
  fuse_reply_attr(req, &r->st, r->timeout);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  ReplyAttr(req, Fs(req).SetAttr(ino, *attr, to_set, Fh(fi)), Fs(req).options().attr_timeout);
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  auto r = Fs(req).ReadLink(ino);
  if (!r.ok()) return ReplyStatus(req, r.status());
  fuse_reply_readlink(req, r->c_str());
}

void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  ReplyEntry(req, Fs(req).MkNod(parent, name, mode, rdev, CallerOf(req)));
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  ReplyEntry(req, Fs(req).MkDir(parent, name, mode, CallerOf(req)));
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Fs(req).Unlink(parent, name));
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Fs(req).RmDir(parent, name));
}

void SymLink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  ReplyEntry(req, Fs(req).SymLink(link, parent, name, CallerOf(req)));
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
            unsigned int flags) {
  ReplyStatus(req, Fs(req).Rename(parent, name, newparent, newname, flags));
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  ReplyEntry(req, Fs(req).Link(ino, newparent, newname));
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  bool keep_cache = false;
  auto r = Fs(req).Open(ino, fi->flags, &keep_cache);
  if (!r.ok()) return ReplyStatus(req, r.status());
  fi->fh = reinterpret_cast<uint64_t>(*r);
  fi->keep_cache = keep_cache;
  if (fuse_reply_open(req, fi) != 0) Fs(req).Release(*r);  // the opener went away
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  auto r = Fs(req).Create(parent, name, mode, fi->flags, CallerOf(req));
  if (!r.ok()) return ReplyStatus(req, r.status());
  fi->fh = reinterpret_cast<uint64_t>(r->second);
  if (fuse_reply_create(req, &r->first.param, fi) != 0) {
    Fs(req).Release(r->second);
    Fs(req).Forget(r->first.param.ino, 1);
  }
}

void Read(fuse_req_t req, fuse_ino_t /*ino*/, size_t size, off_t off, fuse_file_info* fi) {
  cache::ReadReply reply;
  Status st = Fs(req).Read(Fh(fi), static_cast<uint64_t>(off), size, &reply);
  if (!st.ok()) return ReplyStatus(req, st);
  if (reply.iovcnt() == 0) {
    fuse_reply_buf(req, nullptr, 0);
  } else {
    fuse_reply_iov(req, reply.iov(), reply.iovcnt());
  }
  // reply's destructor returns the slots now that the kernel has the bytes.
}

void Write(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  auto r = Fs(req).Write(Fh(fi), static_cast<uint64_t>(off), buf, size);
  if (!r.ok()) return ReplyStatus(req, r.status());
  fuse_reply_write(req, *r);
}

void Flush(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  // Write-through: nothing is buffered here, but the source may report
  // write-back errors at close (a kernel NFS mount does).
  ReplyStatus(req, Fs(req).Flush(Fh(fi)));
}

void Release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  Fs(req).Release(Fh(fi));
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t /*ino*/, int datasync, fuse_file_info* fi) {
  ReplyStatus(req, Fs(req).Fsync(Fh(fi), datasync != 0));
}

void Fallocate(fuse_req_t req, fuse_ino_t /*ino*/, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  ReplyStatus(req, Fs(req).Fallocate(Fh(fi), mode, static_cast<uint64_t>(offset), static_cast<uint64_t>(length)));
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = Fs(req).OpenDir(ino);
  if (!r.ok()) return ReplyStatus(req, r.status());
  fi->fh = reinterpret_cast<uint64_t>(*r);
  if (fuse_reply_open(req, fi) != 0) Fs(req).ReleaseDir(*r);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  thread_local std::vector<char> buf;
  buf.resize(size);
  auto r = Fs(req).ReadDir(req, ino, Dh(fi), off, buf.data(), size, plus);
  if (!r.ok()) return ReplyStatus(req, r.status());
  fuse_reply_buf(req, buf.data(), *r);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, ino, size, off, fi, false);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, ino, size, off, fi, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  Fs(req).ReleaseDir(Dh(fi));
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, 0);
}

void StatFs(fuse_req_t req, fuse_ino_t ino) {
  auto r = Fs(req).StatFs(ino);
  if (!r.ok()) return ReplyStatus(req, r.status());
  fuse_reply_statfs(req, &r.value());
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  ReplyStatus(req, Fs(req).SetXattr(ino, name, std::string(value, size), flags));
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  ReplyXattrValue(req, Fs(req).GetXattr(ino, name), size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  ReplyXattrValue(req, Fs(req).ListXattr(ino), size);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  ReplyStatus(req, Fs(req).RemoveXattr(ino, name));
}

void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  ReplyStatus(req, Fs(req).Access(ino, mask));
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = ReadLink;
  ops.mknod = MkNod;
  ops.mkdir = MkDir;
  ops.unlink = Unlink;
  ops.rmdir = RmDir;
  ops.symlink = SymLink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.fallocate = Fallocate;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  ops.access = Access;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& FuseOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace cachefuse::daemon
