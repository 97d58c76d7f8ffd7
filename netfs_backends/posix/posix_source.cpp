// PosixSource: the posix source's factory (registry.h).
#include "netfs_backends/posix/posix_source.h"

#include "netfs_backends/posix/posix_backend.h"

namespace cachefuse::netfs {
namespace {

class PosixSource final : public SourceFactory {
 public:
  std::string name() const override { return "posix"; }
  std::vector<std::string> schemes() const override { return {}; }

  // Opening the directory is the check (exists, is a directory, may be
  // searched) and gives the canonical path; nothing is connected to. The
  // messages are PosixBackend::Open's.
  Result<ParsedSource> Parse(const std::string& spec) const override {
    auto be = PosixBackend::Open(spec);
    if (!be.ok()) return be.status();
    return ParsedSource{"posix", spec, (*be)->root_path()};
  }

  // Opens the canonical (absolute) path: the daemon may have changed its
  // directory since the SOURCE was parsed. describe() stays "posix:" + that
  // path, the volume key of existing caches.
  Result<std::unique_ptr<Backend>> Open(const ParsedSource& source, const SourceOptions&) const override {
    auto be = PosixBackend::Open(source.canonical.empty() ? source.spec : source.canonical);
    if (!be.ok()) return be.status();
    return std::unique_ptr<Backend>(std::move(be.value()));
  }
};

}  // namespace

const SourceFactory* PosixSourceFactory() {
  static const PosixSource factory;
  return &factory;
}

}  // namespace cachefuse::netfs
