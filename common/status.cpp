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
      kind = Kind::kPermission;
      break;
    case EROFS:
      kind = Kind::kReadOnly;
      break;
    case ENOTSUP:
    case ENOSYS:
      kind = Kind::kNotSupported;
      break;
    case EAGAIN:
    case EINTR:
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EPIPE:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
      kind = Kind::kTransient;
      break;
    case ETIMEDOUT:
      kind = Kind::kTimeout;
      break;
    case ESTALE:
      kind = Kind::kStale;
      break;
    case EINVAL:
      kind = Kind::kInvalid;
      break;
    default:
      kind = Kind::kIo;
  }
  return Status(kind, err, std::move(context));
}

const char* KindName(Status::Kind kind) {
  switch (kind) {
    case Status::Kind::kOk:
      return "ok";
    case Status::Kind::kNotFound:
      return "not-found";
    case Status::Kind::kPermission:
      return "permission";
    case Status::Kind::kNotSupported:
      return "not-supported";
    case Status::Kind::kReadOnly:
      return "read-only";
    case Status::Kind::kTransient:
      return "transient";
    case Status::Kind::kTimeout:
      return "timeout";
    case Status::Kind::kStale:
      return "stale";
    case Status::Kind::kFatal:
      return "fatal";
    case Status::Kind::kCorruption:
      return "corruption";
    case Status::Kind::kInvalid:
      return "invalid";
    case Status::Kind::kIo:
      return "io";
  }
  return "?";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = context_;
  if (!s.empty()) s += ": ";
  s += std::strerror(err_);
  return s;
}

}  // namespace cachefuse
