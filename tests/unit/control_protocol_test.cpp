// The control socket's argument escaping: any byte string but NUL round-trips.
#include "common/control_protocol.h"

#include <catch2/catch.hpp>
#include <random>

namespace cachefuse {

TEST_CASE("control arguments with newlines, spaces and percents are one argument", "[control_protocol]") {
  const std::string name = "victim\nX";
  const std::string wire = EscapeControlArg(name);
  CHECK(wire.find('\n') == std::string::npos);
  CHECK(wire == "victim%0AX");
  CHECK(UnescapeControlArg(wire) == name);
  CHECK(EscapeControlArg("a b%c") == "a%20b%25c");
  CHECK(UnescapeControlArg("a%20b%25c") == "a b%c");
  CHECK(EscapeControlArg("dir/\xc3\xa9t\xc3\xa9") == "dir/\xc3\xa9t\xc3\xa9");  // UTF-8 stays readable
}

TEST_CASE("control arguments: NUL and malformed escapes are refused", "[control_protocol]") {
  CHECK_FALSE(UnescapeControlArg("a%00b").has_value());
  CHECK_FALSE(UnescapeControlArg("a%0").has_value());
  CHECK_FALSE(UnescapeControlArg("a%").has_value());
  CHECK_FALSE(UnescapeControlArg("a%zz").has_value());
  CHECK_FALSE(UnescapeControlArg("a b").has_value());   // raw space: not from an escaper
  CHECK_FALSE(UnescapeControlArg("a\nb").has_value());  // raw newline
}

TEST_CASE("control arguments: 4 KiB names and every byte round-trip", "[control_protocol]") {
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::string raw(4096, '\0');
    for (char& c : raw) c = static_cast<char>(1 + rng() % 255);  // any byte but NUL
    const std::string wire = EscapeControlArg(raw);
    CHECK(wire.find_first_of(std::string("\n \r\t\0", 5)) == std::string::npos);
    CHECK(UnescapeControlArg(wire) == raw);
  }
}

}  // namespace cachefuse
