// LruIndex: the entries in LRU order, and their snapshot + log on disk (record codec, load, replay, compaction).
//
// Lock order: LruIndex::io_mu_ -> LruIndex::mu_ (a leaf). File I/O happens under
// io_mu_ only, so that batches reach the log in the order they were taken and
// a compaction never interleaves with an append.
#include "cache/lru_index.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "cache/layout.h"
#include "common/crc32c.h"

namespace cachefuse::cache {
namespace {

// lru.log and lru.snap records: 56 bytes.
//   [0] type (1 = upsert, 2 = remove)  [1..3] 0  [4..7] CRC-32C of bytes 0..3 and 8..55
//   [8..23] volume hash  [24..39] object hash  [40..47] bytes on disk  [48..55] last use (unix s)
constexpr size_t kRecordSize = LruIndex::kRecordSize;
constexpr uint8_t kUpsert = 1;
constexpr uint8_t kRemove = 2;
// lru.snap: "CFIX" u8 version, 3 x 0, u64 count, count records, u32 CRC-32C of all before.
constexpr uint32_t kSnapMagic = 0x58494643;  // "CFIX"
constexpr uint8_t kIndexVersion = 1;
constexpr size_t kHeader = LruIndex::kSnapshotHeader;
constexpr size_t kTrailer = LruIndex::kSnapshotTrailer;

void PutLe(char* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint64_t GetLe(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// hex: a hash name (layout::IsHashName) -> its 16 bytes.
void HexToBytes(const std::string& hex, char* out) {
  for (size_t i = 0; i < layout::kHashLen / 2; ++i) {
    out[i] = static_cast<char>(HexVal(hex[2 * i]) * 16 + HexVal(hex[2 * i + 1]));
  }
}

std::string BytesToHex(const char* p) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(layout::kHashLen, '0');
  for (size_t i = 0; i < layout::kHashLen / 2; ++i) {
    auto b = static_cast<unsigned char>(p[i]);
    s[2 * i] = kDigits[b >> 4];
    s[2 * i + 1] = kDigits[b & 0xF];
  }
  return s;
}

uint32_t RecordCrc(const char* r) {
  uint32_t crc = Crc32c(std::string_view(r, 4));
  return Crc32c(std::string_view(r + 8, kRecordSize - 8), crc);
}

// Encodes one record; false if id is not "<vhash>/<ohash>".
bool EncodeRecord(uint8_t type, const std::string& id, uint64_t bytes, uint64_t last_use, char* r) {
  std::memset(r, 0, kRecordSize);
  auto parts = layout::SplitObjectId(id);
  if (!parts) return false;
  r[0] = static_cast<char>(type);
  HexToBytes(parts->vhash, r + 8);
  HexToBytes(parts->ohash, r + 24);
  PutLe(r + 40, bytes, 8);
  PutLe(r + 48, last_use, 8);
  PutLe(r + 4, RecordCrc(r), 4);
  return true;
}

bool DecodeRecord(const char* r, uint8_t* type, std::string* id, uint64_t* bytes, uint64_t* last_use) {
  if (GetLe(r + 4, 4) != RecordCrc(r)) return false;
  *type = static_cast<uint8_t>(r[0]);
  if ((*type != kUpsert && *type != kRemove) || r[1] || r[2] || r[3]) return false;
  *id = layout::ObjectId(BytesToHex(r + 8), BytesToHex(r + 24));
  *bytes = GetLe(r + 40, 8);
  *last_use = GetLe(r + 48, 8);
  return true;
}

bool ReadAll(int fd, std::string* out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  out->assign(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::pread(fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

LruIndex::LruIndex(Clock clock) : clock_(std::move(clock)) {}

uint64_t LruIndex::Now() const {
  return clock_ ? clock_() : static_cast<uint64_t>(::time(nullptr));
}

Status LruIndex::Load(int cache_dir_fd, LruLoadReport* report) {
  std::lock_guard io(io_mu_);
  LruLoadReport local;
  LruLoadReport& rep = report ? *report : local;
  rep = LruLoadReport{};
  index_fd_.reset(::openat(cache_dir_fd, layout::kIndexDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!index_fd_.valid()) return ErrnoStatus("cannot open the cache's index dir");
  rep.clean_marker = ::unlinkat(index_fd_.get(), layout::kClean, 0) == 0;

  struct Loaded {
    uint64_t bytes;
    uint64_t last_use;
    uint64_t seq;  // first appearance: the snapshot is in LRU order, last_use only has seconds
  };
  std::unordered_map<std::string, Loaded> loaded;
  uint64_t seq = 0;
  {
    UniqueFd snap(::openat(index_fd_.get(), layout::kLruSnapshot, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    rep.snapshot_found = snap.valid();
    std::string data;
    // A snapshot that is there but cannot be read counts as damaged: trusting
    // CLEAN with an empty index would leave every object uncounted, for good.
    if (snap.valid() && !ReadAll(snap.get(), &data)) rep.snapshot_damaged = true;
    if (snap.valid() && !rep.snapshot_damaged) {
      bool ok = data.size() >= kHeader + kTrailer && GetLe(data.data(), 4) == kSnapMagic &&
                static_cast<uint8_t>(data[4]) == kIndexVersion;
      uint64_t count = ok ? GetLe(data.data() + 8, 8) : 0;
      ok = ok && data.size() == kHeader + count * kRecordSize + kTrailer &&
           GetLe(data.data() + data.size() - kTrailer, 4) ==
               Crc32c(std::string_view(data.data(), data.size() - kTrailer));
      for (uint64_t i = 0; ok && i < count; ++i) {
        uint8_t type = 0;
        std::string id;
        uint64_t bytes = 0;
        uint64_t last_use = 0;
        if (!DecodeRecord(data.data() + kHeader + i * kRecordSize, &type, &id, &bytes, &last_use) || type != kUpsert) {
          ok = false;
          break;
        }
        loaded[id] = {bytes, last_use, seq++};
      }
      if (!ok) {
        loaded.clear();
        rep.snapshot_damaged = true;
      }
    }
  }
  log_fd_.reset(::openat(index_fd_.get(), layout::kLruLog, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!log_fd_.valid()) return ErrnoStatus("cannot open the cache's index log");
  std::string log;
  uint64_t log_records = 0;
  if (ReadAll(log_fd_.get(), &log)) {
    size_t pos = 0;
    for (; pos + kRecordSize <= log.size(); pos += kRecordSize) {
      uint8_t type = 0;
      std::string id;
      uint64_t bytes = 0;
      uint64_t last_use = 0;
      if (!DecodeRecord(log.data() + pos, &type, &id, &bytes, &last_use)) break;
      if (type == kUpsert) {
        auto it = loaded.find(id);
        loaded[id] = {bytes, last_use, it != loaded.end() ? it->second.seq : seq++};
      } else {
        loaded.erase(id);
      }
      ++log_records;
    }
    if (pos != log.size()) {
      // A torn tail (the daemon died mid-append): keep what is whole.
      if (::ftruncate(log_fd_.get(), static_cast<off_t>(pos)) != 0) return ErrnoStatus("truncate index log");
      rep.log_torn_bytes = log.size() - pos;
    }
  }
  rep.log_records = log_records;
  ::lseek(log_fd_.get(), 0, SEEK_END);

  std::vector<std::pair<std::string, Loaded>> ordered(loaded.begin(), loaded.end());
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.second.last_use != b.second.last_use ? a.second.last_use < b.second.last_use : a.second.seq < b.second.seq;
  });
  std::lock_guard lk(mu_);
  for (auto& [id, l] : ordered) {
    lru_.push_back(id);
    entries_[id] = Entry{l.bytes, l.last_use, std::prev(lru_.end())};
    data_bytes_ += l.bytes;
  }
  log_records_ = log_records;
  return Status::Ok();
}

bool LruIndex::is_open() const {
  std::lock_guard io(io_mu_);
  return index_fd_.valid();
}

void LruIndex::MarkDirtyLocked(const std::string& id) {
  dirty_[id] = entries_.count(id) > 0;
}

void LruIndex::TouchLocked(const std::string& id, bool dirty) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  lru_.splice(lru_.end(), lru_, it->second.lru);
  uint64_t now = Now();
  if (it->second.last_use != now) {
    it->second.last_use = now;
    dirty = true;
  }
  if (dirty) MarkDirtyLocked(id);
}

void LruIndex::Note(const std::string& id, uint64_t bytes, bool touch) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    lru_.push_back(id);
    it = entries_.emplace(id, Entry{0, Now(), std::prev(lru_.end())}).first;
    MarkDirtyLocked(id);
  }
  if (it->second.bytes != bytes) {
    data_bytes_ = data_bytes_ - it->second.bytes + bytes;
    it->second.bytes = bytes;
    MarkDirtyLocked(id);
  }
  if (touch) TouchLocked(id, false);
}

void LruIndex::Touch(const std::string& id) {
  std::lock_guard lk(mu_);
  TouchLocked(id, false);
}

void LruIndex::Grow(const std::string& id, uint64_t bytes) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.bytes += bytes;
  data_bytes_ += bytes;
}

bool LruIndex::Remove(const std::string& id) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  data_bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
  dirty_[id] = false;
  return true;
}

bool LruIndex::Adopt(const std::string& id, uint64_t bytes, uint64_t last_use) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    lru_.push_front(id);
    entries_[id] = Entry{bytes, last_use, lru_.begin()};
    data_bytes_ += bytes;
    MarkDirtyLocked(id);
    return true;
  }
  if (it->second.bytes != bytes) {
    data_bytes_ = data_bytes_ - it->second.bytes + bytes;
    it->second.bytes = bytes;
    MarkDirtyLocked(id);
  }
  return false;
}

size_t LruIndex::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

uint64_t LruIndex::data_bytes() const {
  std::lock_guard lk(mu_);
  return data_bytes_;
}

uint64_t LruIndex::log_records() const {
  std::lock_guard lk(mu_);
  return log_records_;
}

std::vector<std::string> LruIndex::Ids() const {
  std::lock_guard lk(mu_);
  return {lru_.begin(), lru_.end()};
}

std::optional<std::string> LruIndex::Oldest(const std::unordered_set<std::string>& except) const {
  std::lock_guard lk(mu_);
  for (const auto& id : lru_) {
    if (!except.count(id)) return id;
  }
  return std::nullopt;
}

std::vector<LruEntry> LruIndex::Entries() const {
  std::lock_guard lk(mu_);
  std::vector<LruEntry> out;
  out.reserve(lru_.size());
  for (const auto& id : lru_) {
    const Entry& e = entries_.at(id);
    out.push_back({id, e.bytes, e.last_use});
  }
  return out;
}

std::optional<LruEntry> LruIndex::Find(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return LruEntry{id, it->second.bytes, it->second.last_use};
}

void LruIndex::PersistLog() {
  std::lock_guard io(io_mu_);
  if (AppendLogLocked()) CompactLocked();
}

bool LruIndex::Compact() {
  std::lock_guard io(io_mu_);
  return CompactLocked();
}

bool LruIndex::AppendLogLocked() {
  std::string buf;
  {
    std::lock_guard lk(mu_);
    if (dirty_.empty() || !log_fd_.valid()) return false;
    buf.resize(dirty_.size() * kRecordSize);
    size_t n = 0;
    for (const auto& [id, present] : dirty_) {
      auto it = entries_.find(id);
      bool ok = present && it != entries_.end()
                    ? EncodeRecord(kUpsert, id, it->second.bytes, it->second.last_use, buf.data() + n * kRecordSize)
                    : EncodeRecord(kRemove, id, 0, 0, buf.data() + n * kRecordSize);
      if (ok) ++n;
    }
    buf.resize(n * kRecordSize);
    dirty_.clear();
    log_records_ += n;
  }
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t w = ::write(log_fd_.get(), buf.data() + done, buf.size() - done);
    if (w <= 0) {
      spdlog::warn("cannot append to the cache index log: {}", std::strerror(errno));
      return false;
    }
    done += static_cast<size_t>(w);
  }
  std::lock_guard lk(mu_);
  return log_records_ > 2 * entries_.size() + 4096;
}

bool LruIndex::CompactLocked() {
  if (!index_fd_.valid()) return false;
  AppendLogLocked();  // nothing dirty left behind in memory
  std::string snap(kHeader, '\0');
  {
    std::lock_guard lk(mu_);
    PutLe(snap.data(), kSnapMagic, 4);
    snap[4] = static_cast<char>(kIndexVersion);
    PutLe(snap.data() + 8, entries_.size(), 8);
    snap.resize(kHeader + entries_.size() * kRecordSize);
    size_t n = 0;
    for (const auto& id : lru_) {
      const Entry& e = entries_.at(id);
      if (EncodeRecord(kUpsert, id, e.bytes, e.last_use, snap.data() + kHeader + n * kRecordSize)) ++n;
    }
    snap.resize(kHeader + n * kRecordSize);
    PutLe(snap.data() + 8, n, 8);
  }
  char crc[kTrailer];
  PutLe(crc, Crc32c(snap), 4);
  snap.append(crc, kTrailer);
  UniqueFd tmp(
      ::openat(index_fd_.get(), layout::kLruSnapshotTmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  bool ok = tmp.valid() && ::write(tmp.get(), snap.data(), snap.size()) == static_cast<ssize_t>(snap.size()) &&
            ::fsync(tmp.get()) == 0 &&
            ::renameat(index_fd_.get(), layout::kLruSnapshotTmp, index_fd_.get(), layout::kLruSnapshot) == 0;
  if (!ok) {
    spdlog::warn("cannot write the cache index snapshot: {}", std::strerror(errno));
    return false;
  }
  // The log restarts empty; a crash before this point replays old records over
  // the new snapshot, which the reconcile after an unclean stop puts right.
  if (::ftruncate(log_fd_.get(), 0) != 0) return false;
  ::lseek(log_fd_.get(), 0, SEEK_SET);
  std::lock_guard lk(mu_);
  log_records_ = 0;
  return true;
}

bool LruIndex::MarkClean() {
  std::lock_guard io(io_mu_);
  if (!index_fd_.valid()) return false;
  UniqueFd clean(::openat(index_fd_.get(), layout::kClean, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (clean.valid()) ::fsync(clean.get());
  return clean.valid();
}

void LruIndex::Close() {
  std::lock_guard io(io_mu_);
  index_fd_.reset();
  log_fd_.reset();
}

}  // namespace cachefuse::cache
