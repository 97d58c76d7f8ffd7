// FuseErrno: the errno each kind of error reaches the FUSE edge with.
#include "daemon/fuse_errno.h"

#include <catch2/catch.hpp>

namespace cachefuse::daemon {

TEST_CASE("every error kind reaches the FUSE edge as its errno", "[fuse_errno]") {
  CHECK(FuseErrno(Status::Ok()) == 0);
  CHECK(FuseErrno(Status::FromErrno(ENOENT, "x")) == ENOENT);
  CHECK(FuseErrno(Status::FromErrno(ENOTDIR, "x")) == ENOTDIR);
  CHECK(FuseErrno(Status::FromErrno(EACCES, "x")) == EACCES);
  CHECK(FuseErrno(Status::FromErrno(EPERM, "x")) == EPERM);
  CHECK(FuseErrno(Status::NotSupported("x")) == ENOTSUP);
  CHECK(FuseErrno(Status::FromErrno(ENOSYS, "x")) == ENOSYS);
  CHECK(FuseErrno(Status::ReadOnly("x")) == EROFS);
  CHECK(FuseErrno(Status::FromErrno(EROFS, "x")) == EROFS);
  // The source changed under an open file.
  CHECK(FuseErrno(Status::Stale("x")) == ESTALE);
  // Network trouble that outlived the retry budget: the reader gets EIO.
  CHECK(FuseErrno(Status::Transient(ECONNRESET, "x")) == EIO);
  CHECK(FuseErrno(Status::FromErrno(ECONNREFUSED, "x")) == EIO);
  CHECK(FuseErrno(Status::Timeout("x")) == EIO);
  CHECK(FuseErrno(Status::FromErrno(ETIMEDOUT, "x")) == EIO);
  CHECK(FuseErrno(Status::Fatal(EACCES, "bad credentials")) == EIO);
  CHECK(FuseErrno(Status::Corruption("x")) == EIO);
  CHECK(FuseErrno(Status::Invalid("x")) == EINVAL);
  // Plain POSIX answers pass through unchanged (the parity suite relies on them).
  CHECK(FuseErrno(Status::FromErrno(EEXIST, "x")) == EEXIST);
  CHECK(FuseErrno(Status::FromErrno(ENOTEMPTY, "x")) == ENOTEMPTY);
  CHECK(FuseErrno(Status::FromErrno(EISDIR, "x")) == EISDIR);
  CHECK(FuseErrno(Status::FromErrno(ENAMETOOLONG, "x")) == ENAMETOOLONG);
  CHECK(FuseErrno(Status::FromErrno(EXDEV, "x")) == EXDEV);
}

TEST_CASE("the kind of a Status decides, not only its errno", "[fuse_errno]") {
  // A transient failure described with EACCES is still a transient failure.
  CHECK(FuseErrno(Status::Transient(EACCES, "x")) == EIO);
  // A stale read described by a source with EIO is still ESTALE.
  CHECK(Status::Stale("x").kind() == Status::Kind::kStale);
}

}  // namespace cachefuse::daemon
