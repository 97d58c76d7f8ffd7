// Errors as values: Status (errno + context) and Result<T>, turned into errno only in daemon/.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cachefuse {

// Errors carry an errno (what the FUSE layer replies) and a short context
// string (what the log says). Kind classifies them for retry policy.
class Status {
 public:
  enum class Kind { kOk, kNotFound, kPermission, kNotSupported, kTransient, kCorruption, kIo, kInvalid };

  Status() = default;
  static Status Ok() { return Status(); }
  // From an errno value: picks the Kind from the errno.
  static Status FromErrno(int err, std::string context);
  static Status Corruption(std::string context) { return Status(Kind::kCorruption, EIO, std::move(context)); }
  static Status Invalid(std::string context) { return Status(Kind::kInvalid, EINVAL, std::move(context)); }
  static Status NotSupported(std::string context) { return Status(Kind::kNotSupported, ENOTSUP, std::move(context)); }

  bool ok() const { return kind_ == Kind::kOk; }
  Kind kind() const { return kind_; }
  int err() const { return err_; }
  const std::string& context() const { return context_; }
  std::string ToString() const;

 private:
  Status(Kind kind, int err, std::string context) : kind_(kind), err_(err), context_(std::move(context)) {}
  Kind kind_ = Kind::kOk;
  int err_ = 0;
  std::string context_;
};

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

 private:
  std::variant<T, Status> v_;
};

}  // namespace cachefuse
