// HttpUrl: the SOURCE URL of the http source taken apart and made canonical,
// and the percent-encoding of names. Pure functions; nothing here connects.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cachefuse::netfs::http {

struct HttpUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // lowercase; an IPv6 literal keeps its brackets
  unsigned port = 0;   // explicit or the scheme's default
  std::string path;    // percent-encoded (canonically), starts and ends with '/'

  // "http://host[:port]": the port only when it is not the scheme's default.
  std::string Origin() const;
  // Origin() + path: describe(), the volume key.
  std::string Canonical() const { return Origin() + path; }
  bool SameOrigin(const HttpUrl& o) const { return scheme == o.scheme && host == o.host && port == o.port; }
};

// A SOURCE "http(s)://host[:port]/path[/]": the path normalized ("//" folded,
// each segment decoded and re-encoded canonically, a trailing '/'). Refused:
// userinfo (credentials belong in credentials=FILE), a query or fragment,
// "." or ".." segments (also percent-encoded), an encoded '/', control
// characters, a bad host or port. Messages never quote userinfo.
Result<HttpUrl> ParseSourceUrl(std::string_view spec);

// An absolute URL as a server sends it (Location, links): scheme, host and
// port parsed the same way; path is kept as sent (with any query). nullopt if
// it is not an absolute http(s) URL.
std::optional<HttpUrl> ParseAbsoluteUrl(std::string_view url);

// Percent-decoding; nullopt for a malformed escape ("%zz", "%4").
std::optional<std::string> PercentDecode(std::string_view s);
// Canonical percent-encoding of one path segment: everything but ALPHA,
// DIGIT and "-._~" is encoded (uppercase hex), so the same name always gives
// the same URL (the file's identity).
std::string PercentEncodeSegment(std::string_view name);

// The decoded segments of an encoded absolute path ("/a%20b/c/" -> {"a b",
// "c"}; empty segments dropped); nullopt if an escape is malformed or a
// segment decodes to something holding '/'.
std::optional<std::vector<std::string>> DecodePathSegments(std::string_view path);

// The URL path of a clean relative path below base ("" is base itself);
// dir: with a trailing '/'.
std::string ChildPath(const std::string& base_path, const std::string& rel, bool dir);

}  // namespace cachefuse::netfs::http
