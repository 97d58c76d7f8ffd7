// MountOptions: every option of a cachefuse mount, from -o and from a config file.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "cache/read_helper.h"
#include "netfs_backends/registry.h"
#include "netfs_backends/retry_backend.h"

namespace cachefuse::daemon {

// Thrown at start-up for a bad option or config file; the message names the problem.
class OptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct MountOptions {
  std::string source;
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;

  std::string cache_dir;  // empty: the default for this user
  uint64_t granule = 256 * 1024;
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  double negative_timeout = 0.0;
  cache::EngineChoice io_engine = cache::EngineChoice::kAuto;
  uint64_t readahead = 8ULL << 20;
  unsigned max_backend_inflight = 4;
  uint64_t max_inflight = 32ULL << 20;
  unsigned cache_error_limit = 8;
  unsigned threads = 16;  // most FUSE worker threads
  // The call policy around the source (netfs_backends/retry_backend.h).
  unsigned retries = 4;          // retries of an idempotent call after a transient failure
  double retry_budget = 30.0;    // seconds all attempts of one call may take
  double source_timeout = 15.0;  // seconds one attempt of a read may take
  // Network sources (http): where the credentials are, TLS.
  std::string credentials_file;  // credentials=FILE: never the secret itself
  std::string ca_file;
  bool insecure = false;
  cache::CullLimits limits;  // cache_size, brun/bcull/bstop, frun/fcull/fstop
  std::string log_level = "info";

  bool allow_other = false;
  bool default_permissions = false;
  bool read_only = false;
  std::string fsname;

  // Testing options (documented as such).
  unsigned debug_backend_latency_ms = 0;
  bool debug_cache_fail_reads = false;

  std::string config_file;  // where config= pointed, if anywhere

  cache::CacheOptions ToCacheOptions() const;
  cache::ReadHelperOptions ToReadHelperOptions() const;
  netfs::RetryPolicy ToRetryPolicy() const;
  netfs::SourceOptions ToSourceOptions() const;
  // The -o string handed to the kernel mount (through libfuse).
  std::string FuseMountOptions() const;
};

// Checks the options as a whole (e.g. bstop < bcull < brun). Throws OptionError.
void ValidateOptions(const MountOptions& opts);
// Applies one "key" or "key=value" option. Throws OptionError.
void ApplyOption(MountOptions& opts, const std::string& item);
// Splits "a,b=c,d" and applies each (config= is read where it appears).
void ApplyOptionList(MountOptions& opts, const std::string& list);
// Reads a TOML config file of key = value pairs with the option names as keys.
void ApplyConfigFile(MountOptions& opts, const std::string& path);

// The default cache dir: /var/cache/cachefuse for root, else
// $XDG_CACHE_HOME/cachefuse or ~/.cache/cachefuse.
std::string DefaultCacheDir();

// The option table for --help: name, value syntax, default, meaning.
struct OptionDoc {
  const char* name;
  const char* value;
  const char* meaning;
};
const std::vector<OptionDoc>& OptionDocs();
// The "Exit status" section of --help (the codes daemon/main.cpp returns).
const char* ExitStatusDoc();

}  // namespace cachefuse::daemon
