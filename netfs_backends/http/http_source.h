// HttpSource: the factory of the http source (schemes http and https) for the registry.
#pragma once

#include "netfs_backends/registry.h"

namespace cachefuse::netfs {

const SourceFactory* HttpSourceFactory();

}  // namespace cachefuse::netfs
