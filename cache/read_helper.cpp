// ReadHelper: the slot table, single-flight loads, write-to-cache and read-ahead.
#include "cache/read_helper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "cache/cache.h"
#include "cache/shape.h"

namespace cachefuse::cache {
namespace {

// How often a fetch that raced with a change through the mount is tried again
// before the read gives up (each waits for the change to reach the source).
constexpr int kChangeRaceRetries = 50;

}  // namespace

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
    auto& st = helper_->StripeOf(obj.get());
    std::lock_guard lk(st.mu);
    for (int i = 0; i < nslots_; ++i) {
      Slot* s = slots_[i];
      --s->refs;
      helper_->MaybeFreeLocked(st, s);
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
  last_sweep_ = std::chrono::steady_clock::now();
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
  DropReadahead(nullptr, std::chrono::steady_clock::duration::zero());
}

void ReadHelper::AddPending() {
  std::lock_guard lk(jobs_mu_);
  ++pending_;
}

void ReadHelper::DonePending() {
  std::lock_guard lk(jobs_mu_);
  if (--pending_ == 0) idle_cv_.notify_all();
}

Slot* ReadHelper::FindSlotLocked(Stripe& st, CacheObject* obj, uint64_t g) {
  auto it = st.table.find(SlotKey{obj, g});
  if (it == st.table.end()) return nullptr;
  Slot* s = it->second;
  if (s->fill_gen != obj->ModGenLocked() && s->state != Slot::State::kLoading) {
    // Filled before a change through the mount: not this granule's bytes any more.
    s->uncacheable = true;
    s->readahead = false;
    UnlinkLocked(st, s);
    MaybeFreeLocked(st, s);
    return nullptr;
  }
  if (s->fill_gen != obj->ModGenLocked()) {
    // Still loading outdated bytes: whoever waits for it gets them (a read that
    // raced with the change); new readers load the granule afresh.
    s->uncacheable = true;
    UnlinkLocked(st, s);
    return nullptr;
  }
  return s;
}

Slot* ReadHelper::InitSlotLocked(Stripe& st, const std::shared_ptr<CacheObject>& obj, const FetcherRef& fetcher,
                                 int index, uint64_t g, bool readahead) {
  Slot* s = &slots_[static_cast<size_t>(index)];
  const uint64_t size = obj->SizeLocked();
  s->owner = obj;
  s->fetcher = fetcher;
  s->granule = g;
  s->len = static_cast<uint32_t>(GranuleBytes(g, size, granule_));
  s->io_len = static_cast<uint32_t>(DioBytes(s->len, cache_->dio_align()));
  s->state = Slot::State::kLoading;
  s->err = Status::Ok();
  s->refs = 0;
  s->waiters = 0;
  s->writing = false;
  s->readahead = readahead;
  s->from_cache = false;
  s->uncacheable = false;
  s->fill_gen = obj->ModGenLocked();
  s->born = std::chrono::steady_clock::now();
  st.table[SlotKey{obj.get(), g}] = s;
  s->linked = true;
  return s;
}

void ReadHelper::UnlinkLocked(Stripe& st, Slot* s) {
  if (!s->linked) return;
  auto it = st.table.find(SlotKey{s->owner.get(), s->granule});
  if (it != st.table.end() && it->second == s) st.table.erase(it);
  s->linked = false;
}

void ReadHelper::MaybeFreeLocked(Stripe& st, Slot* s) {
  if (s->refs > 0 || s->writing || s->state == Slot::State::kLoading) return;
  // A read-ahead granule waits in memory for the reader it was fetched for.
  if (s->linked && s->readahead && s->state == Slot::State::kReady && !s->uncacheable) return;
  UnlinkLocked(st, s);
  s->owner.reset();  // callers hold their own reference to the object
  s->fetcher.reset();
  s->state = Slot::State::kIdle;
  s->readahead = false;
  cache_->pool().Release(s->index);
}

void ReadHelper::DropReadahead(const CacheObject* obj, std::chrono::steady_clock::duration max_age) {
  const auto now = std::chrono::steady_clock::now();
  for (Stripe& st : stripes_) {
    std::lock_guard lk(st.mu);
    for (auto it = st.table.begin(); it != st.table.end();) {
      Slot* s = it->second;
      ++it;  // MaybeFreeLocked may erase s's entry
      if ((obj == nullptr || s->owner.get() == obj) && s->readahead && now - s->born >= max_age) {
        if (s->state == Slot::State::kReady) {
          s->readahead = false;
          MaybeFreeLocked(st, s);
        } else if (s->state == Slot::State::kLoading && max_age == std::chrono::steady_clock::duration::zero()) {
          s->readahead = false;  // nobody will come for it: freed as soon as it lands
        }
      }
    }
  }
}

void ReadHelper::Release(const UseToken& use) {
  const std::shared_ptr<CacheObject>& obj = use.object_;
  if (!obj) return;
  {
    std::lock_guard lk(obj->mu());
    if (obj->UsersLocked() > 0) return;  // others still read this generation
  }
  DropReadahead(obj.get(), std::chrono::steady_clock::duration::zero());
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

Status ReadHelper::Read(const UseToken& use, const FetcherRef& fetcher, StreamState* stream, uint64_t off, size_t len,
                        ReadReply* out) {
  const std::shared_ptr<CacheObject>& obj = use.object_;
  if (!obj) return Status::Invalid("read without a use of the cookie");
  Stats& stats = cache_->stats();
  BufferPool& pool = cache_->pool();
  Stripe& st = StripeOf(obj.get());
  stats.read_requests++;
  out->Release();
  out->helper_ = this;
  out->obj_ = obj;
  const uint64_t G = granule_;

  uint64_t size = 0;
  {
    std::lock_guard olk(obj->mu());
    size = obj->SizeLocked();
  }
  ReadShape r = ShapeRange(off, len, size, G);
  if (len == 0 || r.empty()) return Status::Ok();
  if (r.end - r.first > static_cast<uint64_t>(ReadReply::kMaxSlots)) return Status::Invalid("read larger than 1 MiB");

  uint64_t ra_from = 0;
  uint64_t ra_to = 0;
  if (stream) PlanReadahead(stream, off, r.byte_end, GranuleCount(size, G), &ra_from, &ra_to);

  // Buffers for the granules that have no slot yet; taken before the slots are
  // made, without holding a lock while waiting for the pool.
  int bufs[ReadReply::kMaxSlots];
  size_t have = 0;
  std::unique_lock lk(st.mu);
  std::unique_lock olk(obj->mu());
  for (;;) {
    size = obj->SizeLocked();
    r = ShapeRange(off, len, size, G);
    if (r.empty()) return Status::Ok();
    size_t need = 0;
    for (uint64_t g = r.first; g < r.end; ++g) need += FindSlotLocked(st, obj.get(), g) ? 0 : 1;
    if (need <= have) break;
    olk.unlock();
    lk.unlock();
    pool.Acquire(need - have, bufs + have);
    have = need;
    lk.lock();
    olk.lock();
  }

  thread_local std::vector<Slot*> cache_reads;     // demand: read here, as one batch
  thread_local std::vector<Slot*> ra_cache_reads;  // read-ahead: asynchronous
  thread_local std::vector<Slot*> demand_fetch;
  thread_local std::vector<Slot*> ra_fetch;
  cache_reads.clear();
  ra_cache_reads.clear();
  demand_fetch.clear();
  ra_fetch.clear();
  const uint64_t end = r.byte_end;
  for (uint64_t g = r.first; g < r.end; ++g) {
    Slot* s = FindSlotLocked(st, obj.get(), g);
    if (!s) {
      s = InitSlotLocked(st, obj, fetcher, bufs[--have], g, false);
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
    s->readahead = g + 1 == r.end && end < std::min(size, (g + 1) * G) && pool.HasSpare();
    ++s->refs;
    out->slots_[out->nslots_++] = s;
  }
  for (uint64_t g = ra_from; g < ra_to && g * G < size; ++g) {
    if (FindSlotLocked(st, obj.get(), g)) continue;
    int idx = pool.TryAcquire();
    if (idx < 0) break;
    Slot* s = InitSlotLocked(st, obj, fetcher, idx, g, true);
    stats.readahead_bytes += s->len;
    if (obj->PresentLocked(g)) {
      obj->BeginIoLocked();
      ra_cache_reads.push_back(s);
    } else {
      ra_fetch.push_back(s);
    }
  }
  olk.unlock();
  lk.unlock();
  while (have > 0) pool.Release(bufs[--have]);

  for (Slot* s : ra_cache_reads) SubmitCacheRead(s);
  // Runs of consecutive absent granules: one fetch each. Read-ahead runs queue
  // behind demand; of a demand read's runs, all but the first go to the
  // workers (ahead of read-ahead) while this thread fetches the first, so the
  // misses of one read are fetched in parallel.
  const size_t max_run = std::max<uint64_t>(1, options_.max_fetch / G);
  auto runs = [&](std::vector<Slot*>& v, size_t limit, auto&& each) {
    for (size_t i = 0; i < v.size();) {
      size_t j = i + 1;
      while (j < v.size() && j - i < limit && v[j]->granule == v[j - 1]->granule + 1) ++j;
      each(i, j);
      i = j;
    }
  };
  runs(ra_fetch, max_run, [&](size_t i, size_t j) {
    Enqueue(
        FetchJob{obj, fetcher,
                 std::vector<Slot*>(ra_fetch.begin() + static_cast<long>(i), ra_fetch.begin() + static_cast<long>(j))},
        false);
  });
  size_t first_run_end = 0;
  runs(demand_fetch, SIZE_MAX, [&](size_t i, size_t j) {
    if (i == 0) {
      first_run_end = j;
      return;
    }
    Enqueue(FetchJob{obj, fetcher,
                     std::vector<Slot*>(demand_fetch.begin() + static_cast<long>(i),
                                        demand_fetch.begin() + static_cast<long>(j))},
            true);
  });
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
  if (first_run_end > 0) FetchRun(obj, fetcher, demand_fetch.data(), first_run_end);

  lk.lock();
  // Sleep until every slot has loaded. Completions wake readers only for slots
  // someone waits on, so read-ahead landing in the background wakes nobody.
  bool waiting[ReadReply::kMaxSlots];
  for (int i = 0; i < out->nslots_; ++i) {
    waiting[i] = out->slots_[i]->state == Slot::State::kLoading;
    if (waiting[i]) ++out->slots_[i]->waiters;
  }
  st.cv.wait(lk, [&] {
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
      err = s->err;
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
    if (s->len < GranuleBytes(s->granule, size, G)) break;  // shortened by our own change (truncate) meanwhile
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
  std::shared_ptr<CacheObject> obj = s->owner;  // outlives the locks below
  Stripe& st = StripeOf(obj.get());
  bool refetch = false;
  {
    std::lock_guard lk(st.mu);
    std::lock_guard olk(obj->mu());
    obj->EndIoLocked();
    if (result >= static_cast<ssize_t>(s->len)) {
      s->state = Slot::State::kReady;
      s->from_cache = true;
      cache_->stats().bytes_from_cache += s->len;
      if (s->waiters > 0) st.cv.notify_all();
      MaybeFreeLocked(st, s);
    } else {
      refetch = true;
      if (result >= 0) {
        obj->WithdrawLocked("backing file shorter than its map");
      } else {
        cache_->NoteError("read of " + obj->name() + ": " + std::strerror(static_cast<int>(-result)));
      }
    }
  }
  // Re-issue to the source; not on this (engine) thread, ahead of read-ahead.
  if (refetch) Enqueue(FetchJob{obj, s->fetcher, {s}}, true);
  DonePending();
}

void ReadHelper::FetchRun(const std::shared_ptr<CacheObject>& obj, const FetcherRef& fetcher, Slot* const* run,
                          size_t n) {
  Stats& stats = cache_->stats();
  Stripe& st = StripeOf(obj.get());
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
  std::string expect;
  uint64_t gen_at_start = 0;
  {
    std::lock_guard lk(obj->mu());
    if (obj->WritableLocked()) {
      for (size_t i = 0; i < n; ++i) reserved += run[i]->io_len;
    }
    expect = obj->CoherencyLocked();
    gen_at_start = obj->ModGenLocked();
  }
  if (reserved > 0 && !cache_->culler().Reserve(reserved)) reserved = 0;
  stats.NoteInflight(++stats.backend_inflight);
  uint64_t done = 0;
  Status err;
  size_t first = 0;
  bool changed_by_us = false;  // a change through the mount raced with this fetch
  for (int race = 0; done < total;) {
    auto r =
        fetcher->Fetch(offset + done, std::span<const struct iovec>(iov.data() + first, iov.size() - first), expect);
    if (r.ok() && *r == 0) {
      // End of file before the end this version of the file has.
      r = Status::Stale("source shorter than the version being read");
    }
    if (!r.ok() && r.status().kind() == Status::Kind::kStale) {
      // Our own change (write, truncate, chmod) moves the source's token before
      // the generation's token follows it: fetch again with the new token.
      std::unique_lock lk(obj->mu());
      // While our change is on its way (a slow write to a remote source), wait
      // for it however long it takes: the change itself is bounded by the
      // source's call policy. After it, a few more tries with the new token.
      const bool still_changing = obj->ChangingLocked();
      if (still_changing || (obj->ModGenLocked() != gen_at_start && race++ < kChangeRaceRetries)) {
        changed_by_us = true;
        expect = obj->CoherencyLocked();
        gen_at_start = obj->ModGenLocked();
        const uint64_t size = obj->SizeLocked();
        lk.unlock();
        if (offset + done >= size) break;  // truncated through the mount: serve what there is
        if (still_changing) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
    }
    if (!r.ok()) {
      err = r.status();
      break;
    }
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
  if (!err.ok()) {
    spdlog::debug("object={} op=fetch off={} why={}: {}", obj->name(), offset + done, KindName(err.kind()),
                  err.ToString());
  }

  thread_local std::vector<Slot*> writes;
  writes.clear();
  int fd = -1;
  {
    std::lock_guard lk(st.mu);
    std::lock_guard olk(obj->mu());
    uint64_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      Slot* s = run[i];
      uint64_t got = done > pos ? std::min<uint64_t>(done - pos, s->len) : 0;
      pos += s->len;
      if (!err.ok() && got < s->len) {
        s->state = Slot::State::kFailed;
        s->err = err;
        UnlinkLocked(st, s);
        continue;
      }
      if (got < s->len) {
        s->len = static_cast<uint32_t>(got);  // truncated through the mount meanwhile
        s->uncacheable = true;
      }
      if (changed_by_us) s->uncacheable = true;
      s->state = Slot::State::kReady;
      s->from_cache = false;
      if (reserved > 0 && !s->uncacheable && s->fill_gen == obj->ModGenLocked() && obj->WritableLocked()) {
        s->writing = true;
        obj->BeginWriteLocked(s->granule);
        writes.push_back(s);
      }
    }
    fd = obj->fd();
    bool waited = false;
    for (size_t i = 0; i < n; ++i) waited = waited || run[i]->waiters > 0;
    if (waited) st.cv.notify_all();
    for (size_t i = 0; i < n; ++i) MaybeFreeLocked(st, run[i]);
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
    std::shared_ptr<CacheObject> obj = s->owner;  // outlives the locks below
    Stripe& st = StripeOf(obj.get());
    std::lock_guard lk(st.mu);
    std::lock_guard olk(obj->mu());
    s->writing = false;
    const bool written = result >= static_cast<ssize_t>(s->len);
    obj->EndWriteLocked(s->granule, s->fill_gen, written);
    cache_->culler().Unreserve(s->io_len);
    if (written) {
      cache_->culler().Grow(obj->id(), s->io_len);
      cache_->stats().bytes_to_cache += s->len;
    } else if (result == -ENOSPC || result == -EDQUOT) {
      cache_->culler().RequestCull();  // a full disk is not a failing cache
    } else {
      cache_->NoteError("write of " + obj->name() + ": " +
                        (result < 0 ? std::strerror(static_cast<int>(-result)) : std::string("short write")));
    }
    MaybeFreeLocked(st, s);
  }
  DonePending();
}

void ReadHelper::Enqueue(FetchJob job, bool front) {
  std::lock_guard lk(jobs_mu_);
  ++pending_;
  if (front) {
    jobs_.push_front(std::move(job));
  } else {
    jobs_.push_back(std::move(job));
  }
  jobs_cv_.notify_one();
}

void ReadHelper::Worker() {
  for (;;) {
    FetchJob job;
    bool sweep = false;
    {
      std::unique_lock lk(jobs_mu_);
      jobs_cv_.wait_for(lk, options_.readahead_ttl, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_ && jobs_.empty()) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_sweep_ >= options_.readahead_ttl) {
        last_sweep_ = now;
        sweep = true;
      }
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
    }
    // Read-ahead that nobody came for within its time goes back to the pool.
    if (sweep) DropReadahead(nullptr, options_.readahead_ttl);
    if (!job.obj) continue;
    FetchRun(job.obj, job.fetcher, job.slots.data(), job.slots.size());
    job = FetchJob{};  // lets go of the object and the fetcher before saying done
    DonePending();
  }
}

}  // namespace cachefuse::cache
