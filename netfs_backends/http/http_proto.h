// HTTP protocol details the http source needs, as pure functions: header
// lines, Content-Range, HTTP dates, the coherency token, the credentials file.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cachefuse::netfs::http {

// "Name: value\r\n" -> ("name", "value"), the name lowercased, the value
// trimmed; nullopt for a line that is no header (the status line, the blank end).
struct HeaderLine {
  std::string name;
  std::string value;
};
std::optional<HeaderLine> ParseHeaderLine(std::string_view line);

// "bytes FIRST-LAST/TOTAL" (TOTAL may be "*"); nullopt if malformed or LAST < FIRST.
struct ContentRange {
  uint64_t first = 0;
  uint64_t last = 0;              // inclusive
  std::optional<uint64_t> total;  // nullopt for "*"
};
std::optional<ContentRange> ParseContentRange(std::string_view value);

// An HTTP date (RFC 9110: IMF-fixdate, RFC 850, asctime) as seconds since the
// epoch, UTC; nullopt if it is none of them.
std::optional<int64_t> ParseHttpDate(std::string_view value);

// A strong ETag ("\"abc\"", not W/"abc"): the only kind If-Range may carry.
bool IsStrongEtag(std::string_view etag);

// The coherency token of a file: "<size>:<mtime seconds>", the same whether
// the listing or a HEAD/GET gave it (HTTP dates and listing times have second
// resolution). Without a time, the ETag stands in ("<size>:etag:<etag>"), and
// without either only the size is known ("<size>:").
std::string CoherencyToken(uint64_t size, std::optional<int64_t> mtime, std::string_view etag);

// A credentials file: "user = NAME" and "password = SECRET", or "token =
// BEARER"; '#' starts a comment, values may be quoted. Messages never quote
// a value.
struct Credentials {
  std::string user;
  std::string password;
  std::string token;
  bool empty() const { return user.empty() && token.empty(); }
};
Result<Credentials> ParseCredentials(std::string_view text, const std::string& path);
// Reads and parses path; refuses a file readable or writable by group or
// others, or one that is not a regular file.
Result<Credentials> ReadCredentialsFile(const std::string& path);

}  // namespace cachefuse::netfs::http
