// Percent-escaping of control socket arguments.
#include "common/control_protocol.h"

namespace cachefuse {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string EscapeControlArg(const std::string& raw) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c == 0x7f || c == '%') {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::optional<std::string> UnescapeControlArg(const std::string& escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    const char ch = escaped[i];
    if (static_cast<unsigned char>(ch) < 0x21 || ch == 0x7f) return std::nullopt;  // never sent unescaped
    if (ch != '%') {
      out.push_back(ch);
      continue;
    }
    if (i + 2 >= escaped.size()) return std::nullopt;  // a cut-off escape
    const int hi = HexValue(escaped[i + 1]);
    const int lo = HexValue(escaped[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') return std::nullopt;
    out.push_back(decoded);
    i += 2;
  }
  return out;
}

}  // namespace cachefuse
