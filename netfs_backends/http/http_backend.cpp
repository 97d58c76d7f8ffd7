// HttpBackend: listings, HEADs and checked ranged GETs over HttpClient.
#include "netfs_backends/http/http_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "common/hash.h"
#include "netfs_backends/http/http_proto.h"
#include "netfs_backends/http/spool.h"

namespace cachefuse::netfs::http {
namespace {

constexpr size_t kMaxListingBytes = 64u << 20;
constexpr size_t kMaxMemoEntries = 4096;
constexpr size_t kMaxReported = 10000;

// An open file: the version it reads (size, validator) and, for a server
// without Range, its spool.
class HttpFile final : public OpenFile {
 public:
  HttpFile(Attr attr, std::string path_in, std::string url_in, uint64_t size_in, std::string etag_in,
           std::string last_modified_in, std::optional<int64_t> mtime_in, std::shared_ptr<HttpClient> client_in)
      : OpenFile(std::move(attr)),
        path(std::move(path_in)),
        url(std::move(url_in)),
        size(size_in),
        etag(std::move(etag_in)),
        last_modified(std::move(last_modified_in)),
        mtime(mtime_in),
        client(std::move(client_in)) {
    // If-Range takes a strong validator: the ETag if it is strong, else the date.
    if (IsStrongEtag(etag)) {
      if_range = curl_slist_append(nullptr, ("If-Range: " + etag).c_str());
    } else if (!last_modified.empty()) {
      if_range = curl_slist_append(nullptr, ("If-Range: " + last_modified).c_str());
    }
  }
  ~HttpFile() override {
    spool.reset();  // its fill thread uses the members below
    curl_slist_free_all(if_range);
  }

  // Is r an answer from the version this file was opened at?
  bool SameVersion(const HttpResponse& r) const {
    if (!etag.empty() && !r.etag.empty() && r.etag != etag) return false;
    if (mtime && !r.last_modified.empty()) {
      auto t = ParseHttpDate(r.last_modified);
      if (!t || *t != *mtime) return false;
    }
    return true;
  }

  const std::string path;
  const std::string url;
  const uint64_t size;
  const std::string etag;
  const std::string last_modified;
  const std::optional<int64_t> mtime;
  const std::shared_ptr<HttpClient> client;
  curl_slist* if_range = nullptr;

  std::atomic<bool> use_spool{false};
  std::mutex spool_mu;
  std::unique_ptr<Spool> spool;  // GUARDED_BY(spool_mu) for creation; declared last: destroyed first
};

HttpFile& Http(OpenFile& f) {
  return static_cast<HttpFile&>(f);
}

// The answer to one ranged GET, checked as it arrives: the headers before the
// first byte, the body straight into the caller's buffers.
class RangeSink final : public BodySink {
 public:
  enum class Verdict { kNone, kOk, kNoRange, kChanged, kBadRange, kTooLong };

  RangeSink(const HttpFile& f, uint64_t offset, std::span<const struct iovec> bufs, uint64_t want)
      : f_(f), offset_(offset), bufs_(bufs), want_(want) {}

  bool Begin(const HttpResponse& r) override {
    if (r.status == 206) {
      if (!f_.SameVersion(r)) return Refuse(Verdict::kChanged, "its ETag or Last-Modified changed");
      auto cr = ParseContentRange(r.content_range);
      if (!cr) return Refuse(Verdict::kBadRange, "206 with Content-Range '" + r.content_range + "'");
      if (cr->total && *cr->total != f_.size) {
        return Refuse(Verdict::kChanged, "its size is now " + std::to_string(*cr->total));
      }
      if (cr->first != offset_ || cr->last != offset_ + want_ - 1) {
        return Refuse(Verdict::kBadRange, "Content-Range '" + r.content_range + "' for bytes " +
                                              std::to_string(offset_) + "-" + std::to_string(offset_ + want_ - 1));
      }
      verdict_ = Verdict::kOk;
      return true;
    }
    if (r.status == 200) {
      // The whole file: the server ignored Range, or If-Range found another version.
      if (!f_.SameVersion(r) || (r.content_length && *r.content_length != f_.size)) {
        return Refuse(Verdict::kChanged, "a 200 of another version (If-Range failed)");
      }
      if (offset_ == 0 && want_ == f_.size) {
        verdict_ = Verdict::kOk;  // the whole file was asked for anyway
        return true;
      }
      return Refuse(Verdict::kNoRange, "");
    }
    return Refuse(Verdict::kBadRange, "HTTP " + std::to_string(r.status) + " to a ranged GET");
  }

  bool Write(const char* data, size_t n) override {
    if (got_ + n > want_) {
      Refuse(Verdict::kTooLong, "more bytes than asked");
      return false;
    }
    got_ += n;
    while (n > 0 && iov_ < bufs_.size()) {
      const struct iovec& v = bufs_[iov_];
      const size_t room = v.iov_len - pos_;
      const size_t c = std::min(room, n);
      std::memcpy(static_cast<char*>(v.iov_base) + pos_, data, c);
      data += c;
      n -= c;
      pos_ += c;
      if (pos_ == v.iov_len) {
        ++iov_;
        pos_ = 0;
      }
    }
    return true;
  }

  Verdict verdict() const { return verdict_; }
  const std::string& why() const { return why_; }
  uint64_t got() const { return got_; }

 private:
  bool Refuse(Verdict v, std::string why) {
    verdict_ = v;
    why_ = std::move(why);
    return false;
  }

  const HttpFile& f_;
  const uint64_t offset_;
  const std::span<const struct iovec> bufs_;
  const uint64_t want_;
  Verdict verdict_ = Verdict::kNone;
  std::string why_;
  uint64_t got_ = 0;
  size_t iov_ = 0;
  size_t pos_ = 0;
};

// The stream of a whole file into its spool.
class SpoolSink final : public BodySink {
 public:
  SpoolSink(const HttpFile& f, Spool& spool) : f_(f), spool_(spool) {}
  bool Begin(const HttpResponse& r) override {
    if (r.status != 200) return false;
    if (!f_.SameVersion(r) || (r.content_length && *r.content_length != f_.size)) {
      changed_ = true;
      return false;
    }
    return true;
  }
  bool Write(const char* data, size_t n) override {
    if (!spool_.Accept(pos_, data, n)) return false;
    pos_ += n;
    return true;
  }
  bool changed() const { return changed_; }
  uint64_t pos() const { return pos_; }

 private:
  const HttpFile& f_;
  Spool& spool_;
  bool changed_ = false;
  uint64_t pos_ = 0;
};

// The body of a listing, bounded.
class BufferSink final : public BodySink {
 public:
  bool Begin(const HttpResponse&) override { return true; }
  bool Write(const char* data, size_t n) override {
    if (body.size() + n > kMaxListingBytes) return false;
    body.append(data, n);
    return true;
  }
  std::string body;
};

// Headers only: a GET whose body is not wanted (HEAD refused by the server).
class HeadersSink final : public BodySink {
 public:
  bool Begin(const HttpResponse&) override { return false; }
  bool Write(const char*, size_t) override { return false; }
};

uint64_t TotalLength(std::span<const struct iovec> bufs) {
  uint64_t n = 0;
  for (const struct iovec& v : bufs) n += v.iov_len;
  return n;
}

ino_t InodeOf(const std::string& identity) {
  const uint64_t h = HashBytes(identity).lo;
  return static_cast<ino_t>(h == 0 ? 1 : h);
}

// A name for a log line: control characters and quotes escaped.
std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<HttpBackend>> HttpBackend::Open(const HttpUrl& url, const SourceOptions& options) {
  ClientConfig config;
  config.origin = url;
  config.ca_file = options.ca_file;
  config.insecure = options.insecure;
  config.timeout_ms = options.timeout_ms == 0 ? 30000 : options.timeout_ms;
  if (!options.credentials_file.empty()) {
    auto creds = ReadCredentialsFile(options.credentials_file);
    if (!creds.ok()) return creds.status();
    config.credentials = std::move(creds.value());
    if (url.scheme == "http" && options.warn) {
      options.warn("credentials for " + url.Canonical() + " go over plain http: anyone on the path can read them");
    }
  }
  if (!options.ca_file.empty() && ::access(options.ca_file.c_str(), R_OK) != 0) {
    return Status::FromErrno(errno, "ca_file " + options.ca_file + ": " + std::strerror(errno));
  }
  auto client = std::make_shared<HttpClient>(std::move(config));
  return std::unique_ptr<HttpBackend>(new HttpBackend(url, std::move(client), options));
}

HttpBackend::HttpBackend(HttpUrl url, std::shared_ptr<HttpClient> client, SourceOptions options)
    : url_(std::move(url)),
      client_(std::move(client)),
      options_(std::move(options)),
      uid_(::getuid()),
      gid_(::getgid()),
      started_(static_cast<int64_t>(::time(nullptr))) {}

Capabilities HttpBackend::capabilities() const {
  Capabilities c;
  c.writable = false;
  c.max_name = 255;
  return c;
}

std::string HttpBackend::UrlOf(const std::string& path, bool dir) const {
  return url_.Origin() + ChildPath(url_.path, path, dir);
}

Attr HttpBackend::DirAttr(const std::string& path, std::optional<int64_t> mtime) const {
  Attr a;
  a.identity = ChildPath(url_.path, path, true);
  a.st.st_mode = S_IFDIR | 0755;
  a.st.st_nlink = 2;
  a.st.st_uid = uid_;
  a.st.st_gid = gid_;
  a.st.st_size = 4096;
  a.st.st_blksize = 4096;
  a.st.st_blocks = 8;
  const time_t t = static_cast<time_t>(mtime.value_or(started_));
  a.st.st_mtim.tv_sec = a.st.st_ctim.tv_sec = a.st.st_atim.tv_sec = t;
  a.st.st_ino = InodeOf(a.identity);
  return a;
}

Attr HttpBackend::FileAttr(const std::string& path, uint64_t size, std::optional<int64_t> mtime,
                           const std::string& etag) const {
  Attr a;
  a.identity = ChildPath(url_.path, path, false);
  a.st.st_mode = S_IFREG | 0444;
  a.st.st_nlink = 1;
  a.st.st_uid = uid_;
  a.st.st_gid = gid_;
  a.st.st_size = static_cast<off_t>(size);
  a.st.st_blksize = 4096;
  a.st.st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  const time_t t = static_cast<time_t>(mtime.value_or(started_));
  a.st.st_mtim.tv_sec = a.st.st_ctim.tv_sec = a.st.st_atim.tv_sec = t;
  a.st.st_ino = InodeOf(a.identity);
  a.coherency.bytes = CoherencyToken(size, mtime, etag);
  return a;
}

// ---------------------------------------------------------------------------
// Listings

Result<HttpBackend::ListingRef> HttpBackend::FetchListing(const std::string& dir) {
  HttpRequest req;
  req.url = UrlOf(dir, true);
  req.compressed = true;
  BufferSink sink;
  req.sink = &sink;
  listings_.fetch_add(1, std::memory_order_relaxed);
  HttpOutcome o = client_->Perform(req);
  const std::string what = "listing " + req.url;
  if (o.refused)
    return Status::FromErrno(EFBIG, what + ": larger than " + std::to_string(kMaxListingBytes >> 20) + " MiB");
  if (o.code != CURLE_OK) return client_->TransportError(o, what);
  if (o.response.status != 200) return client_->StatusError(o, what);
  client_->AddBodyBytes(sink.body.size());
  ListingBase base{url_};
  base.url.path = ChildPath(url_.path, dir, true);
  // Links are relative to where the listing came from (a redirect within the origin).
  if (auto eff = ParseAbsoluteUrl(o.effective_url); eff && eff->SameOrigin(url_) && eff->path.back() == '/') {
    base.url.path = eff->path;
  }
  auto parsed = ParseListing(o.response.content_type, sink.body, base);
  if (!parsed.ok()) return Status::FromErrno(EIO, what + ": " + parsed.status().context());
  auto dl = std::make_shared<DirListing>();
  dl->listing = std::move(parsed.value());
  dl->index.reserve(dl->listing.entries.size());
  for (size_t i = 0; i < dl->listing.entries.size(); ++i) dl->index.emplace(dl->listing.entries[i].name, i);
  if (dl->listing.rejected > 0) {
    rejected_.fetch_add(dl->listing.rejected, std::memory_order_relaxed);
    ReportRejected(dir, dl->listing);
  }
  return ListingRef(std::move(dl));
}

void HttpBackend::ReportRejected(const std::string& dir, const Listing& listing) {
  {
    std::lock_guard lk(mu_);
    if (reported_.size() >= kMaxReported || !reported_.insert(dir).second) return;
  }
  if (!options_.warn) return;
  std::string examples;
  for (const std::string& e : listing.rejected_examples)
    examples += (examples.empty() ? "\"" : ", \"") + Printable(e) + "\"";
  options_.warn("listing " + UrlOf(dir, true) + ": skipped " + std::to_string(listing.rejected) +
                " entries with unsafe names or links outside the directory (e.g. " + examples + ")");
}

Result<HttpBackend::ListingRef> HttpBackend::GetListing(const std::string& dir) {
  std::unique_lock lk(mu_);
  for (;;) {
    MemoSlot& slot = memo_[dir];
    if (slot.listing && Clock::now() < slot.fetched + kListingMemo) return slot.listing;
    if (!slot.loading) break;
    memo_cv_.wait(lk);
  }
  memo_[dir].loading = true;
  lk.unlock();
  const Clock::time_point fetched = Clock::now();
  auto r = FetchListing(dir);
  lk.lock();
  MemoSlot& slot = memo_[dir];
  slot.loading = false;
  if (r.ok()) {
    slot.listing = *r;
    slot.fetched = fetched;
  } else {
    memo_.erase(dir);
  }
  if (memo_.size() > kMaxMemoEntries) {
    const Clock::time_point now = Clock::now();
    for (auto it = memo_.begin(); it != memo_.end();) {
      it = !it->second.loading && now >= it->second.fetched + kListingMemo ? memo_.erase(it) : std::next(it);
    }
  }
  memo_cv_.notify_all();
  return r;
}

Result<std::vector<DirEntry>> HttpBackend::list(const std::string& dir) {
  if (!IsCleanRelativePath(dir)) return Status::Invalid("bad path '" + dir + "'");
  auto dl = GetListing(dir);
  if (!dl.ok()) return dl.status();
  std::vector<DirEntry> out;
  out.reserve((*dl)->listing.entries.size());
  for (const ListingEntry& e : (*dl)->listing.entries) {
    DirEntry d;
    d.name = e.name;
    const std::string path = JoinPath(dir, e.name);
    if (e.is_dir) {
      d.attr = DirAttr(path, e.mtime);
    } else if (e.size && e.mtime && e.mtime_exact) {
      d.attr = FileAttr(path, *e.size, e.mtime, "");
    } else {
      // Name and type only: a lookup of it asks the server (stat -> HEAD).
      d.attr = FileAttr(path, e.size.value_or(0), e.mtime, "");
      d.attr.coherency.bytes.clear();
      d.attr_complete = false;
    }
    out.push_back(std::move(d));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Attributes and opens

Result<HttpBackend::Probe> HttpBackend::ProbeFile(const std::string& path) {
  HttpRequest req;
  req.url = UrlOf(path, false);
  req.head = true;
  heads_.fetch_add(1, std::memory_order_relaxed);
  HttpOutcome o = client_->Perform(req);
  const std::string what = "HEAD " + req.url;
  if (o.code != CURLE_OK) return client_->TransportError(o, what);
  if (o.response.status == 405 || o.response.status == 501) {
    // No HEAD here: the headers of a GET of the first byte instead.
    HttpRequest get;
    get.url = req.url;
    get.range = "0-0";
    HeadersSink sink;
    get.sink = &sink;
    o = client_->Perform(get);
    if (o.code != CURLE_OK && !o.refused) return client_->TransportError(o, "GET " + req.url);
    if (o.response.status == 206) {
      auto cr = ParseContentRange(o.response.content_range);
      if (!cr || !cr->total) return Status::FromErrno(EIO, "GET " + req.url + ": no size in the answer");
      o.response.content_length = *cr->total;
    } else if (o.response.status == 416) {
      o.response.status = 200;
      o.response.content_length = 0;  // an empty file has no byte 0
    }
  }
  if (o.response.status / 100 != 2) return client_->StatusError(o, what);
  const std::string& eff = o.effective_url;
  if (!eff.empty() && eff.back() == '/' && req.url.back() != '/') {
    return Status::FromErrno(EISDIR, req.url + " is a directory");
  }
  if (!o.response.content_length) {
    return Status::NotSupported(what + ": the server gives no Content-Length; files of unknown size are not served");
  }
  Probe p;
  p.url = eff.empty() ? req.url : eff;
  p.size = *o.response.content_length;
  p.etag = o.response.etag;
  p.last_modified = o.response.last_modified;
  if (!p.last_modified.empty()) p.mtime = ParseHttpDate(p.last_modified);
  return p;
}

Result<Attr> HttpBackend::stat(const std::string& path) {
  if (!IsCleanRelativePath(path)) return Status::Invalid("bad path '" + path + "'");
  if (path.empty()) {
    // The root: does the server answer for it? (A listing is fetched when one is wanted.)
    HttpRequest req;
    req.url = UrlOf("", true);
    req.head = true;
    heads_.fetch_add(1, std::memory_order_relaxed);
    HttpOutcome o = client_->Perform(req);
    if (o.code != CURLE_OK) return client_->TransportError(o, "HEAD " + req.url);
    if (o.response.status == 405 || o.response.status == 501) {
      auto dl = GetListing("");
      if (!dl.ok()) return dl.status();
    } else if (o.response.status / 100 != 2) {
      return client_->StatusError(o, "HEAD " + req.url);
    }
    return DirAttr("", std::nullopt);
  }
  auto dl = GetListing(ParentPath(path));
  if (!dl.ok()) return dl.status();
  const std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  auto it = (*dl)->index.find(name);
  if (it == (*dl)->index.end())
    return Status::FromErrno(ENOENT, UrlOf(path, false) + ": not in its directory's listing");
  const ListingEntry& e = (*dl)->listing.entries[it->second];
  if (e.is_dir) return DirAttr(path, e.mtime);
  if (e.size && e.mtime && e.mtime_exact) return FileAttr(path, *e.size, e.mtime, "");
  auto p = ProbeFile(path);
  if (!p.ok()) return p.status();
  return FileAttr(path, p->size, p->mtime, p->etag);
}

Result<OpenFileRef> HttpBackend::open(const std::string& path, int flags) {
  if (!IsCleanRelativePath(path)) return Status::Invalid("bad path '" + path + "'");
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT)) != 0) {
    return Status::ReadOnly(UrlOf(path, false) + ": an http source is read-only");
  }
  if (path.empty()) return Status::FromErrno(EISDIR, UrlOf(path, true) + " is a directory");
  // One HEAD: the version this open reads (close-to-open: always the server's word now).
  auto p = ProbeFile(path);
  if (!p.ok()) return p.status();
  Attr attr = FileAttr(path, p->size, p->mtime, p->etag);
  auto f =
      std::make_shared<HttpFile>(std::move(attr), path, p->url, p->size, p->etag, p->last_modified, p->mtime, client_);
  if (ignores_range_.load(std::memory_order_relaxed)) f->use_spool = true;
  return OpenFileRef(std::move(f));
}

Result<Attr> HttpBackend::fstat(OpenFile& f) {
  // The version the open reads: what it was opened at.
  return f.attr();
}

Result<struct statvfs> HttpBackend::statfs(const std::string&) {
  struct statvfs v {};
  v.f_bsize = 4096;
  v.f_frsize = 4096;
  v.f_namemax = 255;
  v.f_flag = ST_RDONLY;
  return v;
}

// ---------------------------------------------------------------------------
// Reads

Result<size_t> HttpBackend::read_range(OpenFile& of, uint64_t offset, std::span<const struct iovec> bufs,
                                       const ReadOptions& options) {
  HttpFile& f = Http(of);
  if (options.expect != nullptr && !(*options.expect == f.attr().coherency)) {
    stale_.fetch_add(1, std::memory_order_relaxed);
    return Status::Stale(f.url + ": the version expected is not the one this open reads");
  }
  if (offset >= f.size) return size_t{0};
  const uint64_t want = std::min(TotalLength(bufs), f.size - offset);
  if (want == 0) return size_t{0};

  auto from_spool = [&]() -> Result<size_t> {
    Spool* spool;
    {
      std::lock_guard lk(f.spool_mu);
      if (!f.spool) {
        spooled_.fetch_add(1, std::memory_order_relaxed);
        HttpFile* file = &f;
        f.spool = std::make_unique<Spool>(f.size, [file](Spool& sp) -> Status {
          HttpRequest req;
          req.url = file->url;
          req.stream = true;
          req.cancel = &sp.cancelled();
          SpoolSink sink(*file, sp);
          req.sink = &sink;
          HttpOutcome o = file->client->Perform(req);
          file->client->AddBodyBytes(sink.pos());
          const std::string what = "GET " + file->url;
          if (sink.changed()) return Status::Stale(what + ": changed on the server since it was opened");
          if (o.response.status == 404 || o.response.status == 410) {
            return Status::Stale(what + ": gone from the server since it was opened");
          }
          if (o.code != CURLE_OK && !o.refused) return file->client->TransportError(o, what);
          if (o.code == CURLE_OK && o.response.status != 200) return file->client->StatusError(o, what);
          if (o.refused) return Status::Transient(ECANCELED, what + ": stopped");
          return Status::Ok();
        });
      }
      spool = f.spool.get();
    }
    auto r = spool->Read(offset, bufs, static_cast<size_t>(want), options.deadline);
    if (!r.ok() && r.status().kind() == Status::Kind::kStale) stale_.fetch_add(1, std::memory_order_relaxed);
    return r;
  };
  if (f.use_spool.load(std::memory_order_relaxed)) return from_spool();

  char range[48];
  std::snprintf(range, sizeof range, "%llu-%llu", static_cast<unsigned long long>(offset),
                static_cast<unsigned long long>(offset + want - 1));
  HttpRequest req;
  req.url = f.url;
  req.range = range;
  req.headers = f.if_range;
  req.deadline = options.deadline;
  RangeSink sink(f, offset, bufs, want);
  req.sink = &sink;
  HttpOutcome o = client_->Perform(req);
  client_->AddBodyBytes(sink.got());
  const std::string what = "GET " + f.url + " bytes " + range;
  using V = RangeSink::Verdict;
  switch (sink.verdict()) {
    case V::kNoRange:
      // A 200 of this very version: the server has no Range. Stream it once.
      ignores_range_.store(true, std::memory_order_relaxed);
      f.use_spool.store(true, std::memory_order_relaxed);
      return from_spool();
    case V::kChanged:
      stale_.fetch_add(1, std::memory_order_relaxed);
      return Status::Stale(what + ": changed on the server since it was opened (" + sink.why() + ")");
    case V::kBadRange:
    case V::kTooLong:
      return Status::Transient(EIO, what + ": wrong answer: " + sink.why());
    case V::kNone:
    case V::kOk:
      break;
  }
  if (o.code != CURLE_OK) return client_->TransportError(o, what);
  const long s = o.response.status;
  if (s == 416) {
    // Nothing at offset: the file is shorter than the version being read.
    stale_.fetch_add(1, std::memory_order_relaxed);
    return Status::Stale(what + ": 416, the file is shorter than when it was opened");
  }
  if (s == 404 || s == 410) {
    stale_.fetch_add(1, std::memory_order_relaxed);
    return Status::Stale(what + ": gone from the server since it was opened");
  }
  if (s / 100 != 2) return client_->StatusError(o, what);
  if (sink.verdict() != V::kOk) return Status::Transient(EIO, what + ": HTTP " + std::to_string(s) + " without a body");
  if (sink.got() != want) {
    return Status::Transient(
        EIO, what + ": short body (" + std::to_string(sink.got()) + " of " + std::to_string(want) + " bytes)");
  }
  return static_cast<size_t>(want);
}

std::vector<std::pair<std::string, std::string>> HttpBackend::SourceCounters() const {
  auto n = [](const std::atomic<uint64_t>& c) { return std::to_string(c.load(std::memory_order_relaxed)); };
  return {
      {"backend.http.requests", std::to_string(client_->requests())},
      {"backend.http.connections", std::to_string(client_->connections())},
      {"backend.http.body_bytes", std::to_string(client_->body_bytes())},
      {"backend.http.listings", n(listings_)},
      {"backend.http.heads", n(heads_)},
      {"backend.http.listing_rejected", n(rejected_)},
      {"backend.http.spooled_files", n(spooled_)},
      {"backend.http.stale", n(stale_)},
  };
}

}  // namespace cachefuse::netfs::http
