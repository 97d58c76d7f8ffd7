// HttpSource: the http source's factory (registry.h).
#include "netfs_backends/http/http_source.h"

#include "netfs_backends/http/http_backend.h"
#include "netfs_backends/http/http_url.h"

namespace cachefuse::netfs {
namespace {

class HttpSource final : public SourceFactory {
 public:
  std::string name() const override { return "http"; }
  std::vector<std::string> schemes() const override { return {"http", "https"}; }

  // The URL's syntax only: nothing is resolved or connected to.
  Result<ParsedSource> Parse(const std::string& spec) const override {
    auto url = http::ParseSourceUrl(spec);
    if (!url.ok()) return url.status();
    return ParsedSource{url->scheme, spec, url->Canonical()};
  }

  Result<std::unique_ptr<Backend>> Open(const ParsedSource& source, const SourceOptions& options) const override {
    auto url = http::ParseSourceUrl(source.canonical.empty() ? source.spec : source.canonical);
    if (!url.ok()) return url.status();
    auto be = http::HttpBackend::Open(*url, options);
    if (!be.ok()) return be.status();
    return std::unique_ptr<Backend>(std::move(be.value()));
  }
};

}  // namespace

const SourceFactory* HttpSourceFactory() {
  static const HttpSource factory;
  return &factory;
}

}  // namespace cachefuse::netfs
