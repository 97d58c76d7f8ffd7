// Spool: one streamed copy of a file in an unlinked temporary file.
#include "netfs_backends/http/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace cachefuse::netfs::http {

Spool::~Spool() {
  cancel_.store(true);
  std::thread t;
  {
    std::lock_guard lk(mu_);
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

Status Spool::OpenFileLocked() {
  if (fd_.valid()) return Status::Ok();
  std::vector<std::string> dirs;
  if (const char* t = std::getenv("TMPDIR"); t && *t == '/') dirs.emplace_back(t);
  dirs.emplace_back("/var/tmp");
  dirs.emplace_back("/tmp");
  int err = 0;
  for (const std::string& d : dirs) {
    int fd = ::open(d.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
      fd_.reset(fd);
      return Status::Ok();
    }
    err = errno;
  }
  return Status::FromErrno(
      err, std::string("no temporary file for a server without Range (TMPDIR, /var/tmp): ") + std::strerror(err));
}

bool Spool::Accept(uint64_t pos, const char* data, size_t n) {
  if (cancel_.load(std::memory_order_relaxed)) return false;
  uint64_t filled;
  {
    std::lock_guard lk(mu_);
    filled = filled_;
  }
  if (pos + n > size_) {
    write_error_ = Status::Stale("the body is longer than the file's size at open");
    return false;
  }
  if (pos + n <= filled) return true;  // spooled by an earlier fill
  const size_t skip = pos < filled ? static_cast<size_t>(filled - pos) : 0;
  const char* p = data + skip;
  size_t left = n - skip;
  uint64_t at = pos + skip;
  while (left > 0) {
    ssize_t w = ::pwrite(fd_.get(), p, left, static_cast<off_t>(at));
    if (w < 0) {
      if (errno == EINTR) continue;
      write_error_ =
          Status::FromErrno(errno, std::string("temporary file of a server without Range: ") + std::strerror(errno));
      return false;
    }
    p += w;
    left -= static_cast<size_t>(w);
    at += static_cast<uint64_t>(w);
  }
  {
    std::lock_guard lk(mu_);
    filled_ = at;
  }
  cv_.notify_all();
  return true;
}

void Spool::Run() {
  write_error_ = Status::Ok();
  Status s = fill_(*this);
  if (!write_error_.ok()) s = write_error_;
  std::lock_guard lk(mu_);
  running_ = false;
  if (s.ok() && filled_ < size_) s = Status::Transient(EIO, "the body ended before the file's size at open");
  failed_ = s;
  cv_.notify_all();
}

Result<size_t> Spool::Read(uint64_t offset, std::span<const struct iovec> bufs, size_t want, Deadline deadline) {
  const uint64_t need = std::min(offset + want, size_);
  {
    std::unique_lock lk(mu_);
    if (Status s = OpenFileLocked(); !s.ok()) return s;
    bool started = false;
    while (filled_ < need) {
      if (!running_) {
        // A stale version never gets better; anything else is tried again
        // once per call (the retry policy decides how often).
        if (failed_.kind() == Status::Kind::kStale || (started && !failed_.ok())) return failed_;
        if (started) return Status::Transient(EIO, "the body ended early");
        if (thread_.joinable()) thread_.join();  // it has finished: running_ is false
        failed_ = Status::Ok();
        running_ = true;
        started = true;
        thread_ = std::thread([this] { Run(); });
        continue;
      }
      started = true;
      if (deadline == kNoDeadline) {
        cv_.wait(lk);
      } else if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && filled_ < need) {
        return Status::Timeout("waiting for a server without Range to stream up to byte " + std::to_string(need));
      }
    }
  }
  // Bytes below filled_ never change: read them without the lock.
  thread_local std::vector<struct iovec> iov;
  iov.clear();
  size_t left = static_cast<size_t>(need - offset);
  for (const struct iovec& v : bufs) {
    if (left == 0) break;
    const size_t n = std::min(left, v.iov_len);
    iov.push_back({v.iov_base, n});
    left -= n;
  }
  size_t done = 0;
  const size_t total = static_cast<size_t>(need - offset);
  size_t first = 0;
  while (done < total) {
    ssize_t r = ::preadv(fd_.get(), iov.data() + first, static_cast<int>(iov.size() - first),
                         static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, std::string("temporary file of a server without Range: ") + std::strerror(errno));
    }
    if (r == 0) return Status::FromErrno(EIO, "temporary file shorter than what was spooled");
    done += static_cast<size_t>(r);
    size_t adv = static_cast<size_t>(r);
    while (adv > 0 && first < iov.size()) {
      if (adv >= iov[first].iov_len) {
        adv -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + adv;
        iov[first].iov_len -= adv;
        adv = 0;
      }
    }
  }
  return done;
}

}  // namespace cachefuse::netfs::http
