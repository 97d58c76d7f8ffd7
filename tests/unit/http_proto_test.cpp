// Tests for netfs_backends/http/http_proto: headers, Content-Range, dates,
// the coherency token and the credentials file (its mode is checked).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "netfs_backends/http/http_proto.h"
#include "test_util.h"

using cachefuse::Status;
using cachefuse::test::TempDir;
using cachefuse::test::WriteFile;
using namespace cachefuse::netfs::http;
using Catch::Matchers::Contains;

TEST_CASE("HttpProto: header lines") {
  auto h = ParseHeaderLine("ETag:  \"65a1-1234\"\r\n");
  REQUIRE(h.has_value());
  CHECK(h->name == "etag");
  CHECK(h->value == "\"65a1-1234\"");
  h = ParseHeaderLine("Content-Range: bytes 0-9/10\r\n");
  REQUIRE(h.has_value());
  CHECK(h->name == "content-range");
  CHECK_FALSE(ParseHeaderLine("HTTP/1.1 206 Partial Content\r\n").has_value());
  CHECK_FALSE(ParseHeaderLine("\r\n").has_value());
}

TEST_CASE("HttpProto: Content-Range") {
  auto cr = ParseContentRange("bytes 100-199/1000");
  REQUIRE(cr.has_value());
  CHECK(cr->first == 100);
  CHECK(cr->last == 199);
  CHECK(cr->total == std::optional<uint64_t>(1000));
  cr = ParseContentRange("bytes 0-0/*");
  REQUIRE(cr.has_value());
  CHECK_FALSE(cr->total.has_value());
  for (const char* bad : {"bytes 10-5/100", "bytes 0-99/50", "bytes */100", "items 0-1/2", "bytes 0-1", "bytes -1/2",
                          "bytes 0-99/100x", ""}) {
    INFO(bad);
    CHECK_FALSE(ParseContentRange(bad).has_value());
  }
}

TEST_CASE("HttpProto: HTTP dates in their three forms") {
  CHECK(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT") == std::optional<int64_t>(784111777));
  CHECK(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT") == std::optional<int64_t>(784111777));
  CHECK(ParseHttpDate("Sun Nov  6 08:49:37 1994") == std::optional<int64_t>(784111777));
  CHECK(ParseHttpDate("Tue, 01 Dec 2026 21:43:12 GMT").has_value());
  for (const char* bad : {"", "yesterday", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT trailing"}) {
    INFO(bad);
    CHECK_FALSE(ParseHttpDate(bad).has_value());
  }
}

TEST_CASE("HttpProto: validators and the coherency token") {
  CHECK(IsStrongEtag("\"abc\""));
  CHECK_FALSE(IsStrongEtag("W/\"abc\""));
  CHECK_FALSE(IsStrongEtag(""));
  // The same from a listing (size, exact mtime) as from a HEAD (Content-Length, Last-Modified).
  CHECK(CoherencyToken(1234, 784111777, "") == "1234:784111777");
  CHECK(CoherencyToken(1234, 784111777, "\"x\"") == "1234:784111777");
  CHECK(CoherencyToken(5, std::nullopt, "\"x\"") == "5:etag:\"x\"");
  CHECK(CoherencyToken(0, std::nullopt, "") == "0:");
}

TEST_CASE("HttpProto: credentials text") {
  auto c = ParseCredentials("# mirror\nuser = alice\npassword = \"s3 cret\"\n", "f");
  REQUIRE(c.ok());
  CHECK(c->user == "alice");
  CHECK(c->password == "s3 cret");
  c = ParseCredentials("token=abc.def\n", "f");
  REQUIRE(c.ok());
  CHECK(c->token == "abc.def");
  for (const char* bad :
       {"", "# nothing\n", "user = a\ntoken = b\n", "password = x\n", "colour = red\n", "user\n", "user =\n"}) {
    INFO(bad);
    auto r = ParseCredentials(bad, "f");
    REQUIRE_FALSE(r.ok());
  }
  // Messages name the key, never a value.
  auto r = ParseCredentials("user = alice\nsecret = hunter2\n", "f");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().ToString(), !Contains("hunter2") && !Contains("alice") && Contains("f:2"));
}

TEST_CASE("HttpProto: a credentials file others may read is refused") {
  TempDir tmp;
  const std::string path = tmp / "cred";
  WriteFile(path, "user = alice\npassword = hunter2\n");
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  auto r = ReadCredentialsFile(path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err() == EACCES);
  CHECK_THAT(r.status().ToString(), Contains("0644") && Contains("chmod 600") && !Contains("hunter2"));
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  CHECK_FALSE(ReadCredentialsFile(path).ok());
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  auto ok = ReadCredentialsFile(path);
  REQUIRE(ok.ok());
  CHECK(ok->password == "hunter2");
  auto missing = ReadCredentialsFile(tmp / "none");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.err() == ENOENT);
}
