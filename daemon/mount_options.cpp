// MountOptions: parsing and validation of -o options and of the config file.
#include "daemon/mount_options.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/unique_fd.h"
#include "common/units.h"

namespace cachefuse::daemon {
namespace {

// Options that mount(8), mount.fuse3 and fstab pass along; harmless to ignore.
bool IsGenericMountOption(const std::string& key) {
  static const char* kIgnored[] = {
      "rw",       "dev",        "nodev",       "suid",     "nosuid",  "exec",         "noexec",  "atime", "noatime",
      "relatime", "nodiratime", "strictatime", "lazytime", "async",   "auto",         "noauto",  "user",  "users",
      "nouser",   "_netdev",    "nofail",      "defaults", "comment", "auto_unmount", "nonempty"};
  for (const char* k : kIgnored) {
    if (key == k) return true;
  }
  return key.rfind("x-", 0) == 0;
}

uint64_t NeedSize(const std::string& key, const std::string& value) {
  auto v = ParseSize(value);
  if (!v) throw OptionError("option " + key + "=" + value + ": not a size (examples: 4096, 256k, 64M, 2G)");
  return *v;
}

double NeedSeconds(const std::string& key, const std::string& value) {
  auto v = ParseSeconds(value);
  if (!v) throw OptionError("option " + key + "=" + value + ": not a duration in seconds (examples: 1, 0.5, 200ms)");
  return *v;
}

unsigned NeedCount(const std::string& key, const std::string& value, unsigned lo, unsigned hi) {
  char* end = nullptr;
  unsigned long v = std::strtoul(value.c_str(), &end, 10);
  // strtoul alone takes " 8" and "+8", and wraps "-18446744073709551615" around to 1.
  if (value.empty() || !std::isdigit(static_cast<unsigned char>(value[0])) || *end != '\0' || v < lo || v > hi) {
    throw OptionError("option " + key + "=" + value + ": must be a whole number from " + std::to_string(lo) + " to " +
                      std::to_string(hi));
  }
  return static_cast<unsigned>(v);
}

bool NeedBool(const std::string& key, const std::string& value) {
  if (value.empty() || value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  throw OptionError("option " + key + "=" + value + ": must be true or false");
}

void NoValue(const std::string& key, bool has_value) {
  if (has_value) throw OptionError("option " + key + " takes no value");
}

// The whole file at path, or an OptionError with the reason it cannot be read.
std::string ReadConfigText(const std::string& path) {
  auto fail = [&](int err) { return OptionError("config file " + path + ": cannot be read: " + std::strerror(err)); };
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw fail(errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw fail(errno);
  if (S_ISDIR(st.st_mode)) throw fail(EISDIR);
  std::string text;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail(errno);
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

// For a TOML syntax error on `line` (1-based) of text: a hint when that line is
// `key = 8M` or the like, a number with a unit that TOML only takes quoted.
std::string UnquotedUnitHint(const std::string& text, size_t line) {
  size_t start = 0;
  for (size_t i = 1; i < line && start != std::string::npos; ++i) {
    start = text.find('\n', start);
    if (start != std::string::npos) ++start;
  }
  if (line == 0 || start == std::string::npos) return "";
  std::string l = text.substr(start, text.find('\n', start) - start);
  l = l.substr(0, l.find('#'));
  auto trim = [](std::string s) {
    const char* ws = " \t\r";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return std::string();
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
  };
  size_t eq = l.find('=');
  if (eq == std::string::npos) return "";
  std::string key = trim(l.substr(0, eq));
  std::string value = trim(l.substr(eq + 1));
  // Digits (with '.' or '_'), optional blanks, then letters only: 8M, 256k, 1.5G, 200ms.
  size_t i = 0;
  while (i < value.size() &&
         (std::isdigit(static_cast<unsigned char>(value[i])) || value[i] == '.' || value[i] == '_')) {
    ++i;
  }
  if (i == 0 || !std::isdigit(static_cast<unsigned char>(value[0]))) return "";
  size_t units = value.find_first_not_of(" \t", i);
  if (key.empty() || units == std::string::npos) return "";
  for (size_t j = units; j < value.size(); ++j) {
    if (!std::isalpha(static_cast<unsigned char>(value[j]))) return "";
  }
  std::string quoted = value.substr(0, i) + value.substr(units);
  return " (hint: sizes and durations with units must be quoted, e.g. " + key + " = \"" + quoted + "\")";
}

}  // namespace

const std::vector<OptionDoc>& OptionDocs() {
  static const std::vector<OptionDoc> docs = {
      {"cache_dir", "DIR", "cache directory (default /var/cache/cachefuse as root, else ~/.cache/cachefuse)"},
      {"granule", "SIZE", "cache granule, a power of two from 4k to 64M (default 256k); fixed per cache dir"},
      {"attr_timeout", "SECONDS", "how long the kernel trusts attributes (default 1)"},
      {"entry_timeout", "SECONDS", "how long the kernel trusts names (default 1)"},
      {"negative_timeout", "SECONDS", "how long the kernel remembers missing names (default 0)"},
      {"io_engine", "auto|uring|sync", "cache I/O engine (default auto: uring where O_DIRECT works)"},
      {"readahead", "SIZE", "read-ahead for sequential readers, 0 for none (default 8M)"},
      {"max_backend_inflight", "N",
       "read-ahead fetches from the source at once, 1 to 256 (default 4); demand reads of FUSE threads come on top"},
      {"max_inflight", "SIZE", "memory for data in flight (default 32M)"},
      {"cache_error_limit", "N", "cache I/O errors before the cache is withdrawn (default 8)"},
      {"cache_size", "SIZE", "most space the cache dir may use, 0 for no limit (default 0)"},
      {"brun,bcull,bstop", "PCT", "free space %: cull below bcull until brun; stop caching below bstop (10,7,3)"},
      {"frun,fcull,fstop", "PCT", "the same for free files (10,7,3)"},
      {"threads", "N", "most FUSE worker threads (default 16)"},
      {"retries", "N", "retries of a source read or lookup after a transient error, 0-100 (default 4)"},
      {"retry_budget", "SECONDS", "most time one source call may take with its retries; then EIO (default 30)"},
      {"source_timeout", "SECONDS", "most time one attempt of a source read may take (default 15)"},
      {"credentials", "FILE",
       "http(s): a file (mode 0600) with 'user = NAME' and 'password = SECRET', or 'token = BEARER'"},
      {"ca_file", "FILE", "https: verify the server against the CA certificates in FILE (PEM)"},
      {"insecure", "", "https: do not verify the server's certificate (warned at start)"},
      {"log_level", "debug|info|warn|error", "log verbosity (default info)"},
      {"config", "FILE", "read options from a TOML file of key = value lines"},
      {"allow_other", "", "let other users use the mount (implies default_permissions)"},
      {"default_permissions", "", "let the kernel check permissions"},
      {"ro", "", "read-only mount"},
      {"fsname", "NAME", "name shown in /proc/mounts (default: the source)"},
      {"debug_backend_latency_ms", "N", "testing: add N ms to every source lookup, listing, open and read"},
      {"debug_cache_fail_reads", "", "testing: make every cache read fail"},
  };
  return docs;
}

const char* ExitStatusDoc() {
  return "Exit status:\n"
         "  0  mounted (without -f, as soon as the mount answers); with -f, or for the daemon,\n"
         "     unmounted cleanly (fusermount3 -u, umount, SIGTERM or SIGINT; the cache state is saved)\n"
         "  1  start-up error: a bad option or config file, a missing source or mountpoint, an\n"
         "     unusable or busy cache dir, a failed mount; no mount and no daemon are left behind\n"
         "  2  bad command line (an unknown flag, SOURCE or MOUNTPOINT missing)\n";
}

std::string DefaultCacheDir() {
  if (::geteuid() == 0) return "/var/cache/cachefuse";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/') return std::string(xdg) + "/cachefuse";
  const char* home = std::getenv("HOME");
  std::string h = home && *home ? home : "";
  if (h.empty()) {
    if (struct passwd* pw = ::getpwuid(::geteuid())) h = pw->pw_dir;
  }
  return h + "/.cache/cachefuse";
}

void ApplyOption(MountOptions& o, const std::string& item) {
  if (item.empty()) return;
  size_t eq = item.find('=');
  const bool has_value = eq != std::string::npos;
  const std::string key = item.substr(0, eq);
  const std::string value = has_value ? item.substr(eq + 1) : "";
  auto need_value = [&] {
    if (!has_value || value.empty()) throw OptionError("option " + key + " needs a value (" + key + "=...)");
  };

  if (key == "cache_dir") {
    need_value();
    o.cache_dir = value;
  } else if (key == "granule") {
    need_value();
    uint64_t g = NeedSize(key, value);
    if (g < 4096 || g > (64ULL << 20) || (g & (g - 1)) != 0) {
      throw OptionError("option granule=" + value + ": must be a power of two from 4k to 64M");
    }
    o.granule = g;
  } else if (key == "attr_timeout") {
    need_value();
    o.attr_timeout = NeedSeconds(key, value);
  } else if (key == "entry_timeout") {
    need_value();
    o.entry_timeout = NeedSeconds(key, value);
  } else if (key == "negative_timeout") {
    need_value();
    o.negative_timeout = NeedSeconds(key, value);
  } else if (key == "io_engine") {
    need_value();
    if (value == "auto") {
      o.io_engine = cache::EngineChoice::kAuto;
    } else if (value == "uring") {
      o.io_engine = cache::EngineChoice::kUring;
    } else if (value == "sync") {
      o.io_engine = cache::EngineChoice::kSync;
    } else {
      throw OptionError("option io_engine=" + value + ": must be auto, uring or sync");
    }
  } else if (key == "readahead") {
    need_value();
    o.readahead = NeedSize(key, value);
    if (o.readahead > (1ULL << 30)) throw OptionError("option readahead=" + value + ": at most 1G");
  } else if (key == "max_backend_inflight") {
    need_value();
    o.max_backend_inflight = NeedCount(key, value, 1, 256);
  } else if (key == "max_inflight") {
    need_value();
    o.max_inflight = NeedSize(key, value);
    if (o.max_inflight < (4ULL << 20) || o.max_inflight > (16ULL << 30)) {
      throw OptionError("option max_inflight=" + value + ": must be from 4M to 16G");
    }
  } else if (key == "cache_error_limit") {
    need_value();
    o.cache_error_limit = NeedCount(key, value, 1, 1000000);
  } else if (key == "cache_size") {
    need_value();
    o.limits.cache_size = NeedSize(key, value);
    if (o.limits.cache_size != 0 && o.limits.cache_size < (1ULL << 20)) {
      throw OptionError("option cache_size=" + value + ": at least 1M (or 0 for no limit)");
    }
  } else if (key == "brun" || key == "bcull" || key == "bstop" || key == "frun" || key == "fcull" || key == "fstop") {
    need_value();
    std::string v = value;
    if (!v.empty() && v.back() == '%') v.pop_back();
    unsigned pct = NeedCount(key, v, 0, 99);
    unsigned* field = key == "brun"    ? &o.limits.brun
                      : key == "bcull" ? &o.limits.bcull
                      : key == "bstop" ? &o.limits.bstop
                      : key == "frun"  ? &o.limits.frun
                      : key == "fcull" ? &o.limits.fcull
                                       : &o.limits.fstop;
    *field = pct;
  } else if (key == "threads") {
    need_value();
    o.threads = NeedCount(key, value, 1, 1024);
  } else if (key == "retries") {
    need_value();
    o.retries = NeedCount(key, value, 0, 100);
  } else if (key == "retry_budget") {
    need_value();
    o.retry_budget = NeedSeconds(key, value);
    if (o.retry_budget <= 0) throw OptionError("option retry_budget=" + value + ": must be more than 0");
  } else if (key == "source_timeout") {
    need_value();
    o.source_timeout = NeedSeconds(key, value);
    if (o.source_timeout <= 0) throw OptionError("option source_timeout=" + value + ": must be more than 0");
  } else if (key == "credentials") {
    need_value();
    o.credentials_file = value;
  } else if (key == "ca_file") {
    need_value();
    o.ca_file = value;
  } else if (key == "insecure") {
    o.insecure = has_value ? NeedBool(key, value) : true;
  } else if (key == "log_level") {
    need_value();
    if (value != "trace" && value != "debug" && value != "info" && value != "warn" && value != "error") {
      throw OptionError("option log_level=" + value + ": must be debug, info, warn or error");
    }
    o.log_level = value;
  } else if (key == "config") {
    need_value();
    ApplyConfigFile(o, value);
  } else if (key == "allow_other") {
    o.allow_other = has_value ? NeedBool(key, value) : true;
  } else if (key == "default_permissions") {
    o.default_permissions = has_value ? NeedBool(key, value) : true;
  } else if (key == "ro") {
    NoValue(key, has_value);
    o.read_only = true;
  } else if (key == "fsname") {
    need_value();
    o.fsname = value;
  } else if (key == "debug_backend_latency_ms") {
    need_value();
    o.debug_backend_latency_ms = NeedCount(key, value, 0, 60000);
  } else if (key == "debug_cache_fail_reads") {
    o.debug_cache_fail_reads = has_value ? NeedBool(key, value) : true;
  } else if (key == "rw") {
    o.read_only = false;
  } else if (IsGenericMountOption(key)) {
    // passed by mount(8)/fstab; nothing to do
  } else {
    throw OptionError("unknown option '" + key + "' (see cachefuse --help)");
  }
}

void ApplyOptionList(MountOptions& o, const std::string& list) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    ApplyOption(o, list.substr(start, comma - start));
    start = comma + 1;
  }
}

void ApplyConfigFile(MountOptions& o, const std::string& path) {
  if (!o.config_file.empty()) throw OptionError("config file " + path + ": only one config= may be given");
  o.config_file = path;
  const std::string text = ReadConfigText(path);
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const size_t line = e.source().begin.line;
    throw OptionError("config file " + path + ":" + std::to_string(line) + ": " + std::string(e.description()) +
                      UnquotedUnitHint(text, line));
  }
  for (const auto& [k, node] : table) {
    std::string key(k.str());
    std::string line = std::to_string(node.source().begin.line);
    std::string value;
    if (key == "config") throw OptionError("config file " + path + ":" + line + ": config files do not nest");
    if (auto s = node.value<std::string>()) {
      value = *s;
    } else if (auto b = node.as_boolean()) {
      value = b->get() ? "true" : "false";
    } else if (auto i = node.as_integer()) {
      value = std::to_string(i->get());
    } else if (auto f = node.as_floating_point()) {
      value = std::to_string(f->get());
    } else {
      throw OptionError("config file " + path + ":" + line + ": " + key + " must be a string, number or boolean");
    }
    try {
      if (key == "ro") {
        // ro takes no value on -o; here it is a boolean, and `ro = false` is simply left off.
        if (NeedBool(key, value)) ApplyOption(o, key);
      } else {
        ApplyOption(o, key + "=" + value);
      }
    } catch (const OptionError& e) {
      throw OptionError("config file " + path + ":" + line + ": " + e.what());
    }
  }
}

void ValidateOptions(const MountOptions& o) {
  const auto& l = o.limits;
  if (!(l.bstop < l.bcull && l.bcull < l.brun)) {
    throw OptionError("free-space limits must satisfy bstop < bcull < brun (have bstop=" + std::to_string(l.bstop) +
                      ", bcull=" + std::to_string(l.bcull) + ", brun=" + std::to_string(l.brun) + ")");
  }
  if (!(l.fstop < l.fcull && l.fcull < l.frun)) {
    throw OptionError("free-file limits must satisfy fstop < fcull < frun (have fstop=" + std::to_string(l.fstop) +
                      ", fcull=" + std::to_string(l.fcull) + ", frun=" + std::to_string(l.frun) + ")");
  }
}

cache::CacheOptions MountOptions::ToCacheOptions() const {
  cache::CacheOptions c;
  c.dir = cache_dir.empty() ? DefaultCacheDir() : cache_dir;
  c.granule = granule;
  c.engine = io_engine;
  c.max_inflight = std::max<uint64_t>(max_inflight, granule * 16);
  c.cache_error_limit = cache_error_limit;
  c.debug_fail_cache_reads = debug_cache_fail_reads;
  c.limits = limits;
  return c;
}

cache::ReadHelperOptions MountOptions::ToReadHelperOptions() const {
  cache::ReadHelperOptions r;
  r.readahead = readahead;
  r.max_backend_inflight = max_backend_inflight;
  return r;
}

netfs::RetryPolicy MountOptions::ToRetryPolicy() const {
  netfs::RetryPolicy p;
  p.max_attempts = retries + 1;
  p.call_timeout = std::chrono::milliseconds(static_cast<int64_t>(source_timeout * 1000));
  p.budget = std::chrono::milliseconds(static_cast<int64_t>(retry_budget * 1000));
  return p;
}

netfs::SourceOptions MountOptions::ToSourceOptions() const {
  netfs::SourceOptions so;
  so.timeout_ms = static_cast<unsigned>(source_timeout * 1000);
  so.credentials_file = credentials_file;
  so.ca_file = ca_file;
  so.insecure = insecure;
  return so;
}

std::string MountOptions::FuseMountOptions() const {
  auto escape = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == ',' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    return out;
  };
  std::string o = "fsname=" + escape(fsname.empty() ? source : fsname) + ",subtype=cachefuse";
  if (allow_other) o += ",allow_other";
  if (default_permissions || allow_other) o += ",default_permissions";
  if (read_only) o += ",ro";
  return o;
}

}  // namespace cachefuse::daemon
