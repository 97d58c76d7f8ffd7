// The FUSE edge's one mapping from a typed Status to the errno a reply carries.
#pragma once

#include "common/status.h"

namespace cachefuse::daemon {

// kNotFound -> ENOENT/ENOTDIR as given; kPermission -> EACCES/EPERM as given;
// kNotSupported -> the given ENOTSUP-like errno (else ENOTSUP); kReadOnly ->
// EROFS; kStale -> ESTALE (the source changed under an open file; an open that
// gets it makes the kernel look the name up again); kTransient, kTimeout,
// kFatal, kCorruption -> EIO (what went wrong is in the log: a reader cannot act
// on ECONNRESET); kInvalid -> EINVAL; kIo -> its errno (EEXIST, ENOTEMPTY, ...).
int FuseErrno(const Status& st);

}  // namespace cachefuse::daemon
