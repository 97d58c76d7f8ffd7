// Registry: the sources compiled in, by URL scheme. Parsing a SOURCE string is
// cheap and never connects (the parent process checks a command line with it);
// opening one does.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "netfs_backends/backend.h"

namespace cachefuse::netfs {

// Options every source may read (mount options of the daemon).
struct SourceOptions {
  std::string credentials_file;  // credentials=FILE: user/password/token, read by the source, never logged
  std::string ca_file;           // ca_file=FILE (TLS sources)
  bool insecure = false;         // skip TLS verification (with a warning)
  unsigned timeout_ms = 30000;   // per-call deadline for network sources
  // Where a source says what the daemon should log (sources have no logger):
  // once per event, never with a secret in it. May be empty.
  std::function<void(const std::string&)> warn;
};

// A SOURCE string taken apart; no connection made.
struct ParsedSource {
  std::string scheme;     // "posix", "http", "https", "nfs", "smb"
  std::string spec;       // the SOURCE as given
  std::string canonical;  // normalized, without credentials: for describe() and the volume key
};

class SourceFactory {
 public:
  virtual ~SourceFactory() = default;
  // "posix", "http", ...: shown by cachefuse --version.
  virtual std::string name() const = 0;
  // URL schemes handled ("http", "https"); the posix factory handles plain paths.
  virtual std::vector<std::string> schemes() const = 0;
  // Checks the string (and, for a local path, that it is a directory); never connects.
  virtual Result<ParsedSource> Parse(const std::string& spec) const = 0;
  virtual Result<std::unique_ptr<Backend>> Open(const ParsedSource& source, const SourceOptions& options) const = 0;
};

// Finds the factory for spec's scheme (a path without "scheme://" is posix) and
// parses. Unknown scheme, or one whose source is not compiled in: a message that says so.
Result<ParsedSource> ParseSource(const std::string& spec);
Result<std::unique_ptr<Backend>> OpenSource(const ParsedSource& source, const SourceOptions& options);
// Names of the sources compiled in, in registration order ("posix", ...).
std::vector<std::string> CompiledSources();

}  // namespace cachefuse::netfs
