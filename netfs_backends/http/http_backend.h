// HttpBackend: a directory tree served over http:// or https:// (read-only).
//
// Names, types and, where the listing gives them, sizes and times come from
// the server's directory listings (listing.h); a file's attributes come from
// its parent's listing when that gives its size and exact time, else from a
// HEAD. An open makes one HEAD: its size, time and validator (a strong ETag,
// else Last-Modified) are the version the open reads. Every read is a GET of
// exactly the bytes asked with `Range` and `If-Range: <validator>`, and every
// answer is checked against that version (status, Content-Range, ETag,
// Last-Modified, Content-Length, body length): a changed file is kStale, a
// short or wrong answer kTransient, never a wrong byte. A server that ignores
// Range (a 200 of the same version) gets its file streamed once into a spool
// (spool.h) that serves this open's reads.
//
// The coherency token is "<size>:<mtime seconds>" (http_proto.h), the same
// from a listing as from a HEAD; the identity is the file's URL path.
//
// Thread safety: every call may come from many threads at once (HttpClient's
// pool); mu_ guards the listing memo and the set of directories whose unsafe
// entries were reported.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "netfs_backends/backend.h"
#include "netfs_backends/http/http_client.h"
#include "netfs_backends/http/listing.h"
#include "netfs_backends/registry.h"

namespace cachefuse::netfs::http {

class HttpBackend final : public ReadOnlyBackend {
 public:
  // Reads the credentials file (refused if group or others may read it);
  // connects to nothing.
  static Result<std::unique_ptr<HttpBackend>> Open(const HttpUrl& url, const SourceOptions& options);

  std::string describe() const override { return url_.Canonical(); }
  Capabilities capabilities() const override;

  Result<Attr> stat(const std::string& path) override;
  Result<std::vector<DirEntry>> list(const std::string& dir) override;
  Result<OpenFileRef> open(const std::string& path, int flags) override;
  Result<Attr> fstat(OpenFile& f) override;
  Result<size_t> read_range(OpenFile& f, uint64_t offset, std::span<const struct iovec> bufs,
                            const ReadOptions& options) override;
  Result<struct statvfs> statfs(const std::string& path) override;
  std::vector<std::pair<std::string, std::string>> SourceCounters() const override;

  // How long a fetched listing answers stat() of its entries without a new
  // fetch (lookups of many siblings cost one listing). The attribute cache in
  // front keeps results for attr_timeout on top of this.
  static constexpr std::chrono::milliseconds kListingMemo{1000};

 private:
  HttpBackend(HttpUrl url, std::shared_ptr<HttpClient> client, SourceOptions options);

  struct DirListing {
    Listing listing;
    std::unordered_map<std::string, size_t> index;  // name -> entries[i]
  };
  using ListingRef = std::shared_ptr<const DirListing>;
  struct MemoSlot {
    bool loading = false;
    Clock::time_point fetched{};
    ListingRef listing;
  };
  // The listing of dir: from the memo when fresh, else fetched (one fetch at
  // a time per directory; the others wait for it).
  Result<ListingRef> GetListing(const std::string& dir);
  Result<ListingRef> FetchListing(const std::string& dir);
  void ReportRejected(const std::string& dir, const Listing& listing);

  // What a HEAD (or, where HEAD is refused, a GET of byte 0) says of a file.
  struct Probe {
    std::string url;  // after redirects within the origin
    uint64_t size = 0;
    std::string etag;
    std::string last_modified;
    std::optional<int64_t> mtime;
  };
  Result<Probe> ProbeFile(const std::string& path);

  Attr DirAttr(const std::string& path, std::optional<int64_t> mtime) const;
  Attr FileAttr(const std::string& path, uint64_t size, std::optional<int64_t> mtime, const std::string& etag) const;
  std::string UrlOf(const std::string& path, bool dir) const;

  const HttpUrl url_;
  const std::shared_ptr<HttpClient> client_;
  const SourceOptions options_;
  const uid_t uid_;
  const gid_t gid_;
  const int64_t started_;  // time shown for what the server gives no time

  std::atomic<bool> ignores_range_{false};  // a 200 of the same version was seen for a ranged GET
  std::atomic<uint64_t> listings_{0};
  std::atomic<uint64_t> heads_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> spooled_{0};
  std::atomic<uint64_t> stale_{0};

  std::mutex mu_;
  std::condition_variable memo_cv_;
  std::map<std::string, MemoSlot> memo_;  // GUARDED_BY(mu_)
  std::set<std::string> reported_;        // GUARDED_BY(mu_): directories whose rejected names were logged
};

}  // namespace cachefuse::netfs::http
