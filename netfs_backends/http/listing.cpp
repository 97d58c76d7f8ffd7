// Listing: parsers of HTTP directory listings (nginx JSON and HTML, Apache,
// lighttpd, python's http.server) and the rules for which links are entries.
#include "netfs_backends/http/listing.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_set>

#include "netfs_backends/http/http_proto.h"

namespace cachefuse::netfs::http {
namespace {

constexpr size_t kMaxExamples = 3;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

char LowerChar(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// Case-insensitive: does s hold word at pos?
bool AtCI(std::string_view s, size_t pos, std::string_view word) {
  if (pos + word.size() > s.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (LowerChar(s[pos + i]) != word[i]) return false;
  }
  return true;
}

size_t FindCI(std::string_view s, std::string_view word, size_t from) {
  if (word.empty()) return from;
  for (size_t i = from; i + word.size() <= s.size(); ++i) {
    if (LowerChar(s[i]) == word[0] && AtCI(s, i, word)) return i;
  }
  return std::string_view::npos;
}

bool ContainsCI(std::string_view s, std::string_view word) {
  return FindCI(s, word, 0) != std::string_view::npos;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// HTML character references: the named few listings use, and numeric ones.
// nbsp_space: &nbsp; as a plain space (in text; a name keeps U+00A0).
std::string DecodeEntities(std::string_view s, bool nbsp_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back('&');
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    uint32_t cp = 0;
    bool ok = true;
    if (ent == "amp") {
      cp = '&';
    } else if (ent == "lt") {
      cp = '<';
    } else if (ent == "gt") {
      cp = '>';
    } else if (ent == "quot") {
      cp = '"';
    } else if (ent == "apos") {
      cp = '\'';
    } else if (ent == "nbsp") {
      cp = nbsp_space ? ' ' : 0xA0;
    } else if (ent.size() >= 2 && ent[0] == '#') {
      const bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      if (digits.empty()) ok = false;
      for (char c : digits) {
        int v = std::isdigit(static_cast<unsigned char>(c))           ? c - '0'
                : hex && std::isxdigit(static_cast<unsigned char>(c)) ? LowerChar(c) - 'a' + 10
                                                                      : -1;
        if (v < 0 || cp > 0x10FFFF) {
          ok = false;
          break;
        }
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
      }
      if (cp > 0x10FFFF) ok = false;
    } else {
      ok = false;
    }
    if (!ok) {
      out.push_back('&');
      continue;
    }
    AppendUtf8(out, cp);
    i = semi;
  }
  return out;
}

bool IsSchemeChar(char c, bool first) {
  const auto u = static_cast<unsigned char>(c);
  return first ? std::isalpha(u) != 0 : (std::isalnum(u) || c == '+' || c == '-' || c == '.');
}

// The length of a "scheme:" prefix of href, 0 if none.
size_t SchemeLength(std::string_view href) {
  for (size_t i = 0; i < href.size(); ++i) {
    if (href[i] == ':') return i;
    if (!IsSchemeChar(href[i], i == 0)) return 0;
  }
  return 0;
}

bool HasControlChar(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

// A name that is safe as it stands but decodes (once more) into '/' or a dot
// segment: refused, whatever the server meant by it.
bool EncodesUnsafe(std::string_view name) {
  if (name.find('%') == std::string_view::npos) return false;
  auto d = PercentDecode(name);
  return d && (d->find('/') != std::string::npos || *d == "." || *d == ".." || HasControlChar(*d));
}

std::string Example(std::string_view s) {
  return std::string(s.substr(0, 64));
}

class Collector {
 public:
  explicit Collector(Listing& out) : out_(out) {}
  void Reject(std::string_view what) {
    ++out_.rejected;
    if (out_.rejected_examples.size() < kMaxExamples) out_.rejected_examples.push_back(Example(what));
  }
  void Add(ListingEntry e) {
    if (!IsSafeName(e.name) || EncodesUnsafe(e.name)) {
      Reject(e.name);
      return;
    }
    if (!seen_.insert(e.name).second) return;  // a name listed twice: the first wins
    out_.entries.push_back(std::move(e));
  }

 private:
  Listing& out_;
  std::unordered_set<std::string> seen_;
};

// ---------------------------------------------------------------------------
// Times and sizes in the text after a link.

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

int Num(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

int MonthOf(std::string_view m) {
  static const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  if (m.size() != 3) return -1;
  for (int i = 0; i < 12; ++i) {
    if (LowerChar(m[0]) == kMonths[i][0] && LowerChar(m[1]) == kMonths[i][1] && LowerChar(m[2]) == kMonths[i][2]) {
      return i;
    }
  }
  return -1;
}

// "HH:MM" or "HH:MM:SS".
bool ParseClock(std::string_view t, int* h, int* m, int* s) {
  if (t.size() != 5 && t.size() != 8) return false;
  if (t[2] != ':' || !AllDigits(t.substr(0, 2)) || !AllDigits(t.substr(3, 2))) return false;
  *h = Num(t.substr(0, 2));
  *m = Num(t.substr(3, 2));
  *s = 0;
  if (t.size() == 8) {
    if (t[5] != ':' || !AllDigits(t.substr(6, 2))) return false;
    *s = Num(t.substr(6, 2));
  }
  return *h < 24 && *m < 60 && *s <= 60;
}

// "01-Jan-2024" (nginx), "2024-01-01" (Apache), "2024-Jan-01" (lighttpd).
bool ParseDay(std::string_view d, int* year, int* mon, int* day) {
  if (d.size() == 11 && d[2] == '-' && d[6] == '-' && AllDigits(d.substr(0, 2)) && AllDigits(d.substr(7, 4))) {
    *day = Num(d.substr(0, 2));
    *mon = MonthOf(d.substr(3, 3));
    *year = Num(d.substr(7, 4));
  } else if (d.size() == 10 && d[4] == '-' && d[7] == '-' && AllDigits(d.substr(0, 4)) && AllDigits(d.substr(5, 2)) &&
             AllDigits(d.substr(8, 2))) {
    *year = Num(d.substr(0, 4));
    *mon = Num(d.substr(5, 2)) - 1;
    *day = Num(d.substr(8, 2));
  } else if (d.size() == 11 && d[4] == '-' && d[8] == '-' && AllDigits(d.substr(0, 4)) && AllDigits(d.substr(9, 2))) {
    *year = Num(d.substr(0, 4));
    *mon = MonthOf(d.substr(5, 3));
    *day = Num(d.substr(9, 2));
  } else {
    return false;
  }
  return *mon >= 0 && *mon < 12 && *day >= 1 && *day <= 31 && *year >= 1970 && *year <= 9999;
}

// The visible text of an HTML fragment: tags become spaces, references are decoded.
std::string VisibleText(std::string_view html) {
  std::string text;
  text.reserve(html.size());
  bool in_tag = false;
  for (char c : html) {
    if (in_tag) {
      if (c == '>') {
        in_tag = false;
        text.push_back(' ');
      }
    } else if (c == '<') {
      in_tag = true;
    } else {
      text.push_back(c);
    }
  }
  return DecodeEntities(text, true);
}

std::vector<std::string_view> Tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Time and size from the text after an entry's link: a date and a clock, then
// the size ("-" for directories; "1.2K" is approximate and not taken).
void ReadDetails(std::string_view tail_html, ListingEntry* e) {
  const std::string text = VisibleText(tail_html);
  const std::vector<std::string_view> tok = Tokens(text);
  for (size_t i = 0; i + 1 < tok.size(); ++i) {
    int year, mon, day, h, m, s;
    if (!ParseDay(tok[i], &year, &mon, &day) || !ParseClock(tok[i + 1], &h, &m, &s)) continue;
    struct tm tm {};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s;
    e->mtime = static_cast<int64_t>(::timegm(&tm));
    if (i + 2 < tok.size() && AllDigits(tok[i + 2]) && tok[i + 2].size() <= 19 && !e->is_dir) {
      e->size = std::stoull(std::string(tok[i + 2]));
    }
    return;
  }
}

// ---------------------------------------------------------------------------
// HTML

// The value of attribute `name` in the attribute text of a tag, entity-decoded.
std::optional<std::string> Attribute(std::string_view attrs, std::string_view name) {
  size_t i = 0;
  while (i < attrs.size()) {
    while (i < attrs.size() && (IsSpace(attrs[i]) || attrs[i] == '/')) ++i;
    size_t ns = i;
    while (i < attrs.size() && !IsSpace(attrs[i]) && attrs[i] != '=' && attrs[i] != '>') ++i;
    std::string_view an = attrs.substr(ns, i - ns);
    while (i < attrs.size() && IsSpace(attrs[i])) ++i;
    std::string_view value;
    if (i < attrs.size() && attrs[i] == '=') {
      ++i;
      while (i < attrs.size() && IsSpace(attrs[i])) ++i;
      if (i < attrs.size() && (attrs[i] == '"' || attrs[i] == '\'')) {
        char q = attrs[i++];
        size_t vs = i;
        while (i < attrs.size() && attrs[i] != q) ++i;
        value = attrs.substr(vs, i - vs);
        if (i < attrs.size()) ++i;
      } else {
        size_t vs = i;
        while (i < attrs.size() && !IsSpace(attrs[i])) ++i;
        value = attrs.substr(vs, i - vs);
      }
    }
    if (an.size() == name.size() && AtCI(an, 0, name)) return DecodeEntities(value, false);
    if (an.empty()) ++i;
  }
  return std::nullopt;
}

// The end of a tag starting at pos ('<'): the '>' outside quotes.
size_t TagEnd(std::string_view s, size_t pos) {
  char quote = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    if (quote) {
      if (s[i] == quote) quote = 0;
    } else if (s[i] == '"' || s[i] == '\'') {
      quote = s[i];
    } else if (s[i] == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

// Where the row of a link ends: the end of its line, or the next row, list
// item or link.
size_t RowEnd(std::string_view s, size_t from) {
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] == '\n') return i;
    if (s[i] != '<') continue;
    if (AtCI(s, i, "</tr") || AtCI(s, i, "<tr") || AtCI(s, i, "</li") || AtCI(s, i, "<li") || AtCI(s, i, "</pre") ||
        AtCI(s, i, "<br") || AtCI(s, i, "</table")) {
      return i;
    }
    if (AtCI(s, i, "<a") && i + 2 < s.size() && IsSpace(s[i + 2])) return i;
  }
  return s.size();
}

std::string HtmlFormat(std::string_view body) {
  if (ContainsCI(body, "<title>directory listing for")) return "python";
  if (ContainsCI(body, "?c=n;o=") || ContainsCI(body, "?c=m;o=") || ContainsCI(body, "parent directory</a>")) {
    return ContainsCI(body, "<table") ? "apache-table" : "apache";
  }
  if (ContainsCI(body, "lighttpd") || ContainsCI(body, "summary=\"directory listing\"")) return "lighttpd";
  if (ContainsCI(body, "<h1>index of ") && ContainsCI(body, "<pre>")) return "nginx-html";
  return "html";
}

Listing ParseHtml(std::string_view body, const ListingBase& base) {
  Listing out;
  out.format = HtmlFormat(body);
  Collector c(out);
  size_t pos = 0;
  while ((pos = FindCI(body, "<a", pos)) != std::string_view::npos) {
    if (pos + 2 >= body.size() || !IsSpace(body[pos + 2])) {
      pos += 2;
      continue;
    }
    size_t tag_end = TagEnd(body, pos);
    if (tag_end == std::string_view::npos) break;
    auto href = Attribute(body.substr(pos + 2, tag_end - pos - 2), "href");
    size_t close = FindCI(body, "</a", tag_end);
    size_t after = close == std::string_view::npos ? tag_end + 1 : TagEnd(body, close);
    after = after == std::string_view::npos ? body.size() : after + 1;
    size_t row_end = RowEnd(body, after);
    pos = after;
    if (!href) continue;
    Link link = ResolveLink(*href, base);
    if (link.kind == LinkKind::kIgnore) continue;
    if (link.kind == LinkKind::kReject) {
      c.Reject(*href);
      continue;
    }
    ListingEntry e;
    e.name = std::move(link.name);
    e.is_dir = link.is_dir;
    ReadDetails(body.substr(after, row_end - after), &e);
    c.Add(std::move(e));
  }
  return out;
}

// ---------------------------------------------------------------------------
// JSON (nginx autoindex_format json): an array of flat objects.

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}

  void Ws() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
  }
  bool Eat(char c) {
    Ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    Ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  bool AtEnd() {
    Ws();
    return i_ == s_.size();
  }

  bool String(std::string* out) {
    if (!Eat('"')) return false;
    out->clear();
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            i_ += 2;
            uint32_t lo = 0;
            if (!Hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(*out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  // A number, true, false, null, or a nested value skipped; numbers that are
  // whole and non-negative come back in *u.
  bool Value(std::string* str, std::optional<uint64_t>* u, bool* is_string) {
    Ws();
    *is_string = false;
    u->reset();
    if (Peek('"')) {
      *is_string = true;
      return String(str);
    }
    if (Peek('{') || Peek('[')) return Skip(0);
    size_t start = i_;
    while (i_ < s_.size() && !IsSpace(s_[i_]) && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']') ++i_;
    std::string_view tok = s_.substr(start, i_ - start);
    if (tok == "true" || tok == "false" || tok == "null") return true;
    if (tok.empty()) return false;
    if (AllDigits(tok) && tok.size() <= 19) {
      *u = std::stoull(std::string(tok));
      return true;
    }
    for (char c : tok) {
      if (!std::isdigit(static_cast<unsigned char>(c)) && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E') {
        return false;
      }
    }
    return true;
  }

 private:
  bool Hex4(uint32_t* cp) {
    if (i_ + 4 > s_.size()) return false;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
      *cp = *cp * 16 +
            static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : LowerChar(c) - 'a' + 10);
    }
    return true;
  }
  bool Skip(int depth) {
    if (depth > 64) return false;
    if (Eat('{')) {
      if (Eat('}')) return true;
      do {
        std::string k;
        if (!String(&k) || !Eat(':') || !SkipValue(depth)) return false;
      } while (Eat(','));
      return Eat('}');
    }
    if (Eat('[')) {
      if (Eat(']')) return true;
      do {
        if (!SkipValue(depth)) return false;
      } while (Eat(','));
      return Eat(']');
    }
    return false;
  }
  bool SkipValue(int depth) {
    Ws();
    if (Peek('{') || Peek('[')) return Skip(depth + 1);
    std::string s;
    std::optional<uint64_t> u;
    bool is_string;
    return Value(&s, &u, &is_string);
  }

  std::string_view s_;
  size_t i_ = 0;
};

Result<Listing> ParseJson(std::string_view body) {
  Listing out;
  out.format = "nginx-json";
  Collector c(out);
  JsonReader r(body);
  auto bad = [] { return Status::Invalid("JSON listing not understood (want an array of {name, type, ...})"); };
  if (!r.Eat('[')) return bad();
  if (r.Eat(']')) return r.AtEnd() ? Result<Listing>(std::move(out)) : bad();
  do {
    if (!r.Eat('{')) return bad();
    ListingEntry e;
    std::string type;
    bool has_name = false;
    if (!r.Eat('}')) {
      do {
        std::string key, str;
        std::optional<uint64_t> num;
        bool is_string = false;
        if (!r.String(&key) || !r.Eat(':') || !r.Value(&str, &num, &is_string)) return bad();
        if (key == "name" && is_string) {
          e.name = std::move(str);
          has_name = true;
        } else if (key == "type" && is_string) {
          type = std::move(str);
        } else if (key == "mtime" && is_string) {
          e.mtime = ParseHttpDate(str);
          e.mtime_exact = e.mtime.has_value();
        } else if (key == "size" && num) {
          e.size = *num;
        }
      } while (r.Eat(','));
      if (!r.Eat('}')) return bad();
    }
    if (!has_name) continue;
    if (type == "directory") {
      e.is_dir = true;
      e.size.reset();
    } else if (type != "file") {
      continue;  // "other": neither a file nor a directory nginx would serve
    }
    c.Add(std::move(e));
  } while (r.Eat(','));
  if (!r.Eat(']') || !r.AtEnd()) return bad();
  return out;
}

}  // namespace

bool IsSafeName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && !HasControlChar(name);
}

Link ResolveLink(std::string_view href_in, const ListingBase& base) {
  Link out;
  std::string_view href = href_in;
  while (!href.empty() && IsSpace(href.front())) href.remove_prefix(1);
  while (!href.empty() && IsSpace(href.back())) href.remove_suffix(1);
  if (href.empty() || href.front() == '#') return out;       // the page itself
  if (href.find('?') != std::string_view::npos) return out;  // sort links, queries
  if (size_t hash = href.find('#'); hash != std::string_view::npos) href = href.substr(0, hash);
  out.kind = LinkKind::kReject;
  if (HasControlChar(href) || href.find('\\') != std::string_view::npos) return out;
  std::string path;
  if (size_t n = SchemeLength(href); n > 0) {
    auto url = ParseAbsoluteUrl(href);
    if (!url || !url->SameOrigin(base.url)) return out;  // another host, port or scheme; mailto:, javascript:
    path = url->path;
  } else if (href.size() >= 2 && href[0] == '/' && href[1] == '/') {
    auto url = ParseAbsoluteUrl(base.url.scheme + ":" + std::string(href));
    if (!url || !url->SameOrigin(base.url)) return out;
    path = url->path;
  } else if (href.front() == '/') {
    path = std::string(href);
  } else {
    path = base.url.path + std::string(href);
  }
  // Dot segments as sent are resolved (RFC 3986 5.2.4); encoded ones, and
  // encoded slashes, are refused: a server has no business sending them.
  const bool is_dir = path.back() == '/';
  std::vector<std::string> segs;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view raw = std::string_view(path).substr(start, end - start);
    start = end + 1;
    if (raw.empty() || raw == ".") continue;
    if (raw == "..") {
      if (segs.empty()) return out;  // above the server's root
      segs.pop_back();
      continue;
    }
    auto dec = PercentDecode(raw);
    if (!dec || dec->find('/') != std::string::npos || *dec == "." || *dec == ".." || dec->empty()) return out;
    segs.push_back(std::move(*dec));
  }
  auto base_segs = DecodePathSegments(base.url.path);
  if (!base_segs) return out;
  const size_t nb = base_segs->size();
  const size_t common = std::min(segs.size(), nb);
  const bool prefix = std::equal(segs.begin(), segs.begin() + static_cast<ptrdiff_t>(common), base_segs->begin());
  if (prefix && segs.size() <= nb) {
    out.kind = LinkKind::kIgnore;  // the directory itself or one of its parents
    return out;
  }
  if (!prefix || segs.size() != nb + 1) return out;  // elsewhere on the server, or deeper
  if (!IsSafeName(segs.back())) return out;
  out.kind = LinkKind::kEntry;
  out.name = std::move(segs.back());
  out.is_dir = is_dir;
  return out;
}

Result<Listing> ParseListing(std::string_view content_type, std::string_view body, const ListingBase& base) {
  std::string ct;
  for (char c : content_type) ct.push_back(LowerChar(c));
  size_t first = 0;
  while (first < body.size() && IsSpace(body[first])) ++first;
  const bool looks_json = first < body.size() && body[first] == '[';
  if (ct.find("json") != std::string::npos || (ct.empty() && looks_json)) return ParseJson(body);
  if (ct.find("html") != std::string::npos || (ct.empty() && ContainsCI(body.substr(0, 1024), "<html"))) {
    return ParseHtml(body, base);
  }
  if (looks_json) return ParseJson(body);
  return Status::Invalid("not a directory listing (Content-Type " + (ct.empty() ? std::string("none") : ct) + ")");
}

}  // namespace cachefuse::netfs::http
