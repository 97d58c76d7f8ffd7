// HttpUrl: parsing and canonical form of http(s) URLs, percent-encoding.
#include "netfs_backends/http/http_url.h"

#include <cctype>

namespace cachefuse::netfs::http {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

unsigned DefaultPort(const std::string& scheme) {
  return scheme == "https" ? 443 : 80;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool HasControl(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

struct Authority {
  std::string host;
  unsigned port = 0;
};

// host[:port] (no userinfo): a reg-name of letters, digits, '-', '.', '_' or
// an IPv6 literal in brackets.
std::optional<Authority> ParseAuthority(std::string_view a, const std::string& scheme) {
  Authority out;
  std::string_view host = a;
  std::string_view port;
  if (!a.empty() && a.front() == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = a.substr(0, close + 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
    for (char c : host.substr(1, host.size() - 2)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return std::nullopt;
    }
    if (host.size() < 3) return std::nullopt;
  } else {
    size_t colon = a.rfind(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
    }
    if (host.empty()) return std::nullopt;
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return std::nullopt;
    }
  }
  out.host = Lower(host);
  if (port.empty()) {
    out.port = DefaultPort(scheme);
  } else {
    if (port.size() > 5) return std::nullopt;
    unsigned p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p == 0 || p > 65535) return std::nullopt;
    out.port = p;
  }
  return out;
}

}  // namespace

std::string HttpUrl::Origin() const {
  std::string o = scheme + "://" + host;
  if (port != DefaultPort(scheme)) o += ":" + std::to_string(port);
  return o;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]);
    int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string PercentEncodeSegment(std::string_view name) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::optional<std::vector<std::string>> DecodePathSegments(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (!seg.empty()) {
      auto d = PercentDecode(seg);
      if (!d || d->find('/') != std::string::npos) return std::nullopt;
      out.push_back(std::move(*d));
    }
    start = end + 1;
  }
  return out;
}

std::string ChildPath(const std::string& base_path, const std::string& rel, bool dir) {
  std::string out = base_path;
  size_t start = 0;
  while (!rel.empty() && start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    if (out.back() != '/') out.push_back('/');
    out += PercentEncodeSegment(std::string_view(rel).substr(start, end - start));
    start = end + 1;
  }
  if (dir && out.back() != '/') out.push_back('/');
  return out;
}

Result<HttpUrl> ParseSourceUrl(std::string_view spec) {
  HttpUrl url;
  size_t sep = spec.find("://");
  if (sep == std::string_view::npos) return Status::Invalid("not an http(s) URL");
  url.scheme = Lower(spec.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") {
    return Status::Invalid("not an http(s) URL (scheme " + url.scheme + ")");
  }
  std::string_view rest = spec.substr(sep + 3);
  size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view path = auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
  if (authority.find('@') != std::string_view::npos) {
    // Not quoted: what is before '@' is a secret.
    return Status::Invalid(url.scheme +
                           " SOURCE: credentials in the URL are not accepted (they would show in ps "
                           "and /proc/mounts); put them in a file given as -o credentials=FILE (mode 0600)");
  }
  if (HasControl(spec)) return Status::Invalid(url.scheme + " SOURCE: control characters in the URL");
  auto auth = ParseAuthority(authority, url.scheme);
  if (!auth) return Status::Invalid(url.scheme + " SOURCE: bad host or port '" + std::string(authority) + "'");
  url.host = auth->host;
  url.port = auth->port;
  if (path.find_first_of("?#") != std::string_view::npos) {
    return Status::Invalid(url.scheme + " SOURCE: a query or fragment cannot name a directory (" + std::string(path) +
                           ")");
  }
  auto segments = DecodePathSegments(path);
  if (!segments) {
    return Status::Invalid(url.scheme + " SOURCE: bad path '" + std::string(path) +
                           "' (a malformed %-escape or an encoded '/')");
  }
  url.path = "/";
  for (const std::string& s : *segments) {
    if (s == "." || s == "..") {
      return Status::Invalid(url.scheme + " SOURCE: '.' and '..' are not allowed in the path '" + std::string(path) +
                             "'");
    }
    if (HasControl(s)) return Status::Invalid(url.scheme + " SOURCE: control characters in the path");
    url.path += PercentEncodeSegment(s) + "/";
  }
  return url;
}

std::optional<HttpUrl> ParseAbsoluteUrl(std::string_view s) {
  size_t sep = s.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  HttpUrl url;
  url.scheme = Lower(s.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") return std::nullopt;
  std::string_view rest = s.substr(sep + 3);
  size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  // Userinfo in a server's URL: accepted for the comparison, never kept.
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  auto auth = ParseAuthority(authority, url.scheme);
  if (!auth) return std::nullopt;
  url.host = auth->host;
  url.port = auth->port;
  url.path = auth_end == std::string_view::npos ? "/" : std::string(rest.substr(auth_end));
  if (url.path.front() != '/') url.path.insert(0, "/");
  return url;
}

}  // namespace cachefuse::netfs::http
