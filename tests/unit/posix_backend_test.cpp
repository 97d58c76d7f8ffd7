// Tests for netfs_backends/posix/posix_backend and netfs_backends/backend.cpp.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "netfs_backends/backend.h"
#include "netfs_backends/posix/posix_backend.h"
#include "test_util.h"

using cachefuse::Status;
using cachefuse::netfs::Attr;
using cachefuse::netfs::Backend;
using cachefuse::netfs::Handle;
using cachefuse::netfs::IsCleanRelativePath;
using cachefuse::netfs::JoinPath;
using cachefuse::netfs::OpenBackend;
using cachefuse::netfs::PosixBackend;
using cachefuse::netfs::SetAttr;
using cachefuse::test::RandomBytes;
using cachefuse::test::ReadFile;
using cachefuse::test::TempDir;
using cachefuse::test::WriteFile;
using Catch::Matchers::Contains;

namespace {

// A source tree in a scratch directory, with a sibling directory outside it.
struct Fixture {
  TempDir tmp;
  std::string src = tmp / "src";
  std::string outside = tmp / "outside";
  std::unique_ptr<PosixBackend> be;

  Fixture() {
    REQUIRE(::mkdir(src.c_str(), 0755) == 0);
    REQUIRE(::mkdir(outside.c_str(), 0755) == 0);
    auto r = PosixBackend::Open(src);
    REQUIRE(r.ok());
    be = std::move(r.value());
  }
  std::string In(const std::string& rel) const { return src + "/" + rel; }
};

// An open handle, closed at scope exit.
struct ScopedHandle {
  Backend* be;
  Handle h;
  ~ScopedHandle() { be->close(h); }
};

std::string ReadAt(Backend& be, Handle h, uint64_t off, size_t n) {
  std::string buf(n, '\0');
  auto r = be.read_buf(h, off, std::span<char>(buf.data(), buf.size()));
  REQUIRE(r.ok());
  buf.resize(*r);
  return buf;
}

bool XattrsSupported(const std::string& path) {
  if (::setxattr(path.c_str(), "user.cachefuse.probe", "1", 1, 0) == 0) {
    ::removexattr(path.c_str(), "user.cachefuse.probe");
    return true;
  }
  return false;
}

// Waits until the kernel's coarse clock has moved past t, so that the next
// change of a file gets a later timestamp than t. Waits for a condition, not for a time.
void WaitForClockPast(const struct timespec& t) {
  for (int i = 0; i < 100000; ++i) {
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec > t.tv_sec || (now.tv_sec == t.tv_sec && now.tv_nsec > t.tv_nsec)) return;
    struct timespec nap {
      0, 1000000
    };
    ::nanosleep(&nap, nullptr);
  }
  FAIL("the clock did not move");
}

std::vector<std::string> Names(const std::vector<cachefuse::netfs::DirEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

// ---------------------------------------------------------------------------
// backend.cpp

TEST_CASE("IsCleanRelativePath") {
  for (const char* p : {"", "a", "a/b", "a/b/c", ".a", "a.", "...", "a/.b", "a b/c d", "a\\b", "-"}) {
    INFO("'" << p << "'");
    CHECK(IsCleanRelativePath(p));
  }
  for (const char* p :
       {"/", "/a", "a/", "a//b", "//", ".", "..", "a/../b", "./a", "a/.", "a/..", "../a", "a/./b", "/a/b", "a/b/"}) {
    INFO("'" << p << "'");
    CHECK_FALSE(IsCleanRelativePath(p));
  }
  CHECK_FALSE(IsCleanRelativePath(std::string("a\0b", 3)));
  CHECK_FALSE(IsCleanRelativePath(std::string("\0", 1)));
}

TEST_CASE("JoinPath") {
  CHECK(JoinPath("", "a") == "a");
  CHECK(JoinPath("a", "b") == "a/b");
  CHECK(JoinPath("a/b", "c") == "a/b/c");
}

TEST_CASE("OpenBackend rejects network schemes and unknown schemes with a clear message") {
  for (const std::string scheme : {"http://", "https://", "nfs://", "smb://"}) {
    auto r = OpenBackend(scheme + "server/share");
    INFO(scheme);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().kind() == Status::Kind::kNotSupported);
    CHECK(r.err() == ENOTSUP);
    CHECK_THAT(r.status().context(), Contains(scheme) && Contains("not supported"));
  }
  for (const std::string source : {"ftp://host/x", "file:///srv", "gopher://x", "HTTP://upper/case"}) {
    auto r = OpenBackend(source);
    INFO(source);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err() == EINVAL);
    CHECK_THAT(r.status().context(), Contains("unknown source scheme") && Contains(source));
  }
}

TEST_CASE("OpenBackend opens a local path as a posix source") {
  TempDir tmp;
  auto r = OpenBackend(tmp.path());
  REQUIRE(r.ok());
  char real[PATH_MAX];
  REQUIRE(::realpath(tmp.path().c_str(), real));
  CHECK((*r)->describe() == std::string("posix:") + real);

  auto missing = OpenBackend(tmp / "missing");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.err() == ENOENT);
  CHECK_THAT(missing.status().context(), Contains(tmp / "missing"));
}

// ---------------------------------------------------------------------------
// PosixBackend::Open

TEST_CASE("PosixBackend::Open checks the root") {
  TempDir tmp;
  auto missing = PosixBackend::Open(tmp / "nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.err() == ENOENT);
  CHECK_THAT(missing.status().context(), Contains(tmp / "nope"));

  WriteFile(tmp / "file", "x");
  auto file = PosixBackend::Open(tmp / "file");
  REQUIRE_FALSE(file.ok());
  CHECK(file.err() == ENOTDIR);
  CHECK_THAT(file.status().context(), Contains("not a directory"));

  // A path with a symlink and a trailing slash is canonicalized for describe().
  REQUIRE(::mkdir((tmp / "real").c_str(), 0755) == 0);
  REQUIRE(::symlink("real", (tmp / "alias").c_str()) == 0);
  auto via = PosixBackend::Open(tmp / "alias/");
  REQUIRE(via.ok());
  char real[PATH_MAX];
  REQUIRE(::realpath((tmp / "real").c_str(), real));
  CHECK((*via)->describe() == std::string("posix:") + real);

  auto caps = (*via)->capabilities();
  CHECK(caps.writable);
  CHECK(caps.hard_links);
  CHECK(caps.symlinks);
  CHECK(caps.xattrs);
  CHECK(caps.rename_noreplace);
  CHECK(caps.rename_exchange);
  CHECK(caps.special_files);
  struct statvfs vfs {};
  REQUIRE(::statvfs((tmp / "real").c_str(), &vfs) == 0);
  CHECK(caps.max_name == vfs.f_namemax);
}

// ---------------------------------------------------------------------------
// Path checks on every call

TEST_CASE("PosixBackend: every call rejects unclean paths with EINVAL") {
  Fixture f;
  WriteFile(f.In("file"), "data");
  WriteFile(f.outside + "/victim", "keep");
  // Paths that would leave the root or are not canonical. The relative ones
  // point at the outside directory, so an accepted one would do harm.
  const std::vector<std::string> bad = {
      "../outside/victim",     "../outside/new", "/etc/passwd", "file/", "./file", ".", "..", "a//b",
      std::string("fi\0le", 5)};
  const std::string good = "file";
  for (const auto& p : bad) {
    INFO("path '" << p << "'");
    auto expect_einval = [](int err) { CHECK(err == EINVAL); };
    expect_einval(f.be->stat(p).err());
    expect_einval(f.be->list(p).err());
    expect_einval(f.be->open(p, O_RDONLY).err());
    expect_einval(f.be->create(p, O_RDWR, 0644).err());
    SetAttr ch;
    ch.size = 0;
    expect_einval(f.be->setattr(p, ch, std::nullopt).err());
    expect_einval(f.be->mkdir(p, 0755).err());
    expect_einval(f.be->mknod(p, S_IFIFO | 0644, 0).err());
    expect_einval(f.be->symlink("target", p).err());
    expect_einval(f.be->readlink(p).err());
    expect_einval(f.be->unlink(p).err());
    expect_einval(f.be->rmdir(p).err());
    expect_einval(f.be->rename(p, "x", 0).err());
    expect_einval(f.be->rename(good, p, 0).err());
    expect_einval(f.be->link(p, "x").err());
    expect_einval(f.be->link(good, p).err());
    expect_einval(f.be->statfs(p).err());
    expect_einval(f.be->access(p, F_OK).err());
    expect_einval(f.be->getxattr(p, "user.x").err());
    expect_einval(f.be->listxattr(p).err());
    expect_einval(f.be->setxattr(p, "user.x", "v", 0).err());
    expect_einval(f.be->removexattr(p, "user.x").err());
    CHECK(f.be->stat(p).status().kind() == Status::Kind::kInvalid);
  }
  // Nothing happened: the outside file is intact, nothing new appeared, the source file is still there.
  CHECK(ReadFile(f.outside + "/victim") == "keep");
  CHECK_FALSE(std::filesystem::exists(f.outside + "/new"));
  CHECK(ReadFile(f.In("file")) == "data");
  CHECK_FALSE(std::filesystem::exists(f.In("x")));
}

// ---------------------------------------------------------------------------
// Reading

TEST_CASE("PosixBackend::stat") {
  Fixture f;
  WriteFile(f.In("file"), "hello");
  REQUIRE(::mkdir(f.In("dir").c_str(), 0750) == 0);
  REQUIRE(::symlink("file", f.In("link").c_str()) == 0);

  auto root = f.be->stat("");
  REQUIRE(root.ok());
  CHECK(S_ISDIR(root->st.st_mode));

  auto file = f.be->stat("file");
  REQUIRE(file.ok());
  CHECK(S_ISREG(file->st.st_mode));
  CHECK(file->st.st_size == 5);
  CHECK(file->identity == "i" + std::to_string(file->st.st_ino));
  CHECK(file->coherency.bytes.size() == 32);

  auto dir = f.be->stat("dir");
  REQUIRE(dir.ok());
  CHECK(S_ISDIR(dir->st.st_mode));
  CHECK((dir->st.st_mode & 07777) == 0750);

  // The final symlink is not followed.
  auto link = f.be->stat("link");
  REQUIRE(link.ok());
  CHECK(S_ISLNK(link->st.st_mode));
  CHECK(link->identity != file->identity);

  auto missing = f.be->stat("missing");
  CHECK(missing.err() == ENOENT);
  CHECK(missing.status().kind() == Status::Kind::kNotFound);
  CHECK(f.be->stat("file/below").err() == ENOTDIR);
}

TEST_CASE("PosixBackend::MakeAttr: coherency token layout and identity") {
  Fixture f;
  auto root = f.be->stat("");
  REQUIRE(root.ok());
  struct stat st {};
  st.st_dev = root->st.st_dev;
  st.st_ino = 0x1122;
  st.st_size = 0x0102030405;
  st.st_mtim = {1, 2};
  st.st_ctim = {3, 4};
  Attr a = f.be->MakeAttr(st);
  auto le64 = [](uint64_t v) {
    std::string s;
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return s;
  };
  // mtime ns, ctime ns, size, inode: 8 bytes each, little-endian.
  CHECK(a.coherency.bytes == le64(1000000002) + le64(3000000004) + le64(0x0102030405) + le64(0x1122));
  CHECK(a.identity == "i4386");
  CHECK(a.st.st_ino == 0x1122);

  // Below a nested mount (another device) the device is part of the identity.
  st.st_dev = root->st.st_dev + 1;
  CHECK(f.be->MakeAttr(st).identity == "d" + std::to_string(st.st_dev) + ":i4386");

  // Each field changes the token.
  struct stat base = st;
  const std::string t0 = f.be->MakeAttr(base).coherency.bytes;
  st = base;
  st.st_mtim.tv_nsec += 1;
  CHECK(f.be->MakeAttr(st).coherency.bytes != t0);
  st = base;
  st.st_ctim.tv_nsec += 1;
  CHECK(f.be->MakeAttr(st).coherency.bytes != t0);
  st = base;
  st.st_size += 1;
  CHECK(f.be->MakeAttr(st).coherency.bytes != t0);
  st = base;
  st.st_ino += 1;
  CHECK(f.be->MakeAttr(st).coherency.bytes != t0);
  // But not the access time.
  st = base;
  st.st_atim.tv_sec += 100;
  CHECK(f.be->MakeAttr(st).coherency.bytes == t0);
}

TEST_CASE("PosixBackend::list") {
  Fixture f;
  WriteFile(f.In("a"), "1");
  WriteFile(f.In("bb"), "22");
  REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);
  WriteFile(f.In("d/inner"), "333");
  REQUIRE(::symlink("a", f.In("ln").c_str()) == 0);

  auto root = f.be->list("");
  REQUIRE(root.ok());
  CHECK(Names(*root) == std::vector<std::string>{"a", "bb", "d", "ln"});
  for (const auto& e : *root) {
    auto st = f.be->stat(e.name);
    REQUIRE(st.ok());
    INFO(e.name);
    CHECK(e.attr.identity == st->identity);
    CHECK(e.attr.st.st_mode == st->st.st_mode);
    CHECK(e.attr.st.st_size == st->st.st_size);
    CHECK(e.attr.coherency == st->coherency);
  }

  auto sub = f.be->list("d");
  REQUIRE(sub.ok());
  REQUIRE(sub->size() == 1);
  CHECK((*sub)[0].name == "inner");
  CHECK((*sub)[0].attr.st.st_size == 3);

  REQUIRE(::mkdir(f.In("empty").c_str(), 0755) == 0);
  auto empty = f.be->list("empty");
  REQUIRE(empty.ok());
  CHECK(empty->empty());

  CHECK(f.be->list("missing").err() == ENOENT);
  CHECK(f.be->list("a").err() == ENOTDIR);
  // A symlink to a directory is not listed through.
  REQUIRE(::symlink("d", f.In("dlink").c_str()) == 0);
  CHECK_FALSE(f.be->list("dlink").ok());
}

TEST_CASE("PosixBackend::open and read_range") {
  Fixture f;
  const std::string data = RandomBytes(10000, 1);
  WriteFile(f.In("file"), data);

  auto h = f.be->open("file", O_RDONLY);
  REQUIRE(h.ok());
  ScopedHandle guard{f.be.get(), *h};

  CHECK(ReadAt(*f.be, *h, 0, 100) == data.substr(0, 100));
  CHECK(ReadAt(*f.be, *h, 5000, 1234) == data.substr(5000, 1234));
  // A read across the end is short; at and past the end it is empty.
  CHECK(ReadAt(*f.be, *h, 9990, 100) == data.substr(9990));
  CHECK(ReadAt(*f.be, *h, 10000, 100).empty());
  CHECK(ReadAt(*f.be, *h, 1ULL << 40, 100).empty());

  SECTION("vectored: the buffers are filled in order across their boundaries") {
    std::string b1(3, '\0'), b2(1000, '\0'), b3(7, '\0');
    struct iovec iov[3] = {{b1.data(), b1.size()}, {b2.data(), b2.size()}, {b3.data(), b3.size()}};
    auto n = f.be->read_range(*h, 4321, std::span<const struct iovec>(iov, 3));
    REQUIRE(n.ok());
    CHECK(*n == 1010);
    CHECK(b1 + b2 + b3 == data.substr(4321, 1010));
  }
  SECTION("vectored, ending inside the second buffer") {
    std::string b1(4, '\0'), b2(100, 'x'), b3(10, 'y');
    struct iovec iov[3] = {{b1.data(), b1.size()}, {b2.data(), b2.size()}, {b3.data(), b3.size()}};
    auto n = f.be->read_range(*h, 9950, std::span<const struct iovec>(iov, 3));
    REQUIRE(n.ok());
    CHECK(*n == 50);
    CHECK(b1 == data.substr(9950, 4));
    CHECK(b2.substr(0, 46) == data.substr(9954, 46));
    CHECK(b2.substr(46) == std::string(54, 'x'));  // untouched
    CHECK(b3 == std::string(10, 'y'));
  }
  SECTION("fstat through the handle") {
    auto a = f.be->fstat(*h);
    REQUIRE(a.ok());
    auto s = f.be->stat("file");
    REQUIRE(s.ok());
    CHECK(a->st.st_size == 10000);
    CHECK(a->identity == s->identity);
    CHECK(a->coherency == s->coherency);
  }
}

TEST_CASE("PosixBackend::open errors") {
  Fixture f;
  WriteFile(f.In("file"), "x");
  REQUIRE(::symlink("file", f.In("link").c_str()) == 0);
  CHECK(f.be->open("missing", O_RDONLY).err() == ENOENT);
  // A final symlink is not followed.
  CHECK(f.be->open("link", O_RDONLY).err() == ELOOP);
  // O_CREAT is not honoured by open (create is the call for that).
  CHECK(f.be->open("new", O_RDWR | O_CREAT).err() == ENOENT);
  CHECK_FALSE(std::filesystem::exists(f.In("new")));
}

TEST_CASE("PosixBackend: a symlink in the middle of a path cannot lead outside the root") {
  Fixture f;
  WriteFile(f.outside + "/secret", "top secret");
  REQUIRE(::symlink(f.outside.c_str(), f.In("abs").c_str()) == 0);
  REQUIRE(::symlink("../outside", f.In("rel").c_str()) == 0);
  REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);
  REQUIRE(::symlink("../../outside", f.In("d/up").c_str()) == 0);

  for (const std::string p : {"abs/secret", "rel/secret", "d/up/secret"}) {
    INFO(p);
    auto h = f.be->open(p, O_RDONLY);
    CHECK_FALSE(h.ok());
    if (h.ok()) f.be->close(*h);
    auto w = f.be->open(p, O_WRONLY | O_TRUNC);
    CHECK_FALSE(w.ok());
    if (w.ok()) f.be->close(*w);
  }
  for (const std::string p : {"abs/created", "rel/created", "d/up/created"}) {
    INFO(p);
    auto h = f.be->create(p, O_RDWR, 0644);
    CHECK_FALSE(h.ok());
    if (h.ok()) f.be->close(*h);
  }
  CHECK(ReadFile(f.outside + "/secret") == "top secret");
  CHECK_FALSE(std::filesystem::exists(f.outside + "/created"));
}

// ---------------------------------------------------------------------------
// Writing

TEST_CASE("PosixBackend::create") {
  Fixture f;
  const mode_t mask = ::umask(0);
  ::umask(mask);
  auto h = f.be->create("new", O_RDWR, 0640);
  REQUIRE(h.ok());
  ScopedHandle guard{f.be.get(), *h};
  auto st = f.be->stat("new");
  REQUIRE(st.ok());
  CHECK(S_ISREG(st->st.st_mode));
  CHECK((st->st.st_mode & 0777) == (0640 & ~mask));
  CHECK(st->st.st_size == 0);

  // O_EXCL on an existing file.
  CHECK(f.be->create("new", O_RDWR | O_EXCL, 0644).err() == EEXIST);
  // Without O_EXCL an existing file is opened.
  auto again = f.be->create("new", O_RDWR, 0644);
  REQUIRE(again.ok());
  f.be->close(*again);
  // The root cannot be created.
  CHECK(f.be->create("", O_RDWR, 0644).err() == EEXIST);
  // Nor something below a missing directory.
  CHECK(f.be->create("nodir/x", O_RDWR, 0644).err() == ENOENT);
  // A symlink as the final component is not followed.
  WriteFile(f.outside + "/target", "t");
  REQUIRE(::symlink((f.outside + "/target").c_str(), f.In("ln").c_str()) == 0);
  CHECK_FALSE(f.be->create("ln", O_RDWR | O_TRUNC, 0644).ok());
  CHECK(ReadFile(f.outside + "/target") == "t");
}

TEST_CASE("PosixBackend::write") {
  Fixture f;
  auto h = f.be->create("w", O_RDWR, 0644);
  REQUIRE(h.ok());
  ScopedHandle guard{f.be.get(), *h};

  const std::string a = "hello world";
  auto n = f.be->write(*h, 0, std::span<const char>(a.data(), a.size()));
  REQUIRE(n.ok());
  CHECK(*n == a.size());
  const std::string b = "WORLD";
  n = f.be->write(*h, 6, std::span<const char>(b.data(), b.size()));
  REQUIRE(n.ok());
  CHECK(*n == 5);
  CHECK(ReadFile(f.In("w")) == "hello WORLD");

  // Beyond the end: a hole of zeros in between.
  n = f.be->write(*h, 20, std::span<const char>(b.data(), b.size()));
  REQUIRE(n.ok());
  CHECK(ReadFile(f.In("w")) == "hello WORLD" + std::string(9, '\0') + "WORLD");

  // A large write goes through whole.
  const std::string big = RandomBytes(3 << 20, 2);
  n = f.be->write(*h, 0, std::span<const char>(big.data(), big.size()));
  REQUIRE(n.ok());
  CHECK(*n == big.size());
  CHECK(ReadFile(f.In("w")) == big);

  CHECK(f.be->fsync(*h, false).ok());
  CHECK(f.be->fsync(*h, true).ok());
  // The handle's attributes see the write.
  auto st = f.be->fstat(*h);
  REQUIRE(st.ok());
  CHECK(st->st.st_size == static_cast<off_t>(big.size()));

  // Writing through a read-only handle fails.
  auto ro = f.be->open("w", O_RDONLY);
  REQUIRE(ro.ok());
  ScopedHandle ro_guard{f.be.get(), *ro};
  CHECK(f.be->write(*ro, 0, std::span<const char>(a.data(), a.size())).err() == EBADF);
}

TEST_CASE("PosixBackend::open drops O_APPEND: bytes land at the given offset") {
  Fixture f;
  WriteFile(f.In("f"), "0123456789");
  auto h = f.be->open("f", O_WRONLY | O_APPEND);
  REQUIRE(h.ok());
  ScopedHandle guard{f.be.get(), *h};
  const std::string x = "ab";
  REQUIRE(f.be->write(*h, 2, std::span<const char>(x.data(), x.size())).ok());
  CHECK(ReadFile(f.In("f")) == "01ab456789");
}

TEST_CASE("PosixBackend::setattr") {
  Fixture f;
  WriteFile(f.In("f"), "0123456789");

  SECTION("mode by path and by handle") {
    SetAttr c;
    c.mode = 0600;
    auto a = f.be->setattr("f", c, std::nullopt);
    REQUIRE(a.ok());
    CHECK((a->st.st_mode & 07777) == 0600);
    CHECK(S_ISREG(a->st.st_mode));
    auto h = f.be->open("f", O_RDONLY);
    REQUIRE(h.ok());
    ScopedHandle guard{f.be.get(), *h};
    c.mode = 0741;
    a = f.be->setattr("f", c, *h);
    REQUIRE(a.ok());
    CHECK((a->st.st_mode & 07777) == 0741);
    struct stat st {};
    REQUIRE(::stat(f.In("f").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0741);
  }
  SECTION("size by path: shrink and grow") {
    SetAttr c;
    c.size = 4;
    auto a = f.be->setattr("f", c, std::nullopt);
    REQUIRE(a.ok());
    CHECK(a->st.st_size == 4);
    CHECK(ReadFile(f.In("f")) == "0123");
    c.size = 6;
    a = f.be->setattr("f", c, std::nullopt);
    REQUIRE(a.ok());
    CHECK(ReadFile(f.In("f")) == std::string("0123\0\0", 6));
  }
  SECTION("size by handle") {
    auto h = f.be->open("f", O_RDWR);
    REQUIRE(h.ok());
    ScopedHandle guard{f.be.get(), *h};
    SetAttr c;
    c.size = 3;
    auto a = f.be->setattr("f", c, *h);
    REQUIRE(a.ok());
    CHECK(a->st.st_size == 3);
    CHECK(ReadFile(f.In("f")) == "012");
  }
  SECTION("size of a directory fails") {
    REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);
    SetAttr c;
    c.size = 0;
    CHECK(f.be->setattr("d", c, std::nullopt).err() == EISDIR);
  }
  SECTION("times: set exactly, and omitted ones are kept") {
    SetAttr c;
    c.atime = timespec{1000000000, 123456789};
    c.mtime = timespec{1200000000, 987654321};
    auto a = f.be->setattr("f", c, std::nullopt);
    REQUIRE(a.ok());
    CHECK(a->st.st_atim.tv_sec == 1000000000);
    CHECK(a->st.st_atim.tv_nsec == 123456789);
    CHECK(a->st.st_mtim.tv_sec == 1200000000);
    CHECK(a->st.st_mtim.tv_nsec == 987654321);

    SetAttr only_m;
    only_m.mtime = timespec{1300000000, 5};
    a = f.be->setattr("f", only_m, std::nullopt);
    REQUIRE(a.ok());
    CHECK(a->st.st_atim.tv_sec == 1000000000);  // kept
    CHECK(a->st.st_mtim.tv_sec == 1300000000);
    CHECK(a->st.st_mtim.tv_nsec == 5);

    // By handle, with UTIME_NOW: the time moves to about now (well past 2001).
    auto h = f.be->open("f", O_RDWR);
    REQUIRE(h.ok());
    ScopedHandle guard{f.be.get(), *h};
    SetAttr now;
    now.mtime = timespec{0, UTIME_NOW};
    a = f.be->setattr("f", now, *h);
    REQUIRE(a.ok());
    CHECK(a->st.st_mtim.tv_sec > 1300000000);
    CHECK(a->st.st_atim.tv_sec == 1000000000);
  }
  SECTION("times of a symlink are its own") {
    WriteFile(f.In("target"), "t");
    REQUIRE(::symlink("target", f.In("ln").c_str()) == 0);
    SetAttr c;
    c.mtime = timespec{1100000000, 0};
    auto a = f.be->setattr("ln", c, std::nullopt);
    REQUIRE(a.ok());
    CHECK(S_ISLNK(a->st.st_mode));
    CHECK(a->st.st_mtim.tv_sec == 1100000000);
    auto t = f.be->stat("target");
    REQUIRE(t.ok());
    CHECK(t->st.st_mtim.tv_sec != 1100000000);
  }
  SECTION("owner (as root)") {
    if (::geteuid() != 0) {
      WARN("not root: chown is not checked");
      return;
    }
    SetAttr c;
    c.uid = 1234;
    auto a = f.be->setattr("f", c, std::nullopt);
    REQUIRE(a.ok());
    CHECK(a->st.st_uid == 1234);
    SetAttr g;
    g.gid = 5678;
    a = f.be->setattr("f", g, std::nullopt);
    REQUIRE(a.ok());
    CHECK(a->st.st_uid == 1234);  // unchanged
    CHECK(a->st.st_gid == 5678);
  }
  SECTION("nothing to change returns the attributes") {
    auto a = f.be->setattr("f", SetAttr{}, std::nullopt);
    REQUIRE(a.ok());
    CHECK(a->st.st_size == 10);
  }
  SECTION("a missing file") {
    SetAttr c;
    c.mode = 0644;
    CHECK(f.be->setattr("missing", c, std::nullopt).err() == ENOENT);
    SetAttr s;
    s.size = 1;
    CHECK(f.be->setattr("missing", s, std::nullopt).err() == ENOENT);
  }
}

// ---------------------------------------------------------------------------
// Namespace operations

TEST_CASE("PosixBackend::mkdir, mknod, symlink, readlink") {
  Fixture f;
  auto d = f.be->mkdir("dir", 0755);
  REQUIRE(d.ok());
  CHECK(S_ISDIR(d->st.st_mode));
  CHECK(std::filesystem::is_directory(f.In("dir")));
  CHECK(f.be->mkdir("dir", 0755).err() == EEXIST);
  CHECK(f.be->mkdir("nodir/sub", 0755).err() == ENOENT);
  auto sub = f.be->mkdir("dir/sub", 0700);
  REQUIRE(sub.ok());
  CHECK((sub->st.st_mode & 0777) == 0700);

  auto fifo = f.be->mknod("dir/fifo", S_IFIFO | 0644, 0);
  REQUIRE(fifo.ok());
  CHECK(S_ISFIFO(fifo->st.st_mode));
  struct stat st {};
  REQUIRE(::lstat(f.In("dir/fifo").c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(f.be->mknod("dir/fifo", S_IFIFO | 0644, 0).err() == EEXIST);

  auto ln = f.be->symlink("../some/where", "dir/ln");
  REQUIRE(ln.ok());
  CHECK(S_ISLNK(ln->st.st_mode));
  CHECK(ln->st.st_size == 13);
  auto target = f.be->readlink("dir/ln");
  REQUIRE(target.ok());
  CHECK(*target == "../some/where");
  // Symlink targets are contents, not paths the backend resolves: anything goes.
  auto abs = f.be->symlink("/etc/passwd", "abs");
  REQUIRE(abs.ok());
  CHECK(*f.be->readlink("abs") == "/etc/passwd");
  std::string long_target(4000, 'x');
  REQUIRE(f.be->symlink(long_target, "long").ok());
  CHECK(*f.be->readlink("long") == long_target);

  CHECK(f.be->symlink("x", "dir/ln").err() == EEXIST);
  CHECK(f.be->readlink("dir").err() == EINVAL);  // not a symlink
  CHECK(f.be->readlink("missing").err() == ENOENT);
}

TEST_CASE("PosixBackend::unlink and rmdir") {
  Fixture f;
  WriteFile(f.In("file"), "x");
  REQUIRE(::mkdir(f.In("dir").c_str(), 0755) == 0);
  REQUIRE(::mkdir(f.In("full").c_str(), 0755) == 0);
  WriteFile(f.In("full/x"), "x");
  REQUIRE(::symlink("dir", f.In("ln").c_str()) == 0);

  CHECK(f.be->unlink("dir").err() == EISDIR);
  CHECK(f.be->rmdir("file").err() == ENOTDIR);
  CHECK(f.be->rmdir("full").err() == ENOTEMPTY);
  CHECK(f.be->rmdir("ln").err() == ENOTDIR);  // the link, not its target
  CHECK(f.be->unlink("missing").err() == ENOENT);

  CHECK(f.be->unlink("file").ok());
  CHECK_FALSE(std::filesystem::exists(f.In("file")));
  CHECK(f.be->unlink("ln").ok());  // removes the link only
  CHECK(std::filesystem::is_directory(f.In("dir")));
  CHECK(f.be->rmdir("dir").ok());
  CHECK_FALSE(std::filesystem::exists(f.In("dir")));
  CHECK(f.be->stat("dir").err() == ENOENT);
}

TEST_CASE("PosixBackend::rename") {
  Fixture f;
  WriteFile(f.In("a"), "A");
  WriteFile(f.In("b"), "B");
  REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);

  SECTION("to a new name in another directory") {
    auto before = f.be->stat("a");
    REQUIRE(before.ok());
    CHECK(f.be->rename("a", "d/a2", 0).ok());
    CHECK_FALSE(std::filesystem::exists(f.In("a")));
    CHECK(ReadFile(f.In("d/a2")) == "A");
    auto after = f.be->stat("d/a2");
    REQUIRE(after.ok());
    CHECK(after->identity == before->identity);  // same file, new name
  }
  SECTION("over an existing file") {
    CHECK(f.be->rename("a", "b", 0).ok());
    CHECK(ReadFile(f.In("b")) == "A");
    CHECK_FALSE(std::filesystem::exists(f.In("a")));
  }
  SECTION("RENAME_NOREPLACE refuses an existing target") {
    auto st = f.be->rename("a", "b", RENAME_NOREPLACE);
    CHECK(st.err() == EEXIST);
    CHECK(ReadFile(f.In("a")) == "A");
    CHECK(ReadFile(f.In("b")) == "B");
    CHECK(f.be->rename("a", "c", RENAME_NOREPLACE).ok());
    CHECK(ReadFile(f.In("c")) == "A");
  }
  SECTION("RENAME_EXCHANGE swaps") {
    CHECK(f.be->rename("a", "b", RENAME_EXCHANGE).ok());
    CHECK(ReadFile(f.In("a")) == "B");
    CHECK(ReadFile(f.In("b")) == "A");
    CHECK(f.be->rename("a", "missing", RENAME_EXCHANGE).err() == ENOENT);
  }
  SECTION("errors") {
    CHECK(f.be->rename("missing", "x", 0).err() == ENOENT);
    CHECK(f.be->rename("a", "d", 0).err() == EISDIR);
    CHECK(f.be->rename("d", "d/sub", 0).err() == EINVAL);  // into itself
    CHECK(f.be->rename("", "x", 0).ok() == false);         // the root stays
  }
}

TEST_CASE("PosixBackend::link: hard links share an identity") {
  Fixture f;
  WriteFile(f.In("a"), "shared");
  REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);
  auto a = f.be->stat("a");
  REQUIRE(a.ok());
  auto l = f.be->link("a", "d/b");
  REQUIRE(l.ok());
  CHECK(l->identity == a->identity);
  CHECK(l->st.st_nlink == 2);
  auto b = f.be->stat("d/b");
  REQUIRE(b.ok());
  CHECK(b->identity == a->identity);
  // A different file has a different identity.
  WriteFile(f.In("c"), "shared");
  CHECK(f.be->stat("c")->identity != a->identity);
  // Removing one name leaves the other.
  CHECK(f.be->unlink("a").ok());
  CHECK(ReadFile(f.In("d/b")) == "shared");
  CHECK(f.be->stat("d/b")->st.st_nlink == 1);

  CHECK(f.be->link("missing", "x").err() == ENOENT);
  CHECK(f.be->link("d/b", "c").err() == EEXIST);
  CHECK(f.be->link("d", "d2").err() == EPERM);  // no hard links to directories
}

TEST_CASE("PosixBackend::statfs and access") {
  Fixture f;
  auto s = f.be->statfs("");
  REQUIRE(s.ok());
  struct statvfs expect {};
  REQUIRE(::statvfs(f.src.c_str(), &expect) == 0);
  CHECK(s->f_bsize == expect.f_bsize);
  CHECK(s->f_blocks == expect.f_blocks);
  CHECK(s->f_namemax == expect.f_namemax);
  CHECK(f.be->capabilities().max_name == expect.f_namemax);

  WriteFile(f.In("f"), "x");
  CHECK(f.be->access("f", F_OK).ok());
  CHECK(f.be->access("f", R_OK | W_OK).ok());
  CHECK(f.be->access("missing", F_OK).err() == ENOENT);
  REQUIRE(::chmod(f.In("f").c_str(), 0644) == 0);
  CHECK(f.be->access("f", X_OK).err() == EACCES);  // no x bit: refused even for root
}

TEST_CASE("PosixBackend xattrs") {
  Fixture f;
  WriteFile(f.In("f"), "x");
  if (!XattrsSupported(f.In("f"))) {
    WARN("user xattrs not supported on " << f.src << "; not checked");
    return;
  }
  CHECK(f.be->getxattr("f", "user.a").err() == ENODATA);
  CHECK(f.be->setxattr("f", "user.a", "value one", 0).ok());
  const std::string binary("\0\x01\xFF", 3);
  CHECK(f.be->setxattr("f", "user.b", binary, 0).ok());
  CHECK(f.be->setxattr("f", "user.empty", "", 0).ok());

  auto a = f.be->getxattr("f", "user.a");
  REQUIRE(a.ok());
  CHECK(*a == "value one");
  CHECK(*f.be->getxattr("f", "user.b") == binary);
  auto empty = f.be->getxattr("f", "user.empty");
  REQUIRE(empty.ok());
  CHECK(empty->empty());

  auto names = f.be->listxattr("f");
  REQUIRE(names.ok());
  std::set<std::string> got(names->begin(), names->end());
  CHECK(got.count("user.a") == 1);
  CHECK(got.count("user.b") == 1);
  CHECK(got.count("user.empty") == 1);

  CHECK(f.be->setxattr("f", "user.a", "x", XATTR_CREATE).err() == EEXIST);
  CHECK(f.be->setxattr("f", "user.new", "x", XATTR_REPLACE).err() == ENODATA);
  CHECK(f.be->setxattr("f", "user.a", "replaced", XATTR_REPLACE).ok());
  CHECK(*f.be->getxattr("f", "user.a") == "replaced");

  CHECK(f.be->removexattr("f", "user.a").ok());
  CHECK(f.be->getxattr("f", "user.a").err() == ENODATA);
  CHECK(f.be->removexattr("f", "user.a").err() == ENODATA);
  names = f.be->listxattr("f");
  REQUIRE(names.ok());
  CHECK(std::count(names->begin(), names->end(), "user.a") == 0);

  // A large value.
  const std::string big = RandomBytes(3000, 3);
  CHECK(f.be->setxattr("f", "user.big", big, 0).ok());
  CHECK(*f.be->getxattr("f", "user.big") == big);

  // On the root and on a directory too.
  REQUIRE(::mkdir(f.In("d").c_str(), 0755) == 0);
  CHECK(f.be->setxattr("d", "user.d", "dir", 0).ok());
  CHECK(*f.be->getxattr("d", "user.d") == "dir");
  CHECK(f.be->setxattr("", "user.root", "r", 0).ok());
  CHECK(*f.be->getxattr("", "user.root") == "r");

  CHECK(f.be->getxattr("missing", "user.a").err() == ENOENT);
  CHECK(f.be->listxattr("missing").err() == ENOENT);
}

// ---------------------------------------------------------------------------
// Coherency

TEST_CASE("PosixBackend coherency token") {
  Fixture f;
  WriteFile(f.In("f"), "aaaa");
  auto t0 = f.be->stat("f");
  REQUIRE(t0.ok());

  SECTION("unchanged when nothing changed, also after reading") {
    CHECK(ReadFile(f.In("f")) == "aaaa");
    auto t1 = f.be->stat("f");
    REQUIRE(t1.ok());
    CHECK(t1->coherency == t0->coherency);
  }
  SECTION("changes when the content changes with the same size and mtime put back") {
    WaitForClockPast(t0->st.st_ctim);
    WriteFile(f.In("f"), "bbbb");
    struct timespec times[2] = {t0->st.st_atim, t0->st.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, f.In("f").c_str(), times, 0) == 0);
    auto t1 = f.be->stat("f");
    REQUIRE(t1.ok());
    // Size and mtime are as before; only ctime tells.
    REQUIRE(t1->st.st_size == t0->st.st_size);
    REQUIRE(t1->st.st_mtim.tv_sec == t0->st.st_mtim.tv_sec);
    REQUIRE(t1->st.st_mtim.tv_nsec == t0->st.st_mtim.tv_nsec);
    CHECK(t1->coherency != t0->coherency);
    CHECK(t1->identity == t0->identity);
  }
  SECTION("changes when the file is replaced by rename") {
    WriteFile(f.In("g"), "aaaa");
    auto g = f.be->stat("g");
    REQUIRE(g.ok());
    REQUIRE(f.be->rename("g", "f", 0).ok());
    auto t1 = f.be->stat("f");
    REQUIRE(t1.ok());
    CHECK(t1->coherency != t0->coherency);
    CHECK(t1->identity != t0->identity);
    CHECK(t1->identity == g->identity);
  }
  SECTION("changes on a write through the backend, seen by fstat") {
    WaitForClockPast(t0->st.st_ctim);
    auto h = f.be->open("f", O_RDWR);
    REQUIRE(h.ok());
    ScopedHandle guard{f.be.get(), *h};
    const std::string x = "z";
    REQUIRE(f.be->write(*h, 1, std::span<const char>(x.data(), 1)).ok());
    auto t1 = f.be->fstat(*h);
    REQUIRE(t1.ok());
    CHECK(t1->coherency != t0->coherency);
    CHECK(t1->coherency == f.be->stat("f")->coherency);
  }
}
