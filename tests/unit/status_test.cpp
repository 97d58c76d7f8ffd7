// Tests for common/status: errno classification, retryable kinds, kind names, formatting.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

using cachefuse::Result;
using cachefuse::Status;
using Kind = cachefuse::Status::Kind;

TEST_CASE("Status::FromErrno picks the kind from the errno") {
  const std::vector<std::pair<int, Kind>> table = {
      {ENOENT, Kind::kNotFound},
      {ENOTDIR, Kind::kNotFound},
      {EACCES, Kind::kPermission},
      {EPERM, Kind::kPermission},
      {EROFS, Kind::kReadOnly},
      {ENOTSUP, Kind::kNotSupported},
      {EOPNOTSUPP, Kind::kNotSupported},
      {ENOSYS, Kind::kNotSupported},
      {EAGAIN, Kind::kTransient},
      {EINTR, Kind::kTransient},
      {ECONNRESET, Kind::kTransient},
      {ECONNREFUSED, Kind::kTransient},
      {ECONNABORTED, Kind::kTransient},
      {EPIPE, Kind::kTransient},
      {EHOSTUNREACH, Kind::kTransient},
      {ENETUNREACH, Kind::kTransient},
      {ENETDOWN, Kind::kTransient},
      {ETIMEDOUT, Kind::kTimeout},
      {ESTALE, Kind::kStale},
      {EINVAL, Kind::kInvalid},
      {EEXIST, Kind::kIo},
      {ENOTEMPTY, Kind::kIo},
      {EIO, Kind::kIo},
      {EISDIR, Kind::kIo},
      {ENOSPC, Kind::kIo},
      {ENODATA, Kind::kIo},
      {EXDEV, Kind::kIo},
  };
  for (const auto& [err, kind] : table) {
    INFO(std::strerror(err));
    Status s = Status::FromErrno(err, "ctx");
    CHECK(s.kind() == kind);
    CHECK(s.err() == err);  // the detail is kept as is
    CHECK(s.context() == "ctx");
    CHECK_FALSE(s.ok());
  }
  // errno 0 is success.
  Status zero = Status::FromErrno(0, "nothing");
  CHECK(zero.ok());
  CHECK(zero.err() == 0);
}

TEST_CASE("Status factories: kind and errno") {
  const std::vector<std::pair<Status, std::pair<Kind, int>>> table = {
      {Status::Corruption("c"), {Kind::kCorruption, EIO}},
      {Status::Invalid("i"), {Kind::kInvalid, EINVAL}},
      {Status::NotSupported("n"), {Kind::kNotSupported, ENOTSUP}},
      {Status::ReadOnly("r"), {Kind::kReadOnly, EROFS}},
      {Status::Stale("s"), {Kind::kStale, ESTALE}},
      {Status::Timeout("t"), {Kind::kTimeout, ETIMEDOUT}},
      {Status::Transient(ECONNREFUSED, "t"), {Kind::kTransient, ECONNREFUSED}},
      {Status::Fatal(EPROTO, "f"), {Kind::kFatal, EPROTO}},
  };
  for (const auto& [s, expect] : table) {
    INFO(s.ToString());
    CHECK(s.kind() == expect.first);
    CHECK(s.err() == expect.second);
  }
  CHECK(Status::Ok().ok());
  CHECK(Status().kind() == Kind::kOk);
}

TEST_CASE("Status::retryable: transient errors and time-outs only") {
  CHECK(Status::Transient(ECONNRESET, "x").retryable());
  CHECK(Status::Timeout("x").retryable());
  CHECK(Status::FromErrno(EAGAIN, "x").retryable());
  CHECK(Status::FromErrno(ETIMEDOUT, "x").retryable());
  for (const Status& s :
       {Status::Ok(), Status::FromErrno(ENOENT, "x"), Status::FromErrno(EACCES, "x"), Status::NotSupported("x"),
        Status::ReadOnly("x"), Status::Stale("x"), Status::Fatal(EPROTO, "x"), Status::Corruption("x"),
        Status::Invalid("x"), Status::FromErrno(EIO, "x"), Status::FromErrno(EEXIST, "x")}) {
    INFO(KindName(s.kind()));
    CHECK_FALSE(s.retryable());
  }
}

TEST_CASE("KindName names every kind, each differently") {
  std::set<std::string> names;
  const Kind kinds[] = {Kind::kOk,       Kind::kNotFound,   Kind::kPermission, Kind::kNotSupported,
                        Kind::kReadOnly, Kind::kTransient,  Kind::kTimeout,    Kind::kStale,
                        Kind::kFatal,    Kind::kCorruption, Kind::kInvalid,    Kind::kIo};
  for (Kind k : kinds) {
    const std::string name = KindName(k);
    CHECK(name != "?");
    CHECK_FALSE(name.empty());
    names.insert(name);
  }
  CHECK(names.size() == std::size(kinds));
  CHECK(std::string(KindName(Kind::kNotFound)) == "not-found");
  CHECK(std::string(KindName(Kind::kTransient)) == "transient");
  CHECK(std::string(KindName(Kind::kStale)) == "stale");
}

TEST_CASE("Status::ToString: context and the errno's text") {
  CHECK(Status::Ok().ToString() == "ok");
  CHECK(Status::FromErrno(ENOENT, "cannot open source '/x'").ToString() ==
        "cannot open source '/x': No such file or directory");
  CHECK(Status::FromErrno(EIO, "").ToString() == std::strerror(EIO));
  errno = EACCES;
  Status e = cachefuse::ErrnoStatus("open f");
  CHECK(e.kind() == Kind::kPermission);
  CHECK(e.ToString() == std::string("open f: ") + std::strerror(EACCES));
}

TEST_CASE("Result holds a value or a status") {
  Result<int> good = 42;
  REQUIRE(good.ok());
  CHECK(*good == 42);
  CHECK(good.err() == 0);
  CHECK(good.status().ok());
  Result<int> bad = Status::Stale("gone");
  CHECK_FALSE(bad.ok());
  CHECK(bad.err() == ESTALE);
  CHECK(bad.status().kind() == Kind::kStale);
}
