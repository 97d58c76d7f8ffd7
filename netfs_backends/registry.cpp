// Registry: finds the source for a SOURCE string among those compiled in.
//
// CMake defines CACHEFUSE_SOURCE_<NAME>=1 on this file for each source it
// built (netfs_backends/CMakeLists.txt). A new source adds its header below
// and one #if block to kCompiled, and its schemes to kKnownSchemes.
#include "netfs_backends/registry.h"

#include <cctype>
#include <string_view>
#include <utility>

#include "netfs_backends/posix/posix_source.h"
#if CACHEFUSE_SOURCE_HTTP
#include "netfs_backends/http/http_source.h"
#endif

namespace cachefuse::netfs {
namespace {

using FactoryFn = const SourceFactory* (*)();

// In registration order: what CompiledSources() lists.
constexpr FactoryFn kCompiled[] = {
#if CACHEFUSE_SOURCE_POSIX
    &PosixSourceFactory,
#endif
#if CACHEFUSE_SOURCE_HTTP
    &HttpSourceFactory,
#endif
};

// Every scheme some source of cachefuse handles, compiled in or not, so that a
// SOURCE of a source left out of this build is told apart from a typo.
struct KnownScheme {
  const char* scheme;
  const char* source;
};
constexpr KnownScheme kKnownSchemes[] = {
    {"http", "http"},
    {"https", "http"},
    {"nfs", "nfs"},
    {"smb", "smb"},
};

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool IsScheme(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The scheme of spec, lowercased, or "" for a plain path (no "scheme://").
std::string SchemeOf(const std::string& spec) {
  size_t sep = spec.find("://");
  if (sep == std::string::npos) return "";
  std::string_view scheme(spec.data(), sep);
  return IsScheme(scheme) ? Lower(scheme) : "";
}

// spec without its userinfo ("user:password@"), for messages. Everything from
// "://" to the last "@" goes: a password may hold an unescaped "/" or "@".
std::string Redacted(const std::string& spec) {
  size_t sep = spec.find("://");
  if (sep == std::string::npos) return spec;
  size_t at = spec.rfind('@');
  if (at == std::string::npos || at < sep + 3) return spec;
  return spec.substr(0, sep + 3) + "***" + spec.substr(at);
}

// The userinfo of spec ("" if none): what must not appear in any message.
std::string Userinfo(const std::string& spec) {
  size_t sep = spec.find("://");
  if (sep == std::string::npos) return "";
  size_t at = spec.rfind('@');
  if (at == std::string::npos || at < sep + 3) return "";
  return spec.substr(sep + 3, at - sep - 3);
}

// status with its context changed, of the same kind and errno.
Status WithContext(const Status& s, std::string context) {
  using Kind = Status::Kind;
  switch (s.kind()) {
    case Kind::kOk:
      return s;
    case Kind::kNotSupported:
      return Status::NotSupported(std::move(context));
    case Kind::kReadOnly:
      return Status::ReadOnly(std::move(context));
    case Kind::kStale:
      return Status::Stale(std::move(context));
    case Kind::kTimeout:
      return Status::Timeout(std::move(context));
    case Kind::kTransient:
      return Status::Transient(s.err(), std::move(context));
    case Kind::kFatal:
      return Status::Fatal(s.err(), std::move(context));
    case Kind::kCorruption:
      return Status::Corruption(std::move(context));
    case Kind::kInvalid:
      return Status::Invalid(std::move(context));
    case Kind::kNotFound:
    case Kind::kPermission:
    case Kind::kIo:
      break;
  }
  return Status::FromErrno(s.err(), std::move(context));
}

// A source's own message, with spec's credentials taken out should the source
// have quoted them: no message of the registry carries credentials.
Status Scrubbed(const Status& s, const std::string& spec) {
  const std::string userinfo = Userinfo(spec);
  if (s.ok() || userinfo.empty()) return s;
  std::vector<std::pair<std::string, std::string>> secrets = {{userinfo + "@", "***@"}};
  // The password alone too, unless too short to tell from ordinary text.
  if (size_t colon = userinfo.find(':'); colon != std::string::npos && userinfo.size() - colon > 3) {
    secrets.emplace_back(userinfo.substr(colon + 1), "***");
  }
  std::string context = s.context();
  bool changed = false;
  for (const auto& [secret, mask] : secrets) {
    for (size_t pos = 0; (pos = context.find(secret, pos)) != std::string::npos; pos += mask.size()) {
      context.replace(pos, secret.size(), mask);
      changed = true;
    }
  }
  return changed ? WithContext(s, std::move(context)) : s;
}

std::string CompiledList() {
  std::string out;
  for (const std::string& name : CompiledSources()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// The compiled-in factory for scheme ("" = a plain path), or why there is none.
Result<const SourceFactory*> FactoryFor(const std::string& scheme, const std::string& spec) {
  for (FactoryFn fn : kCompiled) {
    const SourceFactory* f = fn();
    if (scheme.empty() && f->schemes().empty()) return f;
    for (const std::string& s : f->schemes()) {
      if (s == scheme) return f;
    }
  }
  if (scheme.empty()) return Status::NotSupported("local paths are not compiled into this cachefuse");
  for (const KnownScheme& k : kKnownSchemes) {
    if (scheme == k.scheme) {
      return Status::NotSupported("source scheme " + scheme +
                                  ":// is not compiled into this cachefuse (sources: " + CompiledList() + ")");
    }
  }
  std::string known = "paths";
  for (const KnownScheme& k : kKnownSchemes) known += std::string(", ") + k.scheme + "://";
  return Status::Invalid("unknown source scheme '" + scheme + "://' in '" + Redacted(spec) + "' (known: " + known +
                         ")");
}

}  // namespace

Result<ParsedSource> ParseSource(const std::string& spec) {
  const std::string scheme = SchemeOf(spec);
  auto factory = FactoryFor(scheme, spec);
  if (!factory.ok()) return factory.status();
  auto parsed = (*factory)->Parse(spec);
  if (!parsed.ok()) return Scrubbed(parsed.status(), spec);
  if (parsed->spec.empty()) parsed->spec = spec;
  if (parsed->scheme.empty()) parsed->scheme = scheme.empty() ? (*factory)->name() : scheme;
  return parsed;
}

Result<std::unique_ptr<Backend>> OpenSource(const ParsedSource& source, const SourceOptions& options) {
  // A plain path is scheme "posix", the name of its factory.
  const std::string scheme = source.scheme == "posix" ? "" : Lower(source.scheme);
  auto factory = FactoryFor(scheme, source.spec);
  if (!factory.ok()) return factory.status();
  auto backend = (*factory)->Open(source, options);
  if (!backend.ok()) return Scrubbed(backend.status(), source.spec);
  return backend;
}

std::vector<std::string> CompiledSources() {
  std::vector<std::string> names;
  for (FactoryFn fn : kCompiled) names.push_back(fn()->name());
  return names;
}

}  // namespace cachefuse::netfs
