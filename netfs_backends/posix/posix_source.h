// PosixSource: the factory of the posix source (plain paths) for the registry.
#pragma once

#include "netfs_backends/registry.h"

namespace cachefuse::netfs {

// The factory of SOURCEs without "scheme://": a local directory.
const SourceFactory* PosixSourceFactory();

}  // namespace cachefuse::netfs
