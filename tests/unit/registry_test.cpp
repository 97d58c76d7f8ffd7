// Tests for netfs_backends/registry and the posix source factory: which SOURCE
// strings find which source, and what the messages say (never credentials).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "netfs_backends/posix/posix_source.h"
#include "netfs_backends/registry.h"
#include "test_util.h"

using cachefuse::Status;
using cachefuse::netfs::CompiledSources;
using cachefuse::netfs::OpenSource;
using cachefuse::netfs::ParsedSource;
using cachefuse::netfs::ParseSource;
using cachefuse::netfs::PosixSourceFactory;
using cachefuse::netfs::SourceOptions;
using cachefuse::test::TempDir;
using cachefuse::test::WriteFile;
using Catch::Matchers::Contains;

namespace {

std::string RealPath(const std::string& p) {
  char real[PATH_MAX];
  REQUIRE(::realpath(p.c_str(), real));
  return real;
}

}  // namespace

TEST_CASE("Registry: posix is compiled in") {
  auto names = CompiledSources();
  REQUIRE_FALSE(names.empty());
  CHECK(names.front() == "posix");
  CHECK(std::count(names.begin(), names.end(), "posix") == 1);
  const auto* posix = PosixSourceFactory();
  REQUIRE(posix != nullptr);
  CHECK(posix->name() == "posix");
  CHECK(posix->schemes().empty());
}

TEST_CASE("Registry: a plain path is a posix source") {
  TempDir tmp;
  auto parsed = ParseSource(tmp.path());
  REQUIRE(parsed.ok());
  CHECK(parsed->scheme == "posix");
  CHECK(parsed->spec == tmp.path());
  CHECK(parsed->canonical == RealPath(tmp.path()));

  auto be = OpenSource(*parsed, SourceOptions{});
  REQUIRE(be.ok());
  // The volume key of existing caches: exactly as before the registry.
  CHECK((*be)->describe() == "posix:" + RealPath(tmp.path()));

  SECTION("through a symlink and with a trailing slash: canonical") {
    REQUIRE(::mkdir((tmp / "real").c_str(), 0755) == 0);
    REQUIRE(::symlink("real", (tmp / "alias").c_str()) == 0);
    auto via = ParseSource(tmp / "alias/");
    REQUIRE(via.ok());
    CHECK(via->canonical == RealPath(tmp / "real"));
    auto opened = OpenSource(*via, SourceOptions{});
    REQUIRE(opened.ok());
    CHECK((*opened)->describe() == "posix:" + RealPath(tmp / "real"));
  }
  SECTION("a path with '://' that is no scheme is a path") {
    REQUIRE(::mkdir((tmp / "a:").c_str(), 0755) == 0);
    REQUIRE(::mkdir((tmp / "a:/b").c_str(), 0755) == 0);
    const std::string odd = tmp.path() + "/a://b";
    auto p = ParseSource(odd);
    REQUIRE(p.ok());
    CHECK(p->scheme == "posix");
    CHECK(p->canonical == RealPath(tmp / "a:/b"));
  }
}

TEST_CASE("Registry: a missing or non-directory path says so, in the words of before") {
  TempDir tmp;
  const std::string missing = tmp / "nosuch";
  auto r = ParseSource(missing);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err() == ENOENT);
  CHECK(r.status().kind() == Status::Kind::kNotFound);
  // The integration tests and users' scripts read this line.
  CHECK(r.status().ToString() == "cannot open source '" + missing + "': No such file or directory");

  WriteFile(tmp / "file", "x");
  auto file = ParseSource(tmp / "file");
  REQUIRE_FALSE(file.ok());
  CHECK(file.err() == ENOTDIR);
  CHECK_THAT(file.status().context(), Contains("not a directory") && Contains(tmp / "file"));

  SECTION("a source gone between parse and open") {
    REQUIRE(::mkdir((tmp / "d").c_str(), 0755) == 0);
    auto parsed = ParseSource(tmp / "d");
    REQUIRE(parsed.ok());
    REQUIRE(::rmdir((tmp / "d").c_str()) == 0);
    auto be = OpenSource(*parsed, SourceOptions{});
    REQUIRE_FALSE(be.ok());
    CHECK(be.err() == ENOENT);
  }
}

TEST_CASE("Registry: network schemes not compiled in say so") {
  const std::vector<std::string> compiled = CompiledSources();
  for (const std::string scheme : {"http", "https", "nfs", "smb"}) {
    const std::string source = scheme == "https" ? "http" : scheme;
    if (std::find(compiled.begin(), compiled.end(), source) != compiled.end()) continue;
    const std::string capitalized = std::string(1, static_cast<char>(std::toupper(scheme[0]))) + scheme.substr(1);
    for (const std::string& spelled : {scheme, capitalized}) {
      const std::string spec = spelled + "://server/share";
      INFO(spec);
      auto r = ParseSource(spec);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().kind() == Status::Kind::kNotSupported);
      CHECK(r.err() == ENOTSUP);
      CHECK_THAT(r.status().context(),
                 Contains(scheme + "://") && Contains("not compiled into this cachefuse") && Contains("posix"));
      // Opening a source parsed elsewhere: the same answer.
      auto be = OpenSource(ParsedSource{scheme, spec, spec}, SourceOptions{});
      REQUIRE_FALSE(be.ok());
      CHECK(be.status().kind() == Status::Kind::kNotSupported);
    }
  }
}

TEST_CASE("Registry: an unknown scheme is an invalid SOURCE") {
  for (const std::string spec : {"ftp://host/x", "file:///srv", "gopher://x", "FOO://x", "s3+x://bucket"}) {
    INFO(spec);
    auto r = ParseSource(spec);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().kind() == Status::Kind::kInvalid);
    CHECK(r.err() == EINVAL);
    CHECK_THAT(r.status().context(), Contains("unknown source scheme") && Contains(spec) && Contains("known:"));
  }
  auto r = ParseSource("Foo://x");
  CHECK(r.status().context().rfind("unknown source scheme 'foo://' in 'Foo://x' (known: ", 0) == 0);
}

TEST_CASE("Registry: the userinfo of a URL never appears in a message") {
  const std::vector<std::string> specs = {
      "http://alice:s3cretpw@host/x",       "https://alice:s3cretpw@host:8443/x",
      "nfs://alice:s3cretpw@server/export", "smb://WORKGROUP;alice:s3cretpw@server/share",
      "ftp://alice:s3cretpw@host/x",        "foo://alice:s3cretpw@host",
      "smb://alice:s3cr/etpw@server/share", "http://alice:s3cr@etpw@host/x",
      "HTTP://alice:s3cretpw@host/x?q=a@b",
  };
  for (const std::string& spec : specs) {
    INFO(spec);
    auto r = ParseSource(spec);
    REQUIRE_FALSE(r.ok());
    for (const std::string& text : {r.status().context(), r.status().ToString()}) {
      CHECK_THAT(text, !Contains("s3cr") && !Contains("etpw") && !Contains("alice"));
    }
    auto be = OpenSource(ParsedSource{"http", spec, ""}, SourceOptions{});
    REQUIRE_FALSE(be.ok());
    CHECK_THAT(be.status().ToString(), !Contains("s3cr") && !Contains("alice"));
  }
  // What is left of the URL still says where.
  auto r = ParseSource("foo://alice:s3cretpw@host/path");
  CHECK_THAT(r.status().context(), Contains("foo://***@host/path"));
}
