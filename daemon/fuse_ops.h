// The FUSE low-level operation table of cachefuse.
#pragma once

#include <fuse_lowlevel.h>

namespace cachefuse::daemon {

// Every handler expects fuse_req_userdata(req) to be the Filesystem.
const fuse_lowlevel_ops& FuseOps();

}  // namespace cachefuse::daemon
