// Status: errno classification and formatting.
#include "common/status.h"

namespace cachefuse {

Status Status::FromErrno(int err, std::string context) {
  Kind kind = Kind::kIo;
  switch (err) {
    case 0:
      return Status();
    case ENOENT:
    case ENOTDIR:
      kind = Kind::kNotFound;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      kind = Kind::kPermission;
      break;
    case ENOTSUP:
    case ENOSYS:
      kind = Kind::kNotSupported;
      break;
    case EAGAIN:
    case EINTR:
    case ETIMEDOUT:
    case ECONNRESET:
    case EHOSTUNREACH:
      kind = Kind::kTransient;
      break;
    case EINVAL:
      kind = Kind::kInvalid;
      break;
    default:
      kind = Kind::kIo;
  }
  return Status(kind, err, std::move(context));
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = context_;
  if (!s.empty()) s += ": ";
  s += std::strerror(err_);
  return s;
}

}  // namespace cachefuse
