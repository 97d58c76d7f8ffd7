// Listing: the directory listings HTTP servers generate, parsed into names,
// types, sizes and times. Pure functions, no I/O.
//
// Formats, told apart by Content-Type and shape: nginx autoindex in JSON
// (`autoindex_format json`) and HTML, Apache mod_autoindex (plain list, fancy
// <pre>, fancy table), lighttpd mod_dirlisting, python's http.server. Every
// HTML format is read the same way: each link that names a direct child of
// the directory is an entry (a trailing '/' makes it a directory), and the
// text after the link on its line or table row may carry a time and a size.
//
// Entries are what the server offers inside the directory and nothing else:
// links to the parent, to the directory itself, sort links (`?C=N;O=D`) and
// fragments are ignored; links that would lead outside the directory (other
// hosts, other paths, more than one segment) and names that are not safe file
// names ('/', '.', '..', NUL or control characters, over 255 bytes, also
// when percent-encoded) are rejected and counted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "netfs_backends/http/http_url.h"

namespace cachefuse::netfs::http {

struct ListingEntry {
  std::string name;  // decoded: the file name
  bool is_dir = false;
  std::optional<uint64_t> size;  // only when the listing gives it in bytes (not "1.2K")
  std::optional<int64_t> mtime;  // seconds since the epoch, as the listing shows it
  // mtime is the file's modification time to the second, in UTC (nginx JSON):
  // it can stand in the coherency token. Listings that show minutes or local
  // time give mtime for display only.
  bool mtime_exact = false;
};

struct Listing {
  std::string format;  // "nginx-json", "nginx-html", "apache", "apache-table", "lighttpd", "python", "html"
  std::vector<ListingEntry> entries;
  size_t rejected = 0;                         // unsafe names and links leading outside, skipped
  std::vector<std::string> rejected_examples;  // the first few, as found (for one log line)
};

// Where a listing was fetched from: links are resolved against it.
struct ListingBase {
  HttpUrl url;  // url.path: the directory's path, with a trailing '/'
};

// Parses body by its content type and shape. Fails (kInvalid) for a body that
// is no listing (not HTML or JSON, or JSON of another shape).
Result<Listing> ParseListing(std::string_view content_type, std::string_view body, const ListingBase& base);

// True for a name the source may show: not empty, ".", "..", no '/', NUL or
// control characters, at most 255 bytes.
bool IsSafeName(std::string_view name);

// What one link of an HTML listing is: an entry, a link to ignore, or one to
// reject. Exposed for tests.
enum class LinkKind { kEntry, kIgnore, kReject };
struct Link {
  LinkKind kind = LinkKind::kIgnore;
  std::string name;  // kEntry: the decoded name
  bool is_dir = false;
};
Link ResolveLink(std::string_view href, const ListingBase& base);

}  // namespace cachefuse::netfs::http
