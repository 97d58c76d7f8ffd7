// ReadHelper: granule slots, single-flight loads, write-to-cache and read-ahead.
#include "cache/read_helper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "cache/cache.h"
#include "cache/cookie.h"

namespace cachefuse::cache {

void Slot::ReadDone::OnIoComplete(ssize_t result) {
  slot->helper->OnCacheRead(slot, result);
}
void Slot::WriteDone::OnIoComplete(ssize_t result) {
  slot->helper->OnCacheWrite(slot, result);
}

std::string ReadReply::ToString() const {
  std::string s;
  s.reserve(bytes_);
  for (int i = 0; i < iovcnt_; ++i) s.append(static_cast<const char*>(iov_[i].iov_base), iov_[i].iov_len);
  return s;
}

void ReadReply::Release() {
  if (helper_ && nslots_ > 0) {
    std::shared_ptr<CacheObject> obj = obj_;  // outlives the lock below
    std::lock_guard lk(obj->mu());
    for (int i = 0; i < nslots_; ++i) {
      Slot* s = slots_[i];
      --s->refs;
      helper_->MaybeFreeLocked(s);
    }
  }
  nslots_ = 0;
  iovcnt_ = 0;
  bytes_ = 0;
  obj_.reset();
}

ReadHelper::ReadHelper(Cache* cache, ReadHelperOptions options)
    : cache_(cache), options_(options), granule_(cache->granule()), slots_(cache->pool().count()) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.helper = this;
    s.index = static_cast<int>(i);
    s.data = cache->pool().data(static_cast<int>(i));
    s.read_done.slot = &s;
    s.write_done.slot = &s;
  }
  unsigned n = std::max(1u, options_.max_backend_inflight);
  for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { Worker(); });
}

ReadHelper::~ReadHelper() {
  {
    std::unique_lock lk(jobs_mu_);
    idle_cv_.wait(lk, [&] { return pending_ == 0; });
    stopping_ = true;
    jobs_cv_.notify_all();
  }
  for (auto& t : workers_) t.join();
  // Granules kept for read-ahead stay linked into objects that outlive us.
  for (Slot& s : slots_) {
    std::shared_ptr<CacheObject> obj;
    {
      std::lock_guard lk(owners_mu_);
      obj = s.owner;
    }
    if (!obj) continue;
    std::lock_guard lk(obj->mu());
    if (s.owner != obj) continue;  // freed meanwhile (by the flusher)
    s.readahead = false;
    MaybeFreeLocked(&s);
  }
}

void ReadHelper::AddPending() {
  std::lock_guard lk(jobs_mu_);
  ++pending_;
}

void ReadHelper::DonePending() {
  std::lock_guard lk(jobs_mu_);
  if (--pending_ == 0) idle_cv_.notify_all();
}

Slot* ReadHelper::InitSlotLocked(CacheObject* obj, const std::shared_ptr<CacheObject>& ref,
                                 const netfs::OpenFileRef& file, int index, uint64_t g, bool readahead) {
  Slot* s = &slots_[static_cast<size_t>(index)];
  const uint64_t size = obj->SizeLocked();
  const uint64_t align = cache_->dio_align();
  {
    std::lock_guard olk(owners_mu_);
    s->owner = ref;
  }
  s->file = file;
  s->granule = g;
  s->len = static_cast<uint32_t>(std::min(granule_, size - g * granule_));
  s->io_len = static_cast<uint32_t>((s->len + align - 1) / align * align);
  s->state = Slot::State::kLoading;
  s->err = 0;
  s->refs = 0;
  s->waiters = 0;
  s->writing = false;
  s->readahead = readahead;
  s->from_cache = false;
  s->stale = false;
  s->fill_gen = obj->ModGenLocked();
  s->born = std::chrono::steady_clock::now();
  obj->LinkSlotLocked(s);
  return s;
}

void ReadHelper::MaybeFreeLocked(Slot* s) {
  if (s->refs > 0 || s->writing || s->state == Slot::State::kLoading) return;
  // A read-ahead granule waits in memory for the reader it was fetched for.
  if (s->linked && s->readahead && s->state == Slot::State::kReady && !s->stale) return;
  s->owner->UnlinkSlotLocked(s);
  {
    std::lock_guard olk(owners_mu_);
    s->owner.reset();  // callers hold their own reference to the object
  }
  s->file.reset();
  s->state = Slot::State::kIdle;
  s->readahead = false;
  cache_->pool().Release(s->index);
}

void ReadHelper::PlanReadahead(StreamState* stream, uint64_t off, uint64_t end, uint64_t granules, uint64_t* ra_from,
                               uint64_t* ra_to) {
  *ra_from = *ra_to = 0;
  if (options_.readahead == 0) return;
  std::lock_guard lk(stream->mu);
  const uint64_t window = options_.readahead;
  // The kernel's own read-ahead sends requests out of order across threads:
  // anything near where the stream is counts as sequential.
  bool seq = off == stream->next_off ||
             (stream->seq > 0 && off + window >= stream->next_off && off <= stream->next_off + window);
  if (seq) {
    ++stream->seq;
    stream->next_off = std::max(stream->next_off, end);
  } else {
    stream->seq = 0;
    stream->ra_next = 0;
    stream->next_off = end;
    return;
  }
  // One read at the start of a file is not yet a stream: read ahead from the
  // second sequential read on.
  if (stream->seq < 2) return;
  const uint64_t ra_granules = std::max<uint64_t>(1, window / granule_);
  const uint64_t g_end = (end + granule_ - 1) / granule_;
  uint64_t from = std::max(stream->ra_next, g_end);
  uint64_t to = std::min(g_end + ra_granules, granules);
  // Issue in batches of a quarter window, so that fetches are large.
  if (to > from && (to - from >= std::max<uint64_t>(1, ra_granules / 4) || to == granules)) {
    *ra_from = from;
    *ra_to = to;
    stream->ra_next = to;
  }
}

Status ReadHelper::Read(Cookie& cookie, const netfs::OpenFileRef& file, StreamState* stream, uint64_t off, size_t len,
                        ReadReply* out) {
  return Read(cookie.object(), file, stream, off, len, out);
}

Status ReadHelper::Read(const std::shared_ptr<CacheObject>& obj, const netfs::OpenFileRef& file, StreamState* stream,
                        uint64_t off, size_t len, ReadReply* out) {
  Stats& stats = cache_->stats();
  BufferPool& pool = cache_->pool();
  stats.read_requests++;
  out->Release();
  out->helper_ = this;
  out->obj_ = obj;
  const uint64_t G = granule_;

  std::unique_lock lk(obj->mu());
  uint64_t size = obj->SizeLocked();
  if (len == 0 || off >= size) return Status::Ok();
  uint64_t end = std::min<uint64_t>(off + len, size);
  const uint64_t g0 = off / G;
  uint64_t g1 = (end + G - 1) / G;
  if (g1 - g0 > static_cast<uint64_t>(ReadReply::kMaxSlots)) return Status::Invalid("read larger than 1 MiB");
  lk.unlock();

  uint64_t ra_from = 0;
  uint64_t ra_to = 0;
  if (stream) PlanReadahead(stream, off, end, (size + G - 1) / G, &ra_from, &ra_to);

  // Buffers for the granules that have no slot yet; taken before the slots are
  // made, without holding the object lock while waiting for the pool.
  int bufs[ReadReply::kMaxSlots];
  size_t have = 0;
  lk.lock();
  for (;;) {
    size = obj->SizeLocked();
    if (off >= size) return Status::Ok();
    end = std::min<uint64_t>(off + len, size);
    g1 = (end + G - 1) / G;
    size_t need = 0;
    for (uint64_t g = g0; g < g1; ++g) need += obj->FindSlotLocked(g) ? 0 : 1;
    if (need <= have) break;
    lk.unlock();
    pool.Acquire(need - have, bufs + have);
    have = need;
    lk.lock();
  }

  thread_local std::vector<Slot*> cache_reads;     // demand: read here, as one batch
  thread_local std::vector<Slot*> ra_cache_reads;  // read-ahead: asynchronous
  thread_local std::vector<Slot*> demand_fetch;
  thread_local std::vector<Slot*> ra_fetch;
  cache_reads.clear();
  ra_cache_reads.clear();
  demand_fetch.clear();
  ra_fetch.clear();
  for (uint64_t g = g0; g < g1; ++g) {
    Slot* s = obj->FindSlotLocked(g);
    if (!s) {
      s = InitSlotLocked(obj.get(), obj, file, bufs[--have], g, false);
      if (obj->PresentLocked(g)) {
        obj->BeginIoLocked();
        cache_reads.push_back(s);
      } else {
        demand_fetch.push_back(s);
      }
    }
    // Consumed, unless the request ends inside it: the rest of the granule is
    // kept for the next request (the kernel asks in pieces smaller than a granule),
    // if the pool can spare the buffer: kept granules never eat into the reserve
    // that demand reads rely on.
    s->readahead = g + 1 == g1 && end < std::min(size, (g + 1) * G) && pool.HasSpare();
    ++s->refs;
    out->slots_[out->nslots_++] = s;
  }
  for (uint64_t g = ra_from; g < ra_to && g * G < size; ++g) {
    if (obj->FindSlotLocked(g)) continue;
    int idx = pool.TryAcquire();
    if (idx < 0) break;
    Slot* s = InitSlotLocked(obj.get(), obj, file, idx, g, true);
    stats.readahead_bytes += s->len;
    if (obj->PresentLocked(g)) {
      obj->BeginIoLocked();
      ra_cache_reads.push_back(s);
    } else {
      ra_fetch.push_back(s);
    }
  }
  lk.unlock();
  while (have > 0) pool.Release(bufs[--have]);

  for (Slot* s : ra_cache_reads) SubmitCacheRead(s);
  if (!cache_reads.empty()) {
    // This thread waits for these anyway: one batch, read and completed here.
    thread_local std::vector<ReadOp> ops;
    ops.resize(cache_reads.size());
    for (size_t i = 0; i < cache_reads.size(); ++i) {
      Slot* s = cache_reads[i];
      if (s->io_len != s->len) stats.io_dio_misfit++;
      AddPending();  // OnCacheRead ends it, as for an asynchronous read
      ops[i] = ReadOp{s->owner->fd(), s->granule * G, s->data, s->io_len, s->index, 0};
    }
    cache_->engine().ReadBatchSync(ops.data(), ops.size());
    for (size_t i = 0; i < cache_reads.size(); ++i) OnCacheRead(cache_reads[i], ops[i].result);
  }
  // Runs of consecutive absent granules: one backend fetch each.
  const size_t max_run = std::max<uint64_t>(1, options_.max_fetch / G);
  for (size_t i = 0; i < ra_fetch.size();) {
    size_t j = i + 1;
    while (j < ra_fetch.size() && j - i < max_run && ra_fetch[j]->granule == ra_fetch[j - 1]->granule + 1) ++j;
    Enqueue(
        FetchJob{obj, file,
                 std::vector<Slot*>(ra_fetch.begin() + static_cast<long>(i), ra_fetch.begin() + static_cast<long>(j))});
    i = j;
  }
  for (size_t i = 0; i < demand_fetch.size();) {
    size_t j = i + 1;
    while (j < demand_fetch.size() && demand_fetch[j]->granule == demand_fetch[j - 1]->granule + 1) ++j;
    FetchRun(obj, file, demand_fetch.data() + i, j - i);
    i = j;
  }

  lk.lock();
  // Sleep until every slot has loaded. Completions wake readers only for slots
  // someone waits on, so read-ahead landing in the background wakes nobody.
  bool waiting[ReadReply::kMaxSlots];
  for (int i = 0; i < out->nslots_; ++i) {
    waiting[i] = out->slots_[i]->state == Slot::State::kLoading;
    if (waiting[i]) ++out->slots_[i]->waiters;
  }
  obj->cv().wait(lk, [&] {
    for (int i = 0; i < out->nslots_; ++i) {
      if (out->slots_[i]->state == Slot::State::kLoading) return false;
    }
    return true;
  });
  for (int i = 0; i < out->nslots_; ++i) {
    if (waiting[i]) --out->slots_[i]->waiters;
  }
  Status err;
  int hits = 0;
  int misses = 0;
  for (int i = 0; i < out->nslots_; ++i) {
    Slot* s = out->slots_[i];
    if (s->state == Slot::State::kFailed) {
      err = Status::FromErrno(s->err, "backend read");
      break;
    }
    (s->from_cache ? hits : misses)++;
    const uint64_t base = s->granule * G;
    const uint64_t a = std::max(off, base) - base;
    const uint64_t b = std::min<uint64_t>(end, base + s->len);
    if (b > base + a) {
      out->iov_[out->iovcnt_++] = {s->data + a, static_cast<size_t>(b - base - a)};
      out->bytes_ += b - base - a;
    }
    if (s->len < std::min(G, size - base)) break;  // the file ended early (changed on the source)
  }
  lk.unlock();
  if (!err.ok()) {
    out->Release();
    return err;
  }
  if (misses == 0) {
    stats.read_hit++;
  } else if (hits == 0) {
    stats.read_miss++;
  } else {
    stats.read_partial++;
  }
  return Status::Ok();
}

void ReadHelper::SubmitCacheRead(Slot* s) {
  if (s->io_len != s->len) cache_->stats().io_dio_misfit++;
  AddPending();
  cache_->engine().Read(s->owner->fd(), s->granule * granule_, s->data, s->io_len, s->index, &s->read_done);
}

void ReadHelper::OnCacheRead(Slot* s, ssize_t result) {
  std::shared_ptr<CacheObject> obj = s->owner;  // outlives the lock below
  bool refetch = false;
  {
    std::lock_guard lk(obj->mu());
    obj->EndIoLocked();
    if (result >= static_cast<ssize_t>(s->len)) {
      s->state = Slot::State::kReady;
      s->from_cache = true;
      cache_->stats().bytes_from_cache += s->len;
      if (s->waiters > 0) obj->cv().notify_all();
      MaybeFreeLocked(s);
    } else {
      refetch = true;
      if (result >= 0) {
        obj->WithdrawLocked("backing file shorter than its map");
      } else {
        cache_->NoteError("read of " + obj->name() + ": " + std::strerror(static_cast<int>(-result)));
      }
    }
  }
  // Re-issue to the backend; not on this (engine) thread.
  if (refetch) Enqueue(FetchJob{obj, s->file, {s}});
  DonePending();
}

void ReadHelper::FetchRun(const std::shared_ptr<CacheObject>& obj, const netfs::OpenFileRef& file, Slot* const* run,
                          size_t n) {
  Stats& stats = cache_->stats();
  const uint64_t G = granule_;
  thread_local std::vector<struct iovec> iov;
  iov.clear();
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    iov.push_back({run[i]->data, run[i]->len});
    total += run[i]->len;
  }
  const uint64_t offset = run[0]->granule * G;
  // Space for what this fetch will write to the cache is reserved before it
  // starts; without space the data is served but not cached.
  uint64_t reserved = 0;
  {
    std::lock_guard lk(obj->mu());
    if (obj->WritableLocked()) {
      for (size_t i = 0; i < n; ++i) reserved += run[i]->io_len;
    }
  }
  if (reserved > 0 && !cache_->culler().Reserve(reserved)) reserved = 0;
  stats.NoteInflight(++stats.backend_inflight);
  uint64_t done = 0;
  Status err;
  size_t first = 0;
  while (done < total) {
    auto r = file->backend().read_range(file->handle(), offset + done,
                                        std::span<const struct iovec>(iov.data() + first, iov.size() - first));
    if (!r.ok()) {
      err = r.status();
      break;
    }
    if (*r == 0) break;  // end of file: the source is shorter than we were told
    done += *r;
    // Advance the iovecs past what was read (short reads).
    size_t left = *r;
    while (left > 0 && first < iov.size()) {
      if (left >= iov[first].iov_len) {
        left -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
        left = 0;
      }
    }
  }
  stats.backend_inflight--;
  stats.bytes_from_backend += done;
  if (!err.ok()) spdlog::debug("backend read failed at {}: {}", offset + done, err.ToString());

  thread_local std::vector<Slot*> writes;
  writes.clear();
  int fd = -1;
  {
    std::lock_guard lk(obj->mu());
    uint64_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      Slot* s = run[i];
      uint64_t got = done > pos ? std::min<uint64_t>(done - pos, s->len) : 0;
      pos += s->len;
      if (!err.ok() && got < s->len) {
        s->state = Slot::State::kFailed;
        s->err = err.err();
        obj->UnlinkSlotLocked(s);
        continue;
      }
      if (got < s->len) {
        s->len = static_cast<uint32_t>(got);
        s->stale = true;  // the file changed size under us: serve, do not cache
      }
      s->state = Slot::State::kReady;
      s->from_cache = false;
      if (reserved > 0 && !s->stale && s->fill_gen == obj->ModGenLocked() && obj->WritableLocked()) {
        s->writing = true;
        obj->BeginIoLocked();
        writes.push_back(s);
      }
    }
    fd = obj->fd();
    bool waited = false;
    for (size_t i = 0; i < n; ++i) waited = waited || run[i]->waiters > 0;
    if (waited) obj->cv().notify_all();
    for (size_t i = 0; i < n; ++i) MaybeFreeLocked(run[i]);
  }
  uint64_t used = 0;
  for (Slot* s : writes) used += s->io_len;
  if (reserved > used) cache_->culler().Unreserve(reserved - used);
  for (Slot* s : writes) {
    if (s->io_len != s->len) {
      std::memset(s->data + s->len, 0, s->io_len - s->len);
      stats.io_dio_misfit++;
    }
    AddPending();
    cache_->engine().Write(fd, s->granule * G, s->data, s->io_len, s->index, &s->write_done);
  }
}

void ReadHelper::OnCacheWrite(Slot* s, ssize_t result) {
  {
    std::shared_ptr<CacheObject> obj = s->owner;  // outlives the lock below
    std::lock_guard lk(obj->mu());
    s->writing = false;
    obj->EndIoLocked();
    if (s->stale) obj->EndStaleWriteLocked(s->granule);
    cache_->culler().Unreserve(s->io_len);
    if (result >= static_cast<ssize_t>(s->len)) {
      cache_->culler().Grow(obj->id(), s->io_len);
      if (!s->stale) {
        obj->MarkWrittenLocked(s->granule, s->fill_gen);
        cache_->stats().bytes_to_cache += s->len;
      }
    } else if (result == -ENOSPC || result == -EDQUOT) {
      cache_->culler().RequestCull();  // a full disk is not a failing cache
    } else {
      cache_->NoteError("write of " + obj->name() + ": " +
                        (result < 0 ? std::strerror(static_cast<int>(-result)) : std::string("short write")));
    }
    MaybeFreeLocked(s);
  }
  DonePending();
}

void ReadHelper::Enqueue(FetchJob job) {
  std::lock_guard lk(jobs_mu_);
  ++pending_;
  jobs_.push_back(std::move(job));
  jobs_cv_.notify_one();
}

void ReadHelper::Worker() {
  for (;;) {
    FetchJob job;
    {
      std::unique_lock lk(jobs_mu_);
      jobs_cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    FetchRun(job.obj, job.file, job.slots.data(), job.slots.size());
    job = FetchJob{};  // lets go of the object and the file before saying done
    DonePending();
  }
}

}  // namespace cachefuse::cache
