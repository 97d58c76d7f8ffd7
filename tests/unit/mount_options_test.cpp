// Tests for daemon/mount_options: -o options, config files, the kernel mount string.
#include <catch2/catch.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/mount_options.h"
#include "test_util.h"

using cachefuse::cache::EngineChoice;
using cachefuse::daemon::ApplyConfigFile;
using cachefuse::daemon::ApplyOption;
using cachefuse::daemon::ApplyOptionList;
using cachefuse::daemon::DefaultCacheDir;
using cachefuse::daemon::ExitStatusDoc;
using cachefuse::daemon::MountOptions;
using cachefuse::daemon::OptionDocs;
using cachefuse::daemon::OptionError;
using cachefuse::test::TempDir;
using cachefuse::test::WriteFile;
using Catch::Matchers::Contains;

namespace {

MountOptions Parse(const std::string& list) {
  MountOptions o;
  ApplyOptionList(o, list);
  return o;
}

// The OptionError message of applying list, or nullopt if nothing was thrown.
std::optional<std::string> ErrorOf(const std::string& list, MountOptions o = {}) {
  try {
    ApplyOptionList(o, list);
  } catch (const OptionError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

std::optional<std::string> ConfigErrorOf(const std::string& path, MountOptions o = {}) {
  try {
    ApplyConfigFile(o, path);
  } catch (const OptionError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

// Runs fn in a child process (so environment and uid changes stay there) and
// returns what it printed; "SKIP" when the child could not set itself up.
template <typename Fn>
std::string InChild(Fn fn) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out = fn();
    ssize_t w = ::write(fds[1], out.data(), out.size());
    ::_exit(w == static_cast<ssize_t>(out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return out;
}

void SetEnv(const char* name, const char* value) {
  if (value) {
    ::setenv(name, value, 1);
  } else {
    ::unsetenv(name);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Defaults and every option

TEST_CASE("MountOptions defaults") {
  MountOptions o;
  CHECK(o.cache_dir.empty());
  CHECK(o.granule == 256 * 1024);
  CHECK(o.attr_timeout == 1.0);
  CHECK(o.entry_timeout == 1.0);
  CHECK(o.negative_timeout == 0.0);
  CHECK(o.io_engine == EngineChoice::kAuto);
  CHECK(o.readahead == 8ULL << 20);
  CHECK(o.max_backend_inflight == 4);
  CHECK(o.max_inflight == 32ULL << 20);
  CHECK(o.cache_error_limit == 8);
  CHECK(o.threads == 16);
  CHECK(o.log_level == "info");
  CHECK_FALSE(o.allow_other);
  CHECK_FALSE(o.default_permissions);
  CHECK_FALSE(o.read_only);
  CHECK(o.fsname.empty());
  CHECK(o.debug_backend_latency_ms == 0);
  CHECK_FALSE(o.debug_cache_fail_reads);
  CHECK(o.config_file.empty());
}

TEST_CASE("every option parses") {
  auto o = Parse(
      "cache_dir=/var/cache/x,granule=1M,attr_timeout=2.5,entry_timeout=200ms,negative_timeout=1m,"
      "io_engine=sync,readahead=0,max_backend_inflight=16,max_inflight=64M,cache_error_limit=3,threads=2,"
      "log_level=debug,allow_other,default_permissions,ro,fsname=myfs,debug_backend_latency_ms=25,"
      "debug_cache_fail_reads");
  CHECK(o.cache_dir == "/var/cache/x");
  CHECK(o.granule == 1ULL << 20);
  CHECK(o.attr_timeout == 2.5);
  CHECK(o.entry_timeout == Approx(0.2));
  CHECK(o.negative_timeout == 60.0);
  CHECK(o.io_engine == EngineChoice::kSync);
  CHECK(o.readahead == 0);
  CHECK(o.max_backend_inflight == 16);
  CHECK(o.max_inflight == 64ULL << 20);
  CHECK(o.cache_error_limit == 3);
  CHECK(o.threads == 2);
  CHECK(o.log_level == "debug");
  CHECK(o.allow_other);
  CHECK(o.default_permissions);
  CHECK(o.read_only);
  CHECK(o.fsname == "myfs");
  CHECK(o.debug_backend_latency_ms == 25);
  CHECK(o.debug_cache_fail_reads);
}

TEST_CASE("option values at the edges of their ranges") {
  CHECK(Parse("granule=4k").granule == 4096);
  CHECK(Parse("granule=4096").granule == 4096);
  CHECK(Parse("granule=64M").granule == 64ULL << 20);
  CHECK(Parse("readahead=1G").readahead == 1ULL << 30);
  CHECK(Parse("max_inflight=4M").max_inflight == 4ULL << 20);
  CHECK(Parse("max_inflight=16G").max_inflight == 16ULL << 30);
  CHECK(Parse("max_backend_inflight=1").max_backend_inflight == 1);
  CHECK(Parse("max_backend_inflight=256").max_backend_inflight == 256);
  CHECK(Parse("threads=1").threads == 1);
  CHECK(Parse("threads=1024").threads == 1024);
  CHECK(Parse("cache_error_limit=1000000").cache_error_limit == 1000000);
  CHECK(Parse("debug_backend_latency_ms=0").debug_backend_latency_ms == 0);
  CHECK(Parse("debug_backend_latency_ms=60000").debug_backend_latency_ms == 60000);
  CHECK(Parse("attr_timeout=0").attr_timeout == 0.0);
  CHECK(Parse("io_engine=uring").io_engine == EngineChoice::kUring);
  CHECK(Parse("io_engine=sync,io_engine=auto").io_engine == EngineChoice::kAuto);
  for (const char* level : {"trace", "debug", "info", "warn", "error"}) {
    CHECK(Parse(std::string("log_level=") + level).log_level == level);
  }
}

TEST_CASE("boolean options take an optional true/false value") {
  CHECK(Parse("allow_other").allow_other);
  CHECK(Parse("allow_other=true").allow_other);
  CHECK(Parse("allow_other=yes").allow_other);
  CHECK(Parse("allow_other=on").allow_other);
  CHECK(Parse("allow_other=1").allow_other);
  CHECK_FALSE(Parse("allow_other=false").allow_other);
  CHECK_FALSE(Parse("allow_other,allow_other=no").allow_other);
  CHECK_FALSE(Parse("default_permissions=off").default_permissions);
  CHECK(Parse("default_permissions=on").default_permissions);
  CHECK_FALSE(Parse("debug_cache_fail_reads=0").debug_cache_fail_reads);
  CHECK(Parse("debug_cache_fail_reads=1").debug_cache_fail_reads);
}

TEST_CASE("ro and rw: the last one wins") {
  CHECK(Parse("ro").read_only);
  CHECK_FALSE(Parse("ro,rw").read_only);
  CHECK(Parse("rw,ro").read_only);
  CHECK_FALSE(Parse("rw").read_only);
}

TEST_CASE("--help states the granule range and what max_backend_inflight limits") {
  std::map<std::string, std::string> meaning;
  for (const auto& doc : OptionDocs()) meaning[doc.name] = doc.meaning;
  // The range the parser enforces.
  CHECK_THAT(meaning["granule"], Contains("power of two from 4k to 64M"));
  CHECK_NOTHROW(Parse("granule=4k"));
  CHECK_NOTHROW(Parse("granule=64M"));
  CHECK_THROWS_AS(Parse("granule=2k"), OptionError);
  CHECK_THROWS_AS(Parse("granule=128M"), OptionError);
  CHECK_THAT(meaning["max_backend_inflight"], Contains("read-ahead") && Contains("demand reads"));
  CHECK_THAT(meaning["max_backend_inflight"], Contains("1 to 256"));
  CHECK_NOTHROW(Parse("max_backend_inflight=256"));
  CHECK_THROWS_AS(Parse("max_backend_inflight=257"), OptionError);
}

TEST_CASE("--help has an exit status section") {
  const std::string doc = ExitStatusDoc();
  CHECK_THAT(doc, Contains("Exit status"));
  CHECK_THAT(doc, Contains("  0  ") && Contains("unmounted cleanly"));
  CHECK_THAT(doc, Contains("  1  ") && Contains("start-up error"));
  CHECK_THAT(doc, Contains("  2  ") && Contains("command line"));
  CHECK(doc.back() == '\n');
}

TEST_CASE("every documented option is accepted with a value of its documented syntax") {
  // A sample per value syntax; a new syntax must be added here.
  const std::map<std::string, std::string> samples = {
      {"", ""},  // a flag
      {"DIR", "/tmp/c"}, {"NAME", "x"}, {"SIZE", "8M"}, {"SECONDS", "3"}, {"N", "4"}, {"PCT", "5"},
  };
  std::set<std::string> documented;
  for (const auto& doc : OptionDocs()) {
    REQUIRE(doc.name != nullptr);
    REQUIRE(doc.value != nullptr);
    REQUIRE(doc.meaning != nullptr);
    CHECK(std::string(doc.meaning).size() > 5);
    // "a,b,c" documents several options of the same kind together.
    std::vector<std::string> names;
    std::string all = doc.name;
    for (size_t start = 0; start <= all.size();) {
      size_t comma = std::min(all.find(',', start), all.size());
      names.push_back(all.substr(start, comma - start));
      start = comma + 1;
    }
    std::string value = doc.value;
    if (value.find('|') != std::string::npos) {
      value = value.substr(0, value.find('|'));  // the first of "a|b|c"
    } else if (value != "FILE") {
      INFO("value syntax '" << value << "' of " << doc.name);
      REQUIRE(samples.count(value) == 1);
      value = samples.at(value);
    }
    for (const auto& name : names) {
      CHECK(documented.insert(name).second);  // no duplicates
      if (name == "config") continue;         // tested with files below
      const std::string item = value.empty() ? name : name + "=" + value;
      INFO("documented option: " << item);
      MountOptions o;
      CHECK_NOTHROW(ApplyOption(o, item));
    }
  }
  for (const char* name :
       {"cache_dir", "granule", "attr_timeout", "entry_timeout", "negative_timeout", "io_engine", "readahead",
        "max_backend_inflight", "max_inflight", "cache_error_limit", "threads", "log_level", "config", "allow_other",
        "default_permissions", "ro", "fsname", "debug_backend_latency_ms", "debug_cache_fail_reads"}) {
    INFO(name);
    CHECK(documented.count(name) == 1);
  }
}

// ---------------------------------------------------------------------------
// Bad values

TEST_CASE("bad values give an OptionError naming the option") {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"granule", "granule=3000"},  // not a power of two
      {"granule", "granule=2k"},    // too small
      {"granule", "granule=128M"},  // too large
      {"granule", "granule=abc"},
      {"granule", "granule=-4096"},
      {"attr_timeout", "attr_timeout=-1"},
      {"attr_timeout", "attr_timeout=soon"},
      {"entry_timeout", "entry_timeout=1x"},
      {"negative_timeout", "negative_timeout=inf"},
      {"io_engine", "io_engine=aio"},
      {"readahead", "readahead=2G"},
      {"readahead", "readahead=lots"},
      {"max_backend_inflight", "max_backend_inflight=0"},
      {"max_backend_inflight", "max_backend_inflight=257"},
      {"max_backend_inflight", "max_backend_inflight=4.5"},
      {"max_inflight", "max_inflight=1M"},
      {"max_inflight", "max_inflight=32G"},
      {"cache_error_limit", "cache_error_limit=0"},
      {"cache_error_limit", "cache_error_limit=1000001"},
      {"threads", "threads=0"},
      {"threads", "threads=1025"},
      {"threads", "threads=-1"},
      {"threads", "threads=99999999999999999999999"},
      {"threads", "threads=4x"},
      {"log_level", "log_level=verbose"},
      {"allow_other", "allow_other=maybe"},
      {"default_permissions", "default_permissions=2"},
      {"debug_cache_fail_reads", "debug_cache_fail_reads=sometimes"},
      {"debug_backend_latency_ms", "debug_backend_latency_ms=60001"},
      {"ro", "ro=1"},  // takes no value
  };
  for (const auto& [name, item] : bad) {
    INFO(item);
    auto err = ErrorOf(item);
    REQUIRE(err);
    CHECK_THAT(*err, Contains(name));
  }
}

TEST_CASE("counts must be plain decimal numbers") {
  // strtoul alone would take " 8", "+8" and wrap "-18446744073709551615" around to 1.
  for (const char* item : {"threads=-18446744073709551615", "threads=-18446744073709551614", "threads= 8", "threads=+8",
                           "debug_backend_latency_ms=-0", "max_backend_inflight=0x10"}) {
    INFO(item);
    auto err = ErrorOf(item);
    REQUIRE(err);
    CHECK_THAT(*err, Contains("must be a whole number"));
  }
}

TEST_CASE("options that need a value say so") {
  for (const char* key : {"cache_dir", "granule", "attr_timeout", "entry_timeout", "negative_timeout", "io_engine",
                          "readahead", "max_backend_inflight", "max_inflight", "cache_error_limit", "threads",
                          "log_level", "config", "fsname", "debug_backend_latency_ms"}) {
    for (const std::string& item : {std::string(key), std::string(key) + "="}) {
      INFO(item);
      auto err = ErrorOf(item);
      REQUIRE(err);
      CHECK_THAT(*err, Contains(key) && Contains("needs a value"));
    }
  }
}

TEST_CASE("a bad value leaves the earlier value in place") {
  MountOptions o;
  ApplyOption(o, "threads=7");
  CHECK_THROWS_AS(ApplyOption(o, "threads=0"), OptionError);
  CHECK(o.threads == 7);
  CHECK_THROWS_AS(ApplyOption(o, "granule=5000"), OptionError);
  CHECK(o.granule == 256 * 1024);
}

TEST_CASE("unknown options are rejected by name") {
  for (const char* item : {"bogus", "bogus=1", "Threads=4", "cache-dir=/x", "nosuidx", "x"}) {
    INFO(item);
    auto err = ErrorOf(item);
    REQUIRE(err);
    std::string key = std::string(item).substr(0, std::string(item).find('='));
    CHECK_THAT(*err, Contains("unknown option") && Contains("'" + key + "'"));
  }
}

TEST_CASE("generic mount options are accepted and ignored") {
  const MountOptions defaults;
  for (const char* item : {"rw",
                           "dev",
                           "nodev",
                           "suid",
                           "nosuid",
                           "exec",
                           "noexec",
                           "atime",
                           "noatime",
                           "relatime",
                           "nodiratime",
                           "strictatime",
                           "lazytime",
                           "async",
                           "auto",
                           "noauto",
                           "user",
                           "users",
                           "nouser",
                           "_netdev",
                           "nofail",
                           "defaults",
                           "comment=systemd.automount",
                           "x-systemd.automount",
                           "x-systemd.mount-timeout=30",
                           "x-gvfs-show",
                           "auto_unmount",
                           "nonempty"}) {
    INFO(item);
    MountOptions o;
    REQUIRE_NOTHROW(ApplyOption(o, item));
    // Nothing changed.
    CHECK(o.FuseMountOptions() == defaults.FuseMountOptions());
    CHECK(o.read_only == defaults.read_only);
    CHECK(o.threads == defaults.threads);
    CHECK(o.cache_dir == defaults.cache_dir);
  }
  auto o = Parse("defaults,_netdev,nofail,x-systemd.automount,noatime,nosuid,nodev,threads=3");
  CHECK(o.threads == 3);
}

TEST_CASE("ApplyOptionList splits on commas and skips empty items") {
  auto o = Parse(",threads=3,,granule=64k,");
  CHECK(o.threads == 3);
  CHECK(o.granule == 64 * 1024);
  CHECK_NOTHROW(Parse(""));
  CHECK_NOTHROW(Parse(","));
  CHECK_NOTHROW(Parse(",,,"));
  // Later items override earlier ones.
  CHECK(Parse("threads=3,threads=5").threads == 5);
  // Values keep their '=' signs after the first.
  CHECK(Parse("fsname=a=b").fsname == "a=b");
  CHECK(Parse("cache_dir=/a b/c").cache_dir == "/a b/c");
  // An error anywhere in the list is reported.
  auto err = ErrorOf("threads=3,bogus,granule=64k");
  REQUIRE(err);
  CHECK_THAT(*err, Contains("bogus"));
  MountOptions untouched;
  CHECK_NOTHROW(ApplyOption(untouched, ""));
  CHECK(untouched.threads == 16);
}

// ---------------------------------------------------------------------------
// Config files

TEST_CASE("config file with every kind of value") {
  TempDir dir;
  const std::string path = dir / "cachefuse.toml";
  WriteFile(path,
            "# comment\n"
            "cache_dir = \"/srv/cache\"     # a string\n"
            "granule = 65536               # an integer\n"
            "readahead = \"16M\"            # a size as a string\n"
            "attr_timeout = 0.5            # a float\n"
            "entry_timeout = \"250ms\"\n"
            "negative_timeout = 2\n"
            "io_engine = \"sync\"\n"
            "max_backend_inflight = 6\n"
            "max_inflight = \"128M\"\n"
            "cache_error_limit = 12\n"
            "threads = 24\n"
            "log_level = \"warn\"\n"
            "allow_other = true            # a boolean\n"
            "default_permissions = false\n"
            "ro = true\n"
            "fsname = \"data,1\"\n"
            "debug_backend_latency_ms = 3\n"
            "debug_cache_fail_reads = false\n");
  MountOptions o;
  ApplyOptionList(o, "config=" + path);
  CHECK(o.config_file == path);
  CHECK(o.cache_dir == "/srv/cache");
  CHECK(o.granule == 65536);
  CHECK(o.readahead == 16ULL << 20);
  CHECK(o.attr_timeout == 0.5);
  CHECK(o.entry_timeout == Approx(0.25));
  CHECK(o.negative_timeout == 2.0);
  CHECK(o.io_engine == EngineChoice::kSync);
  CHECK(o.max_backend_inflight == 6);
  CHECK(o.max_inflight == 128ULL << 20);
  CHECK(o.cache_error_limit == 12);
  CHECK(o.threads == 24);
  CHECK(o.log_level == "warn");
  CHECK(o.allow_other);
  CHECK_FALSE(o.default_permissions);
  CHECK(o.read_only);
  CHECK(o.fsname == "data,1");
  CHECK(o.debug_backend_latency_ms == 3);
  CHECK_FALSE(o.debug_cache_fail_reads);
}

TEST_CASE("config file: ro follows its boolean value") {
  TempDir dir;
  struct Case {
    const char* line;
    bool read_only;
  };
  for (const Case& c : {Case{"ro = true\n", true}, Case{"ro = false\n", false}, Case{"ro = \"yes\"\n", true},
                        Case{"ro = \"no\"\n", false}, Case{"ro = 1\n", true}, Case{"ro = 0\n", false}}) {
    INFO(c.line);
    WriteFile(dir / "c.toml", c.line);
    MountOptions o;
    ApplyConfigFile(o, dir / "c.toml");
    CHECK(o.read_only == c.read_only);
  }
  WriteFile(dir / "c.toml", "threads = 2\nro = \"perhaps\"\n");
  auto err = ConfigErrorOf(dir / "c.toml");
  REQUIRE(err);
  CHECK_THAT(*err, Contains(dir / "c.toml") && Contains(":2:") && Contains("ro"));
}

TEST_CASE("config file and -o options apply in order") {
  TempDir dir;
  WriteFile(dir / "c.toml", "threads = 8\ngranule = \"1M\"\n");
  auto before = Parse("threads=4,config=" + (dir / "c.toml"));
  CHECK(before.threads == 8);
  CHECK(before.granule == 1ULL << 20);
  auto after = Parse("config=" + (dir / "c.toml") + ",threads=4");
  CHECK(after.threads == 4);
  CHECK(after.granule == 1ULL << 20);
}

TEST_CASE("config file: an unknown key names the file and the line") {
  TempDir dir;
  const std::string path = dir / "bad.toml";
  WriteFile(path, "threads = 4\n\n# comment\nthreadz = 5\n");
  auto err = ConfigErrorOf(path);
  REQUIRE(err);
  CHECK_THAT(*err, Contains(path + ":4:") && Contains("threadz") && Contains("unknown option"));
}

TEST_CASE("config file: a bad value names the file, the line and the option") {
  TempDir dir;
  const std::string path = dir / "bad.toml";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"granule = 3000\n", "granule"},
      {"granule = 4096.0\n", "granule"},
      {"threads = -1\n", "threads"},
      {"threads = 8.5\n", "threads"},
      {"io_engine = \"fast\"\n", "io_engine"},
      {"allow_other = \"maybe\"\n", "allow_other"},
      {"attr_timeout = -0.5\n", "attr_timeout"},
      {"cache_dir = \"\"\n", "cache_dir"},
  };
  for (const auto& [text, name] : cases) {
    WriteFile(path, "# first line\n" + text);
    INFO(text);
    auto err = ConfigErrorOf(path);
    REQUIRE(err);
    CHECK_THAT(*err, Contains(path + ":2:") && Contains(name));
  }
}

TEST_CASE("config file: tables and arrays are not option values") {
  TempDir dir;
  const std::string path = dir / "bad.toml";
  WriteFile(path, "threads = [1, 2]\n");
  auto err = ConfigErrorOf(path);
  REQUIRE(err);
  CHECK_THAT(*err, Contains(path + ":1:") && Contains("threads") && Contains("string, number or boolean"));

  WriteFile(path, "threads = 2\n[section]\nkey = 1\n");
  err = ConfigErrorOf(path);
  REQUIRE(err);
  CHECK_THAT(*err, Contains(path) && Contains("section"));
}

TEST_CASE("config file: a syntax error names the file and the line") {
  TempDir dir;
  const std::string path = dir / "bad.toml";
  WriteFile(path, "threads = 2\ngranule = = 4\n");
  auto err = ConfigErrorOf(path);
  REQUIRE(err);
  CHECK_THAT(*err, Contains(path + ":2:"));
}

TEST_CASE("config file: an unquoted size or duration gets a hint to quote it") {
  TempDir dir;
  const std::string path = dir / "bad.toml";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"readahead = 8M\n", "readahead = \"8M\""},           {"granule = 256k   # comment\n", "granule = \"256k\""},
      {"max_inflight = 1.5G\n", "max_inflight = \"1.5G\""}, {"entry_timeout = 200ms\n", "entry_timeout = \"200ms\""},
      {"cache_size = 2 G\n", "cache_size = \"2G\""},
  };
  for (const auto& [text, quoted] : cases) {
    WriteFile(path, "threads = 2\n" + text);
    INFO(text);
    auto err = ConfigErrorOf(path);
    REQUIRE(err);
    // Still the file:line prefix and toml++'s own description, then the hint.
    CHECK_THAT(*err, Contains(path + ":2: ") && Contains("must be quoted") && Contains(quoted));
  }
  // Other syntax errors get no such hint.
  for (const char* text : {"granule = = 4\n", "threads = 2x3\n", "name = bare\n", "x = 0x1G\n"}) {
    WriteFile(path, text);
    INFO(text);
    auto err = ConfigErrorOf(path);
    REQUIRE(err);
    CHECK_THAT(*err, Contains(path + ":1:") && !Contains("quoted"));
  }
  // A quoted size is fine.
  WriteFile(path, "readahead = \"8M\"\n");
  MountOptions o;
  ApplyConfigFile(o, path);
  CHECK(o.readahead == 8ULL << 20);
}

TEST_CASE("config file that cannot be read") {
  TempDir dir;
  auto err = ConfigErrorOf(dir / "missing.toml");
  REQUIRE(err);
  CHECK_THAT(*err, Contains(dir / "missing.toml") && Contains("cannot be read") && Contains(std::strerror(ENOENT)));

  // Through -o as well.
  err = ErrorOf("config=" + (dir / "missing.toml"));
  REQUIRE(err);
  CHECK_THAT(*err, Contains("missing.toml"));

  // A directory is not a config file.
  err = ConfigErrorOf(dir.path());
  REQUIRE(err);
  CHECK_THAT(*err, Contains(dir.path()) && Contains(std::strerror(EISDIR)));

  // A file this user may not read.
  const std::string secret = dir / "secret.toml";
  WriteFile(secret, "threads = 2\n");
  REQUIRE(::chmod(secret.c_str(), 0) == 0);
  std::string out = InChild([&]() -> std::string {
    if (::geteuid() == 0 && ::seteuid(65534) != 0) return "SKIP";
    auto e = ConfigErrorOf(secret);
    return e ? *e : "no error";
  });
  if (out == "SKIP") {
    WARN("cannot drop to uid 65534; the unreadable case is not checked");
  } else {
    CHECK_THAT(out, Contains(secret) && Contains("cannot be read") && Contains(std::strerror(EACCES)));
  }
}

TEST_CASE("config files do not nest, and only one may be given") {
  TempDir dir;
  WriteFile(dir / "inner.toml", "threads = 2\n");
  WriteFile(dir / "outer.toml", "threads = 3\nconfig = \"" + (dir / "inner.toml") + "\"\n");
  auto err = ConfigErrorOf(dir / "outer.toml");
  REQUIRE(err);
  CHECK_THAT(*err, Contains(dir / "outer.toml") && Contains(":2:") && Contains("do not nest"));

  err = ErrorOf("config=" + (dir / "inner.toml") + ",config=" + (dir / "inner.toml"));
  REQUIRE(err);
  CHECK_THAT(*err, Contains("only one config="));
}

TEST_CASE("an empty config file changes nothing") {
  TempDir dir;
  WriteFile(dir / "empty.toml", "");
  MountOptions o;
  ApplyConfigFile(o, dir / "empty.toml");
  CHECK(o.threads == 16);
  CHECK(o.config_file == dir / "empty.toml");
}

// ---------------------------------------------------------------------------
// What the options turn into

TEST_CASE("FuseMountOptions") {
  MountOptions o;
  o.source = "/srv/data";
  CHECK(o.FuseMountOptions() == "fsname=/srv/data,subtype=cachefuse");

  o.fsname = "nas";
  CHECK(o.FuseMountOptions() == "fsname=nas,subtype=cachefuse");

  o.default_permissions = true;
  CHECK(o.FuseMountOptions() == "fsname=nas,subtype=cachefuse,default_permissions");

  o.default_permissions = false;
  o.allow_other = true;  // implies default_permissions
  CHECK(o.FuseMountOptions() == "fsname=nas,subtype=cachefuse,allow_other,default_permissions");

  o.default_permissions = true;  // not given twice
  o.read_only = true;
  CHECK(o.FuseMountOptions() == "fsname=nas,subtype=cachefuse,allow_other,default_permissions,ro");
}

TEST_CASE("FuseMountOptions escapes commas and backslashes in the fsname") {
  MountOptions o;
  o.source = "/srv/a,b";
  CHECK(o.FuseMountOptions() == "fsname=/srv/a\\,b,subtype=cachefuse");
  o.fsname = "x\\y,z,";
  CHECK(o.FuseMountOptions() == "fsname=x\\\\y\\,z\\,,subtype=cachefuse");
}

TEST_CASE("ToCacheOptions and ToReadHelperOptions carry the options over") {
  auto o = Parse(
      "cache_dir=/c,granule=1M,io_engine=sync,max_inflight=64M,cache_error_limit=5,debug_cache_fail_reads,"
      "readahead=2M,max_backend_inflight=9");
  auto c = o.ToCacheOptions();
  CHECK(c.dir == "/c");
  CHECK(c.granule == 1ULL << 20);
  CHECK(c.engine == EngineChoice::kSync);
  CHECK(c.max_inflight == 64ULL << 20);
  CHECK(c.cache_error_limit == 5);
  CHECK(c.debug_fail_cache_reads);
  auto r = o.ToReadHelperOptions();
  CHECK(r.readahead == 2ULL << 20);
  CHECK(r.max_backend_inflight == 9);

  // The buffer pool holds at least 16 granules.
  auto big = Parse("cache_dir=/c,granule=64M,max_inflight=4M");
  CHECK(big.ToCacheOptions().max_inflight == 16 * (64ULL << 20));

  // No cache_dir: the default for this user.
  CHECK(MountOptions{}.ToCacheOptions().dir == DefaultCacheDir());
}

// ---------------------------------------------------------------------------
// The default cache directory

TEST_CASE("DefaultCacheDir for root ignores the environment") {
  if (::geteuid() != 0) {
    WARN("not running as root; the root case is not checked");
    return;
  }
  CHECK(DefaultCacheDir() == "/var/cache/cachefuse");
  std::string out = InChild([] {
    SetEnv("XDG_CACHE_HOME", "/xdg");
    SetEnv("HOME", "/home/someone");
    std::string a = DefaultCacheDir();
    SetEnv("XDG_CACHE_HOME", nullptr);
    SetEnv("HOME", nullptr);
    return a + "|" + DefaultCacheDir();
  });
  CHECK(out == "/var/cache/cachefuse|/var/cache/cachefuse");
}

TEST_CASE("DefaultCacheDir for other users follows XDG_CACHE_HOME, then HOME") {
  // Runs in a child that drops its effective uid to nobody (when root), so the
  // environment of the test process is never touched.
  std::string out = InChild([]() -> std::string {
    if (::geteuid() == 0 && ::seteuid(65534) != 0) return "SKIP";
    std::string r;
    SetEnv("XDG_CACHE_HOME", "/xdg/cache");
    SetEnv("HOME", "/home/u");
    r += DefaultCacheDir() + "|";
    SetEnv("XDG_CACHE_HOME", "relative/cache");  // not absolute: ignored
    r += DefaultCacheDir() + "|";
    SetEnv("XDG_CACHE_HOME", "");
    r += DefaultCacheDir() + "|";
    SetEnv("XDG_CACHE_HOME", nullptr);
    r += DefaultCacheDir() + "|";
    SetEnv("HOME", "");  // empty HOME: the passwd entry
    r += DefaultCacheDir() + "|";
    SetEnv("HOME", nullptr);
    r += DefaultCacheDir();
    return r;
  });
  if (out == "SKIP") {
    WARN("cannot drop to uid 65534; the non-root case is not checked");
    return;
  }
  struct passwd* pw = ::getpwuid(::geteuid() == 0 ? 65534 : ::geteuid());
  const std::string pw_home = pw ? pw->pw_dir : "";
  CHECK(out == "/xdg/cache/cachefuse|/home/u/.cache/cachefuse|/home/u/.cache/cachefuse|/home/u/.cache/cachefuse|" +
                   pw_home + "/.cache/cachefuse|" + pw_home + "/.cache/cachefuse");
}
