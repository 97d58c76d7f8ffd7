// Tests for netfs_backends/http/listing: the listings real servers generate
// (samples written after nginx 1.22, Apache 2.4, lighttpd 1.4 and python
// 3.11 output), and the links a listing must never turn into entries.
#include <catch2/catch.hpp>

#include <map>

#include "netfs_backends/http/http_proto.h"
#include "netfs_backends/http/listing.h"

using cachefuse::Status;
using namespace cachefuse::netfs::http;

namespace {

ListingBase Base(const std::string& url) {
  auto u = ParseSourceUrl(url);
  REQUIRE(u.ok());
  return ListingBase{*u};
}

std::map<std::string, ListingEntry> ByName(const Listing& l) {
  std::map<std::string, ListingEntry> m;
  for (const ListingEntry& e : l.entries) m[e.name] = e;
  return m;
}

int64_t Utc(const char* http_date) {
  auto t = ParseHttpDate(http_date);
  REQUIRE(t.has_value());
  return *t;
}

}  // namespace

TEST_CASE("Listing: nginx JSON autoindex") {
  const std::string body = R"([
{ "name":"sub dir", "type":"directory", "mtime":"Tue, 01 Dec 2026 21:43:12 GMT" },
{ "name":"a.txt", "type":"file", "mtime":"Tue, 01 Dec 2026 21:43:12 GMT", "size":6 },
{ "name":"quo\"te\\s \u00e9", "type":"file", "mtime":"Wed, 02 Dec 2026 01:02:03 GMT", "size":12345678901 },
{ "name":"link", "type":"other", "mtime":"Tue, 01 Dec 2026 21:43:12 GMT" },
{ "name":"empty", "type":"file", "mtime":"Tue, 01 Dec 2026 21:43:12 GMT", "size":0 }
])";
  auto l = ParseListing("application/json", body, Base("http://h/json/"));
  REQUIRE(l.ok());
  CHECK(l->format == "nginx-json");
  auto m = ByName(*l);
  REQUIRE(m.size() == 4);
  CHECK(m["sub dir"].is_dir);
  CHECK_FALSE(m["sub dir"].size.has_value());
  CHECK(m["a.txt"].size == std::optional<uint64_t>(6));
  CHECK(m["a.txt"].mtime == std::optional<int64_t>(Utc("Tue, 01 Dec 2026 21:43:12 GMT")));
  CHECK(m["a.txt"].mtime_exact);
  CHECK(m["quo\"te\\s \xc3\xa9"].size == std::optional<uint64_t>(12345678901ULL));
  CHECK(m["empty"].size == std::optional<uint64_t>(0));
  CHECK(l->rejected == 0);
  // The shape decides when the type does not say.
  auto l2 = ParseListing("", "[]", Base("http://h/"));
  REQUIRE(l2.ok());
  CHECK(l2->entries.empty());
  CHECK_FALSE(ParseListing("application/json", "{\"name\": 1}", Base("http://h/")).ok());
  CHECK_FALSE(ParseListing("application/json", "[{\"name\": \"x\"", Base("http://h/")).ok());
}

TEST_CASE("Listing: nginx HTML autoindex") {
  const std::string body =
      "<html>\r\n<head><title>Index of /html/</title></head>\r\n<body>\r\n"
      "<h1>Index of /html/</h1><hr><pre><a href=\"../\">../</a>\r\n"
      "<a href=\"sub/\">sub/</a>                                               01-Dec-2026 21:43                   "
      "-\r\n"
      "<a href=\"a%20b%26c.txt\">a b&amp;c.txt</a>                                      01-Dec-2026 21:44              "
      "    6\r\n"
      "<a href=\"./x:y\">x:y</a>                                                01-Jan-2024 00:00                 "
      "123\r\n"
      "<a href=\"a-very-long-name-that-nginx-truncates-in-the-text-of-the-link.bin\">a-very-long-name-that-nginx-trunc"
      "ates-in-the-..&gt;</a> 05-Feb-2025 10:20            52428800\r\n"
      "</pre><hr></body>\r\n</html>\r\n";
  auto l = ParseListing("text/html", body, Base("http://127.0.0.1:18080/html/"));
  REQUIRE(l.ok());
  CHECK(l->format == "nginx-html");
  auto m = ByName(*l);
  REQUIRE(m.size() == 4);
  CHECK(m["sub"].is_dir);
  CHECK(m["a b&c.txt"].size == std::optional<uint64_t>(6));
  CHECK(m["a b&c.txt"].mtime == std::optional<int64_t>(Utc("Tue, 01 Dec 2026 21:44:00 GMT")));
  CHECK_FALSE(m["a b&c.txt"].mtime_exact);  // minutes only: not for the coherency token
  CHECK(m["x:y"].size == std::optional<uint64_t>(123));
  CHECK(m["a-very-long-name-that-nginx-truncates-in-the-text-of-the-link.bin"].size ==
        std::optional<uint64_t>(52428800));
  CHECK(l->rejected == 0);  // "../" is a parent link: ignored, not rejected
}

TEST_CASE("Listing: Apache fancy index (pre) and its sort links") {
  const std::string body = R"(<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /pub</title>
 </head>
 <body>
<h1>Index of /pub</h1>
<pre><img src="/icons/blank.gif" alt="Icon "> <a href="?C=N;O=D">Name</a>                    <a href="?C=M;O=A">Last modified</a>      <a href="?C=S;O=A">Size</a>  <a href="?C=D;O=A">Description</a><hr><img src="/icons/back.gif" alt="[PARENTDIR]"> <a href="/">Parent Directory</a>                             -
<img src="/icons/folder.gif" alt="[DIR]"> <a href="docs/">docs/</a>                   2024-03-01 10:00    -
<img src="/icons/text.gif" alt="[TXT]"> <a href="README">README</a>                  2024-03-01 10:01  512
<img src="/icons/compressed.gif" alt="[   ]"> <a href="data.tar.gz">data.tar.gz</a>             2024-03-02 11:30  1.2M  Nightly data
<hr></pre>
<address>Apache/2.4.57 (Debian) Server at h Port 80</address>
</body></html>
)";
  auto l = ParseListing("text/html;charset=UTF-8", body, Base("http://h/pub/"));
  REQUIRE(l.ok());
  CHECK(l->format == "apache");
  auto m = ByName(*l);
  REQUIRE(m.size() == 3);
  CHECK(m["docs"].is_dir);
  CHECK(m["README"].size == std::optional<uint64_t>(512));
  CHECK(m["README"].mtime == std::optional<int64_t>(Utc("Fri, 01 Mar 2024 10:01:00 GMT")));
  CHECK_FALSE(m["data.tar.gz"].size.has_value());  // "1.2M" is not a size in bytes
  CHECK(m["data.tar.gz"].mtime.has_value());
  CHECK(l->rejected == 0);
}

TEST_CASE("Listing: Apache fancy index as a table, and the plain list") {
  const std::string table = R"(<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /pub/iso</title></head><body>
<h1>Index of /pub/iso</h1>
  <table>
   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>
   <tr><th colspan="5"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/pub/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="old/">old/</a></td><td align="right">2023-11-30 23:59  </td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="disk%201.iso">disk 1.iso</a></td><td align="right">2024-01-15 08:00  </td><td align="right">4.0G</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/text.gif" alt="[TXT]"></td><td><a href="SHA256SUMS">SHA256SUMS</a></td><td align="right">2024-01-15 08:05  </td><td align="right">214 </td><td>&nbsp;</td></tr>
   <tr><th colspan="5"><hr></th></tr>
</table>
</body></html>)";
  auto l = ParseListing("text/html", table, Base("http://h/pub/iso/"));
  REQUIRE(l.ok());
  CHECK(l->format == "apache-table");
  auto m = ByName(*l);
  REQUIRE(m.size() == 3);
  CHECK(m["old"].is_dir);
  CHECK_FALSE(m["disk 1.iso"].size.has_value());
  CHECK(m["SHA256SUMS"].size == std::optional<uint64_t>(214));
  CHECK(m["SHA256SUMS"].mtime == std::optional<int64_t>(Utc("Mon, 15 Jan 2024 08:05:00 GMT")));

  const std::string plain = R"(<html><head><title>Index of /pub</title></head><body>
<h1>Index of /pub</h1>
<ul><li><a href="/"> Parent Directory</a></li>
<li><a href="docs/"> docs/</a></li>
<li><a href="README"> README</a></li>
</ul>
</body></html>)";
  l = ParseListing("text/html", plain, Base("http://h/pub/"));
  REQUIRE(l.ok());
  m = ByName(*l);
  REQUIRE(m.size() == 2);
  CHECK(m["docs"].is_dir);
  CHECK_FALSE(m["README"].size.has_value());
  CHECK_FALSE(m["README"].mtime.has_value());
}

TEST_CASE("Listing: lighttpd mod_dirlisting") {
  const std::string body = R"(<!DOCTYPE html>
<html>
<head>
<meta charset="UTF-8">
<title>Index of /files/</title>
</head>
<body>
<h2>Index of /files/</h2>
<div class="list">
<table summary="Directory Listing" cellpadding="0" cellspacing="0">
<thead><tr><th class="n">Name</th><th class="m">Last Modified</th><th class="s">Size</th><th class="t">Type</th></tr></thead>
<tbody>
<tr class="d"><td class="n"><a href="../">..</a>/</td><td class="m">&nbsp;</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>
<tr class="d"><td class="n"><a href="photos/">photos</a>/</td><td class="m">2024-Mar-05 17:02:11</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>
<tr><td class="n"><a href="notes.txt">notes.txt</a></td><td class="m">2024-Mar-05 17:03:45</td><td class="s">1.5K</td><td class="t">text/plain</td></tr>
</tbody>
</table>
</div>
<div class="foot">lighttpd/1.4.69</div>
</body>
</html>)";
  auto l = ParseListing("text/html; charset=utf-8", body, Base("http://h/files/"));
  REQUIRE(l.ok());
  CHECK(l->format == "lighttpd");
  auto m = ByName(*l);
  REQUIRE(m.size() == 2);
  CHECK(m["photos"].is_dir);
  CHECK(m["notes.txt"].mtime == std::optional<int64_t>(Utc("Tue, 05 Mar 2024 17:03:45 GMT")));
  CHECK_FALSE(m["notes.txt"].mtime_exact);  // local time of the server: display only
  CHECK_FALSE(m["notes.txt"].size.has_value());
}

TEST_CASE("Listing: python http.server") {
  const std::string body = R"(<!DOCTYPE HTML>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Directory listing for /data/</title>
</head>
<body>
<h1>Directory listing for /data/</h1>
<hr>
<ul>
<li><a href="big.bin">big.bin</a></li>
<li><a href="d%C3%A9j%C3%A0%20vu/">déjà vu/</a></li>
<li><a href="lnk">lnk@</a></li>
<li><a href="100%25.txt">100%.txt</a></li>
</ul>
<hr>
</body>
</html>
)";
  auto l = ParseListing("text/html; charset=utf-8", body, Base("http://127.0.0.1:8000/data/"));
  REQUIRE(l.ok());
  CHECK(l->format == "python");
  auto m = ByName(*l);
  REQUIRE(m.size() == 4);
  CHECK(m["d\xc3\xa9j\xc3\xa0 vu"].is_dir);
  CHECK_FALSE(m["big.bin"].size.has_value());
  CHECK_FALSE(m["big.bin"].mtime.has_value());
  CHECK(m.count("lnk") == 1);
  CHECK(m.count("100%.txt") == 1);
}

TEST_CASE("Listing: hostile entries are skipped and counted, nothing outside the directory") {
  const std::string long_name(256, 'x');
  const std::string ok_255(255, 'y');
  const std::string body =
      "<html><body><pre>\n"
      "<a href=\"good.txt\">good.txt</a> 01-Jan-2024 00:00 10\n"
      "<a href=\"../\">../</a>\n"
      "<a href=\"../../../etc/passwd\">passwd</a>\n"
      "<a href=\"..%2F..%2Fetc%2Fpasswd\">x</a>\n"
      "<a href=\"%2e%2e/\">dotdot</a>\n"
      "<a href=\"%2E/\">dot</a>\n"
      "<a href=\"a%2Fb\">slash</a>\n"
      "<a href=\"nul%00byte\">nul</a>\n"
      "<a href=\"ctl%0Aname\">newline</a>\n"
      "<a href=\"tab&#9;name\">tab</a>\n"
      "<a href=\"http://evil.example/x\">evil</a>\n"
      "<a href=\"//evil.example/x\">evil2</a>\n"
      "<a href=\"https://h/dir/https-same-path\">other scheme</a>\n"
      "<a href=\"http://h/dir/abs-ok\">same origin, in the directory</a>\n"
      "<a href=\"http://h/other/x\">same origin, elsewhere</a>\n"
      "<a href=\"/etc/passwd\">abs path</a>\n"
      "<a href=\"/dir/abs-path-ok\">abs path ok</a>\n"
      "<a href=\"sub/deeper\">two segments</a>\n"
      "<a href=\"?C=N;O=D\">Name</a>\n"
      "<a href=\"good.txt?download=1\">query</a>\n"
      "<a href=\"#top\">top</a>\n"
      "<a href=\"javascript:alert(1)\">js</a>\n"
      "<a href=\"mailto:root@h\">mail</a>\n"
      "<a href=\"%252e%252e\">double-encoded</a>\n"
      "<a href=\"" +
      long_name +
      "\">long</a>\n"
      "<a href=\"" +
      ok_255 +
      "\">255</a>\n"
      "<a href=\"good.txt\">duplicate</a>\n"
      "<a href='single-quoted'>sq</a>\n"
      "<a href=unquoted-dir/>uq</a>\n"
      "</pre></body></html>\n";
  auto l = ParseListing("text/html", body, Base("http://h/dir/"));
  REQUIRE(l.ok());
  auto m = ByName(*l);
  std::vector<std::string> names;
  for (const auto& [name, e] : m) names.push_back(name);
  CHECK(names ==
        std::vector<std::string>{"abs-ok", "abs-path-ok", "good.txt", "single-quoted", "unquoted-dir", ok_255});
  CHECK(m["good.txt"].size == std::optional<uint64_t>(10));
  CHECK(m["unquoted-dir"].is_dir);
  for (const ListingEntry& e : l->entries) CHECK(IsSafeName(e.name));
  // ../../../etc/passwd, ..%2F.., %2e%2e, %2E, a%2Fb, %00, %0A, tab, evil x2,
  // https, /other/x, /etc/passwd, sub/deeper, javascript:, mailto:, %252e%252e, 256 bytes.
  CHECK(l->rejected == 18);
  CHECK(l->rejected_examples.size() == 3);
}

TEST_CASE("Listing: links resolved one by one") {
  const ListingBase base = Base("http://h:8080/a%20b/");
  auto entry = [&](const char* href) {
    Link k = ResolveLink(href, base);
    return k.kind == LinkKind::kEntry ? k.name + (k.is_dir ? "/" : "")
                                      : std::string(k.kind == LinkKind::kIgnore ? "(ignore)" : "(reject)");
  };
  CHECK(entry("f") == "f");
  CHECK(entry("./f") == "f");
  CHECK(entry("d/") == "d/");
  CHECK(entry("/a b/f") == "f");
  CHECK(entry("/a%20b/f%20g") == "f g");
  CHECK(entry("http://H:8080/a%20b/f") == "f");
  CHECK(entry("../") == "(ignore)");
  CHECK(entry("./") == "(ignore)");
  CHECK(entry("/") == "(ignore)");
  CHECK(entry("/a%20b/") == "(ignore)");
  CHECK(entry("?C=M;O=A") == "(ignore)");
  CHECK(entry("") == "(ignore)");
  CHECK(entry("http://h/a%20b/f") == "(reject)");  // port 80, not 8080
  CHECK(entry("../x") == "(reject)");
  CHECK(entry("/../../x") == "(reject)");
  CHECK(entry("f/../g") == "g");  // dot segments as sent resolve inside the directory
  CHECK(entry("f/../../g") == "(reject)");
  CHECK(entry("f%2F..%2Fg") == "(reject)");
  CHECK(IsSafeName("a"));
  CHECK_FALSE(IsSafeName(""));
  CHECK_FALSE(IsSafeName("."));
  CHECK_FALSE(IsSafeName(".."));
  CHECK_FALSE(IsSafeName("a/b"));
  CHECK_FALSE(IsSafeName(std::string("a\0b", 3)));
  CHECK_FALSE(IsSafeName("a\x7f"));
}

TEST_CASE("Listing: bodies that are no listing") {
  CHECK_FALSE(ParseListing("text/plain", "hello", Base("http://h/")).ok());
  CHECK_FALSE(ParseListing("application/octet-stream",
                           "\x7f"
                           "ELF",
                           Base("http://h/"))
                  .ok());
  auto l = ParseListing("text/html", "<html><body>no links here</body></html>", Base("http://h/"));
  REQUIRE(l.ok());
  CHECK(l->entries.empty());
}
