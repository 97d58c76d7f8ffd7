// HTTP protocol details: header lines, Content-Range, dates, tokens, credentials.
#include "netfs_backends/http/http_proto.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "common/unique_fd.h"

namespace cachefuse::netfs::http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

int MonthIndex(std::string_view m) {
  static const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  if (m.size() != 3) return -1;
  for (int i = 0; i < 12; ++i) {
    if (std::tolower(static_cast<unsigned char>(m[0])) == kMonths[i][0] &&
        std::tolower(static_cast<unsigned char>(m[1])) == kMonths[i][1] &&
        std::tolower(static_cast<unsigned char>(m[2])) == kMonths[i][2]) {
      return i;
    }
  }
  return -1;
}

std::optional<int64_t> ToEpoch(int year, int mon, int day, int h, int m, int s) {
  if (year < 1970 || year > 9999 || mon < 0 || mon > 11 || day < 1 || day > 31 || h < 0 || h > 23 || m < 0 || m > 59 ||
      s < 0 || s > 60) {
    return std::nullopt;
  }
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  return static_cast<int64_t>(::timegm(&tm));
}

}  // namespace

std::optional<HeaderLine> ParseHeaderLine(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  HeaderLine h;
  for (char c : line.substr(0, colon)) {
    if (c == ' ' || c == '\t') return std::nullopt;  // "HTTP/1.1 200 OK" has no name before a colon
    h.name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  h.value = std::string(Trim(line.substr(colon + 1)));
  return h;
}

std::optional<ContentRange> ParseContentRange(std::string_view v) {
  v = Trim(v);
  if (v.size() < 6 || v.substr(0, 6) != "bytes ") return std::nullopt;
  v.remove_prefix(6);
  v = Trim(v);
  size_t dash = v.find('-');
  size_t slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
  auto first = ParseU64(v.substr(0, dash));
  auto last = ParseU64(v.substr(dash + 1, slash - dash - 1));
  if (!first || !last || *last < *first) return std::nullopt;
  ContentRange cr{*first, *last, std::nullopt};
  std::string_view total = v.substr(slash + 1);
  if (total != "*") {
    auto t = ParseU64(total);
    if (!t || *t <= *last) return std::nullopt;
    cr.total = *t;
  }
  return cr;
}

std::optional<int64_t> ParseHttpDate(std::string_view value) {
  std::string v(Trim(value));
  char wday[16] = {};
  char mon[4] = {};
  int day = 0, year = 0, h = 0, m = 0, s = 0;
  int n = 0;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (std::sscanf(v.c_str(), "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wday, &day, mon, &year, &h, &m, &s,
                  &n) == 7 &&
      n == static_cast<int>(v.size())) {
    return ToEpoch(year, MonthIndex(mon), day, h, m, s);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  n = 0;
  if (std::sscanf(v.c_str(), "%15[A-Za-z], %2d-%3[A-Za-z]-%4d %2d:%2d:%2d GMT%n", wday, &day, mon, &year, &h, &m, &s,
                  &n) == 7 &&
      n == static_cast<int>(v.size())) {
    if (year < 100) year += year < 70 ? 2000 : 1900;
    return ToEpoch(year, MonthIndex(mon), day, h, m, s);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  n = 0;
  if (std::sscanf(v.c_str(), "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wday, mon, &day, &h, &m, &s, &year, &n) ==
          7 &&
      n == static_cast<int>(v.size())) {
    return ToEpoch(year, MonthIndex(mon), day, h, m, s);
  }
  return std::nullopt;
}

bool IsStrongEtag(std::string_view etag) {
  return etag.size() >= 2 && etag.front() == '"' && etag.back() == '"';
}

std::string CoherencyToken(uint64_t size, std::optional<int64_t> mtime, std::string_view etag) {
  std::string t = std::to_string(size) + ":";
  if (mtime) return t + std::to_string(*mtime);
  if (!etag.empty()) return t + "etag:" + std::string(etag);
  return t;
}

Result<Credentials> ParseCredentials(std::string_view text, const std::string& path) {
  Credentials c;
  size_t lineno = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++lineno;
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "credentials file " + path + ":" + std::to_string(lineno);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Status::Invalid(where + ": expected key = value");
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (value.empty()) return Status::Invalid(where + ": " + std::string(key) + " has no value");
    if (key == "user" || key == "username") {
      c.user = std::string(value);
    } else if (key == "password") {
      c.password = std::string(value);
    } else if (key == "token") {
      c.token = std::string(value);
    } else {
      return Status::Invalid(where + ": unknown key '" + std::string(key) + "' (user, password, token)");
    }
  }
  const std::string what = "credentials file " + path;
  if (!c.token.empty() && (!c.user.empty() || !c.password.empty())) {
    return Status::Invalid(what + ": give either user and password, or token, not both");
  }
  if (!c.password.empty() && c.user.empty()) return Status::Invalid(what + ": password without user");
  if (c.empty()) return Status::Invalid(what + ": neither user nor token in it");
  return c;
}

Result<Credentials> ReadCredentialsFile(const std::string& path) {
  const std::string what = "credentials file " + path;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return Status::FromErrno(errno, what + ": cannot be opened: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, what + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status::Invalid(what + ": not a regular file");
  if ((st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Fatal(EACCES, what + " is readable or writable by group or others (mode " + mode +
                                     "); refusing to use it: chmod 600 " + path);
  }
  if (st.st_size > (1 << 16)) return Status::Invalid(what + ": too large for a credentials file");
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, what + ": " + std::strerror(errno));
    text.append(buf, static_cast<size_t>(n));
  }
  auto c = ParseCredentials(text, path);
  // The text held the secret: do not leave it in freed memory longer than needed.
  std::fill(text.begin(), text.end(), '\0');
  return c;
}

}  // namespace cachefuse::netfs::http
