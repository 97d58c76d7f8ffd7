// Errors as values: Status (kind + errno + context) and Result<T>. The kind is
// what decisions read (retry, stale, offline); the errno is the detail the FUSE
// edge replies with where the kind allows it (daemon/fuse_errno.h).
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cachefuse {

class Status {
 public:
  enum class Kind {
    kOk,
    kNotFound,      // ENOENT, ENOTDIR
    kPermission,    // EACCES, EPERM
    kNotSupported,  // the source cannot do this (ENOTSUP, ENOSYS, EOPNOTSUPP)
    kReadOnly,      // the source or the mount is read-only (EROFS)
    kTransient,     // may work if tried again: resets, refused connections, 5xx, EAGAIN
    kTimeout,       // no answer before the call's deadline
    kStale,         // the source changed under an open file: this version cannot be read
    kFatal,         // the source is unusable (bad credentials, protocol violation)
    kCorruption,    // our own on-disk data is damaged
    kInvalid,       // bad argument (EINVAL)
    kIo,            // any other errno (EEXIST, ENOTEMPTY, EIO, ...): reply as is
  };

  Status() = default;
  static Status Ok() { return Status(); }
  // From an errno value: picks the Kind from the errno.
  static Status FromErrno(int err, std::string context);
  static Status Corruption(std::string context) { return Status(Kind::kCorruption, EIO, std::move(context)); }
  static Status Invalid(std::string context) { return Status(Kind::kInvalid, EINVAL, std::move(context)); }
  static Status NotSupported(std::string context) { return Status(Kind::kNotSupported, ENOTSUP, std::move(context)); }
  static Status ReadOnly(std::string context) { return Status(Kind::kReadOnly, EROFS, std::move(context)); }
  static Status Stale(std::string context) { return Status(Kind::kStale, ESTALE, std::move(context)); }
  static Status Timeout(std::string context) { return Status(Kind::kTimeout, ETIMEDOUT, std::move(context)); }
  // err: the errno that best describes it (ECONNRESET, ECONNREFUSED, EAGAIN, ...).
  static Status Transient(int err, std::string context) { return Status(Kind::kTransient, err, std::move(context)); }
  static Status Fatal(int err, std::string context) { return Status(Kind::kFatal, err, std::move(context)); }

  bool ok() const { return kind_ == Kind::kOk; }
  Kind kind() const { return kind_; }
  int err() const { return err_; }
  const std::string& context() const { return context_; }
  // Worth trying again (by the retry policy): transient errors and time-outs.
  bool retryable() const { return kind_ == Kind::kTransient || kind_ == Kind::kTimeout; }
  std::string ToString() const;

 private:
  Status(Kind kind, int err, std::string context) : kind_(kind), err_(err), context_(std::move(context)) {}
  Kind kind_ = Kind::kOk;
  int err_ = 0;
  std::string context_;
};

const char* KindName(Status::Kind kind);

// Status of the last failed libc call, with context.
inline Status ErrnoStatus(std::string context) {
  return Status::FromErrno(errno, std::move(context));
}

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  int err() const { return ok() ? 0 : std::get<Status>(v_).err(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cachefuse
