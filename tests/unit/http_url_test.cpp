// Tests for netfs_backends/http/http_url: the SOURCE URL's canonical form,
// what is refused (never quoting userinfo), percent-encoding.
#include <catch2/catch.hpp>

#include "netfs_backends/http/http_url.h"

using cachefuse::Status;
using namespace cachefuse::netfs::http;
using Catch::Matchers::Contains;

TEST_CASE("HttpUrl: canonical form of SOURCE URLs") {
  struct Case {
    const char* spec;
    const char* canonical;
  };
  const Case cases[] = {
      {"http://example.org", "http://example.org/"},
      {"http://example.org/", "http://example.org/"},
      {"HTTP://Example.ORG/pub", "http://example.org/pub/"},
      {"http://example.org:80/pub/", "http://example.org/pub/"},
      {"https://example.org:443/a//b///", "https://example.org/a/b/"},
      {"https://example.org:8443/a", "https://example.org:8443/a/"},
      {"http://127.0.0.1:18080/json", "http://127.0.0.1:18080/json/"},
      {"http://[::1]:8080/x y/", "http://[::1]:8080/x%20y/"},
      {"http://h/a%20b/%7euser/", "http://h/a%20b/~user/"},
      {"http://h/caf%c3%a9", "http://h/caf%C3%A9/"},
  };
  for (const Case& c : cases) {
    INFO(c.spec);
    auto u = ParseSourceUrl(c.spec);
    REQUIRE(u.ok());
    CHECK(u->Canonical() == c.canonical);
  }
  auto u = ParseSourceUrl("https://h:8443/p");
  REQUIRE(u.ok());
  CHECK(u->scheme == "https");
  CHECK(u->host == "h");
  CHECK(u->port == 8443);
  CHECK(u->path == "/p/");
  CHECK(u->Origin() == "https://h:8443");
}

TEST_CASE("HttpUrl: refused SOURCE URLs say why, never quoting userinfo") {
  for (const char* spec : {"http://alice:s3cret@h/x", "http://alice@h/x", "https://a:b@c@h/"}) {
    INFO(spec);
    auto u = ParseSourceUrl(spec);
    REQUIRE_FALSE(u.ok());
    CHECK(u.status().kind() == Status::Kind::kInvalid);
    CHECK_THAT(u.status().context(), Contains("credentials=FILE") && !Contains("alice") && !Contains("s3cret"));
  }
  for (const char* spec :
       {"http://h/a/../b", "http://h/%2e%2e/x", "http://h/./x", "http://h/a%2Fb", "http://h/x?q=1", "http://h/x#f",
        "http://h:0/", "http://h:99999/", "http://h:8a/", "http:///x", "ftp://h/", "http://h/%zz", "http://h/a\x01"}) {
    INFO(spec);
    auto u = ParseSourceUrl(spec);
    REQUIRE_FALSE(u.ok());
    CHECK(u.status().kind() == Status::Kind::kInvalid);
  }
}

TEST_CASE("HttpUrl: percent-encoding is canonical and decoding strict") {
  CHECK(PercentEncodeSegment("a b+c") == "a%20b%2Bc");
  CHECK(PercentEncodeSegment("file-1.2_x~") == "file-1.2_x~");
  CHECK(PercentEncodeSegment("a%2F") == "a%252F");
  CHECK(PercentEncodeSegment("\xc3\xa9") == "%C3%A9");
  CHECK(PercentDecode("a%20b") == std::optional<std::string>("a b"));
  CHECK(PercentDecode("%41%4a%4A") == std::optional<std::string>("AJJ"));
  CHECK_FALSE(PercentDecode("%4").has_value());
  CHECK_FALSE(PercentDecode("%").has_value());
  CHECK_FALSE(PercentDecode("%g0").has_value());
  auto segs = DecodePathSegments("/a%20b//c/");
  REQUIRE(segs.has_value());
  CHECK(*segs == std::vector<std::string>{"a b", "c"});
  CHECK_FALSE(DecodePathSegments("/a%2fb/").has_value());
  CHECK(ChildPath("/pub/", "", true) == "/pub/");
  CHECK(ChildPath("/pub/", "a b/c", false) == "/pub/a%20b/c");
  CHECK(ChildPath("/pub/", "d", true) == "/pub/d/");
  CHECK(ChildPath("/", "x", false) == "/x");
}

TEST_CASE("HttpUrl: absolute URLs from servers and their origin") {
  auto base = ParseSourceUrl("http://h:8080/pub/");
  REQUIRE(base.ok());
  auto same = ParseAbsoluteUrl("HTTP://H:8080/pub/x?y");
  REQUIRE(same.has_value());
  CHECK(same->SameOrigin(*base));
  CHECK(same->path == "/pub/x?y");
  for (const char* other : {"http://h/pub/", "https://h:8080/pub/", "http://evil:8080/pub/", "http://u:p@evil:8080/"}) {
    INFO(other);
    auto o = ParseAbsoluteUrl(other);
    REQUIRE(o.has_value());
    CHECK_FALSE(o->SameOrigin(*base));
  }
  CHECK_FALSE(ParseAbsoluteUrl("/pub/x").has_value());
  CHECK_FALSE(ParseAbsoluteUrl("javascript://alert(1)").has_value());
}
