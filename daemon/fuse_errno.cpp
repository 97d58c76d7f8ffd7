// FuseErrno: typed Status to reply errno.
#include "daemon/fuse_errno.h"

namespace cachefuse::daemon {

int FuseErrno(const Status& st) {
  const int e = st.err();
  switch (st.kind()) {
    case Status::Kind::kOk:
      return 0;
    case Status::Kind::kNotFound:
      return e == ENOTDIR ? ENOTDIR : ENOENT;
    case Status::Kind::kPermission:
      return e == EPERM ? EPERM : EACCES;
    case Status::Kind::kNotSupported:
      return (e == ENOTSUP || e == ENOSYS || e == ENOTTY || e == ENODATA) ? e : ENOTSUP;
    case Status::Kind::kReadOnly:
      return EROFS;
    case Status::Kind::kStale:
      return ESTALE;
    case Status::Kind::kTransient:
    case Status::Kind::kTimeout:
    case Status::Kind::kFatal:
    case Status::Kind::kCorruption:
      return EIO;
    case Status::Kind::kInvalid:
      return EINVAL;
    case Status::Kind::kIo:
      return e > 0 ? e : EIO;
  }
  return EIO;
}

}  // namespace cachefuse::daemon
