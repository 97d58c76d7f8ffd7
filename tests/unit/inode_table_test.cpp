// Tests for daemon/inode_table: inode numbers, lookup counts, names and paths.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <set>
#include <string>

#include "daemon/inode_table.h"

using cachefuse::cache::CookieRef;
using cachefuse::daemon::InodeRef;
using cachefuse::daemon::InodeTable;

namespace {

const std::function<CookieRef()> kNoCookie = nullptr;

std::string PathOf(const InodeTable& t, fuse_ino_t ino) {
  auto p = t.Path(ino);
  REQUIRE(p.ok());
  return *p;
}

InodeRef Dir(InodeTable& t, const std::string& id, fuse_ino_t parent, const std::string& name) {
  return t.Remember(id, S_IFDIR, parent, name, kNoCookie);
}

InodeRef File(InodeTable& t, const std::string& id, fuse_ino_t parent, const std::string& name) {
  return t.Remember(id, S_IFREG, parent, name, kNoCookie);
}

}  // namespace

TEST_CASE("InodeTable starts with the root") {
  InodeTable t("root-id");
  CHECK(t.size() == 1);
  auto root = t.Get(FUSE_ROOT_ID);
  REQUIRE(root);
  CHECK(root->ino == FUSE_ROOT_ID);
  CHECK(root->identity == "root-id");
  CHECK(root->type == S_IFDIR);
  CHECK(root->nlookup == 1);
  CHECK(t.FindByIdentity("root-id") == root);
  CHECK(PathOf(t, FUSE_ROOT_ID) == "");
  auto child = t.ChildPath(FUSE_ROOT_ID, "x");
  REQUIRE(child.ok());
  CHECK(*child == "x");
  CHECK_FALSE(t.Get(FUSE_ROOT_ID + 1));
  CHECK_FALSE(t.FindByIdentity("nope"));
}

TEST_CASE("InodeTable::Remember makes one inode per identity and counts lookups") {
  InodeTable t("r");
  auto a = File(t, "i10", FUSE_ROOT_ID, "a");
  REQUIRE(a);
  CHECK(a->ino != FUSE_ROOT_ID);
  CHECK(a->identity == "i10");
  CHECK(a->type == S_IFREG);
  CHECK(a->nlookup == 1);
  CHECK_FALSE(a->cookie);
  CHECK_FALSE(a->unlinked);
  CHECK(t.size() == 2);
  CHECK(t.Get(a->ino) == a);
  CHECK(t.FindByIdentity("i10") == a);

  // A second lookup of the same name: same inode, count 2, still one name.
  auto again = File(t, "i10", FUSE_ROOT_ID, "a");
  CHECK(again == a);
  CHECK(a->nlookup == 2);
  CHECK(a->names.size() == 1);
  CHECK(t.size() == 2);

  // Another identity: another inode number.
  auto b = File(t, "i11", FUSE_ROOT_ID, "b");
  CHECK(b->ino != a->ino);
  CHECK(t.size() == 3);
}

TEST_CASE("InodeTable::Forget drops counts and removes at zero") {
  InodeTable t("r");
  auto a = File(t, "i10", FUSE_ROOT_ID, "a");
  File(t, "i10", FUSE_ROOT_ID, "a");
  File(t, "i10", FUSE_ROOT_ID, "a");
  REQUIRE(a->nlookup == 3);

  CHECK_FALSE(t.Forget(a->ino, 2));
  CHECK(a->nlookup == 1);
  CHECK(t.Get(a->ino) == a);

  auto gone = t.Forget(a->ino, 1);
  CHECK(gone == a);
  CHECK(a->nlookup == 0);
  CHECK_FALSE(t.Get(a->ino));
  CHECK_FALSE(t.FindByIdentity("i10"));
  CHECK(t.size() == 1);
  CHECK(t.Path(a->ino).err() == ESTALE);

  // Forgetting an unknown inode or the root does nothing.
  CHECK_FALSE(t.Forget(a->ino, 1));
  CHECK_FALSE(t.Forget(12345, 1));
  CHECK_FALSE(t.Forget(FUSE_ROOT_ID, 1));
  CHECK(t.Get(FUSE_ROOT_ID));
  CHECK(t.Get(FUSE_ROOT_ID)->nlookup == 1);

  // The identity comes back as a new inode number; numbers are not reused.
  auto a2 = File(t, "i10", FUSE_ROOT_ID, "a");
  CHECK(a2->ino != a->ino);
  CHECK(a2->nlookup == 1);
  CHECK(PathOf(t, a2->ino) == "a");
}

TEST_CASE("InodeTable::Forget of more lookups than were made aborts") {
  // A broken count is a bug: the table aborts loudly. Checked in a child process.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct rlimit no_core {};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::signal(SIGABRT, SIG_DFL);  // not Catch's handler: die of the signal
    InodeTable t("r");
    auto a = t.Remember("i1", S_IFREG, FUSE_ROOT_ID, "a", nullptr);
    t.Forget(a->ino, 2);
    ::_exit(0);  // not reached if Forget aborts
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGABRT);
}

TEST_CASE("InodeTable paths of nested entries") {
  InodeTable t("r");
  auto a = Dir(t, "d1", FUSE_ROOT_ID, "a");
  auto b = Dir(t, "d2", a->ino, "b");
  auto c = Dir(t, "d3", b->ino, "c");
  auto f = File(t, "f1", c->ino, "file.txt");
  CHECK(PathOf(t, a->ino) == "a");
  CHECK(PathOf(t, b->ino) == "a/b");
  CHECK(PathOf(t, c->ino) == "a/b/c");
  CHECK(PathOf(t, f->ino) == "a/b/c/file.txt");
  auto child = t.ChildPath(c->ino, "new");
  REQUIRE(child.ok());
  CHECK(*child == "a/b/c/new");

  // Names with odd bytes are kept as they are.
  auto odd = File(t, "f2", b->ino, "sp ace\ttab");
  CHECK(PathOf(t, odd->ino) == "a/b/sp ace\ttab");

  // ChildPath of an unknown parent is ESTALE.
  auto stale = t.ChildPath(9999, "x");
  CHECK_FALSE(stale.ok());
  CHECK(stale.err() == ESTALE);
  CHECK(t.Path(9999).err() == ESTALE);
}

TEST_CASE("InodeTable: make_cookie runs for new regular files only") {
  InodeTable t("r");
  int calls = 0;
  std::function<CookieRef()> counting = [&calls]() -> CookieRef {
    ++calls;
    return nullptr;
  };
  auto f = t.Remember("f", S_IFREG, FUSE_ROOT_ID, "f", counting);
  CHECK(calls == 1);
  CHECK_FALSE(f->cookie);
  t.Remember("f", S_IFREG, FUSE_ROOT_ID, "f", counting);  // known already
  CHECK(calls == 1);
  t.Remember("f", S_IFREG, FUSE_ROOT_ID, "link", counting);  // a hard link: same file
  CHECK(calls == 1);
  t.Remember("d", S_IFDIR, FUSE_ROOT_ID, "d", counting);
  t.Remember("l", S_IFLNK, FUSE_ROOT_ID, "l", counting);
  t.Remember("p", S_IFIFO, FUSE_ROOT_ID, "p", counting);
  CHECK(calls == 1);
  t.Remember("g", S_IFREG, FUSE_ROOT_ID, "g", counting);
  CHECK(calls == 2);
}

TEST_CASE("InodeTable: a new file that reuses a removed file's inode number is reached by its own name") {
  // Removed at the source, its inode number reused by a new file: the kernel
  // still remembers the old name, the source answers for the new one.
  InodeTable t("r");
  auto old = File(t, "i7", FUSE_ROOT_ID, "t0");
  auto fresh = File(t, "i7", FUSE_ROOT_ID, "t1");
  CHECK(old == fresh);
  CHECK(PathOf(t, fresh->ino) == "t1");
}

TEST_CASE("InodeTable hard links: one identity, two names") {
  InodeTable t("r");
  auto d = Dir(t, "d", FUSE_ROOT_ID, "dir");
  auto a = File(t, "i5", FUSE_ROOT_ID, "a");
  auto b = File(t, "i5", d->ino, "b");
  CHECK(a == b);
  CHECK(a->nlookup == 2);
  REQUIRE(a->names.size() == 2);
  CHECK(t.size() == 3);
  // The path comes from the name most recently found on the source.
  CHECK(PathOf(t, a->ino) == "dir/b");
  File(t, "i5", FUSE_ROOT_ID, "a");
  CHECK(PathOf(t, a->ino) == "a");
  CHECK(a->names.size() == 2);

  SECTION("removing the name in use keeps the file reachable through the other") {
    t.RemoveName(FUSE_ROOT_ID, "a", false);
    CHECK_FALSE(a->unlinked);
    CHECK(a->names.size() == 1);
    CHECK(PathOf(t, a->ino) == "dir/b");
  }
  SECTION("removing the other name keeps the one in use") {
    t.RemoveName(d->ino, "b", false);
    CHECK(PathOf(t, a->ino) == "a");
  }
  SECTION("removing both names: no path, unlinked when the last goes") {
    t.RemoveName(FUSE_ROOT_ID, "a", false);
    t.RemoveName(d->ino, "b", true);
    CHECK(a->unlinked);
    CHECK(a->names.empty());
    CHECK(t.Path(a->ino).err() == ESTALE);
    // Still in the table until the kernel forgets it.
    CHECK(t.Get(a->ino) == a);
    CHECK(t.Forget(a->ino, 3) == a);
  }
}

TEST_CASE("InodeTable::RemoveName") {
  InodeTable t("r");
  auto a = File(t, "i1", FUSE_ROOT_ID, "a");
  SECTION("last_link marks the inode unlinked") {
    t.RemoveName(FUSE_ROOT_ID, "a", true);
    CHECK(a->unlinked);
    CHECK(t.Path(a->ino).err() == ESTALE);
    CHECK(t.Get(a->ino) == a);
  }
  SECTION("not the last link keeps it linked") {
    t.RemoveName(FUSE_ROOT_ID, "a", false);
    CHECK_FALSE(a->unlinked);
  }
  SECTION("an unknown name changes nothing") {
    t.RemoveName(FUSE_ROOT_ID, "zzz", true);
    t.RemoveName(777, "a", true);
    CHECK_FALSE(a->unlinked);
    CHECK(PathOf(t, a->ino) == "a");
  }
  SECTION("a new lookup under a name clears unlinked") {
    t.RemoveName(FUSE_ROOT_ID, "a", true);
    REQUIRE(a->unlinked);
    auto back = File(t, "i1", FUSE_ROOT_ID, "again");
    CHECK(back == a);
    CHECK_FALSE(a->unlinked);
    CHECK(PathOf(t, a->ino) == "again");
  }
}

TEST_CASE("InodeTable: a name that now belongs to another file moves to it") {
  InodeTable t("r");
  auto old_file = File(t, "i1", FUSE_ROOT_ID, "name");
  auto new_file = File(t, "i2", FUSE_ROOT_ID, "name");  // replaced on the server
  CHECK(new_file != old_file);
  CHECK(PathOf(t, new_file->ino) == "name");
  CHECK(old_file->names.empty());
  CHECK(t.Path(old_file->ino).err() == ESTALE);
  // Removing the name affects only the new owner.
  t.RemoveName(FUSE_ROOT_ID, "name", true);
  CHECK(new_file->unlinked);
  CHECK_FALSE(old_file->unlinked);
}

TEST_CASE("InodeTable: identity reused with a different file type gives a new inode") {
  InodeTable t("r");
  auto f = File(t, "i9", FUSE_ROOT_ID, "x");
  auto d = Dir(t, "i9", FUSE_ROOT_ID, "x");
  CHECK(d != f);
  CHECK(d->ino != f->ino);
  CHECK(d->type == S_IFDIR);
  CHECK(f->type == S_IFREG);
  CHECK(d->nlookup == 1);
  CHECK(t.FindByIdentity("i9") == d);
  CHECK(PathOf(t, d->ino) == "x");
  CHECK(f->names.empty());
  // The old inode stays until the kernel forgets it, and forgetting it does
  // not take the new one's identity along.
  CHECK(t.Get(f->ino) == f);
  CHECK(t.Forget(f->ino, 1) == f);
  CHECK(t.FindByIdentity("i9") == d);
  CHECK(t.Get(d->ino) == d);
  CHECK(PathOf(t, d->ino) == "x");
  // The same type again is the same inode.
  CHECK(Dir(t, "i9", FUSE_ROOT_ID, "x") == d);
}

TEST_CASE("InodeTable::Rename of a file") {
  InodeTable t("r");
  auto d1 = Dir(t, "d1", FUSE_ROOT_ID, "d1");
  auto d2 = Dir(t, "d2", FUSE_ROOT_ID, "d2");
  auto f = File(t, "f", d1->ino, "old");

  SECTION("within a directory") {
    t.Rename(d1->ino, "old", d1->ino, "new", 0);
    CHECK(PathOf(t, f->ino) == "d1/new");
  }
  SECTION("to another directory") {
    t.Rename(d1->ino, "old", d2->ino, "moved", 0);
    CHECK(PathOf(t, f->ino) == "d2/moved");
    // The old name is free: a new file can take it.
    auto g = File(t, "g", d1->ino, "old");
    CHECK(PathOf(t, g->ino) == "d1/old");
    CHECK(PathOf(t, f->ino) == "d2/moved");
  }
  SECTION("the moved name can be removed under its new name") {
    t.Rename(d1->ino, "old", d2->ino, "moved", 0);
    t.RemoveName(d1->ino, "old", true);  // the old name is not known any more
    CHECK_FALSE(f->unlinked);
    t.RemoveName(d2->ino, "moved", true);
    CHECK(f->unlinked);
  }
  SECTION("an unknown source name changes nothing") {
    t.Rename(d1->ino, "nope", d2->ino, "x", 0);
    CHECK(PathOf(t, f->ino) == "d1/old");
  }
}

TEST_CASE("InodeTable::Rename over an existing name") {
  InodeTable t("r");
  auto a = File(t, "ia", FUSE_ROOT_ID, "a");
  auto b = File(t, "ib", FUSE_ROOT_ID, "b");
  // The caller removes the replaced name first (its last link), as op_namespace does.
  t.RemoveName(FUSE_ROOT_ID, "b", true);
  t.Rename(FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "b", 0);
  CHECK(PathOf(t, a->ino) == "b");
  CHECK(b->unlinked);
  CHECK(b->names.empty());
  CHECK(t.Path(b->ino).err() == ESTALE);

  SECTION("even when the caller did not remove the replaced name") {
    auto c = File(t, "ic", FUSE_ROOT_ID, "c");
    t.Rename(FUSE_ROOT_ID, "b", FUSE_ROOT_ID, "c", 0);
    CHECK(PathOf(t, a->ino) == "c");
    CHECK(c->names.empty());
    CHECK(t.Path(c->ino).err() == ESTALE);
    // The name "b" is free again.
    auto nb = File(t, "inb", FUSE_ROOT_ID, "b");
    CHECK(PathOf(t, nb->ino) == "b");
    CHECK(PathOf(t, a->ino) == "c");
  }
}

TEST_CASE("InodeTable::Rename of a directory changes the paths of its descendants") {
  InodeTable t("r");
  auto top = Dir(t, "top", FUSE_ROOT_ID, "top");
  auto sub = Dir(t, "sub", top->ino, "sub");
  auto deep = Dir(t, "deep", sub->ino, "deep");
  auto f = File(t, "f", deep->ino, "f");
  auto other = Dir(t, "other", FUSE_ROOT_ID, "other");
  REQUIRE(PathOf(t, f->ino) == "top/sub/deep/f");

  t.Rename(top->ino, "sub", other->ino, "renamed", 0);
  CHECK(PathOf(t, sub->ino) == "other/renamed");
  CHECK(PathOf(t, deep->ino) == "other/renamed/deep");
  CHECK(PathOf(t, f->ino) == "other/renamed/deep/f");
  CHECK(PathOf(t, top->ino) == "top");

  t.Rename(FUSE_ROOT_ID, "other", FUSE_ROOT_ID, "o2", 0);
  CHECK(PathOf(t, f->ino) == "o2/renamed/deep/f");
  auto child = t.ChildPath(deep->ino, "new");
  REQUIRE(child.ok());
  CHECK(*child == "o2/renamed/deep/new");
}

TEST_CASE("InodeTable::Rename with RENAME_EXCHANGE swaps two names") {
  InodeTable t("r");
  auto d = Dir(t, "d", FUSE_ROOT_ID, "d");
  auto a = File(t, "ia", FUSE_ROOT_ID, "a");
  auto b = Dir(t, "ib", d->ino, "b");
  auto inside = File(t, "in", b->ino, "inside");

  t.Rename(FUSE_ROOT_ID, "a", d->ino, "b", RENAME_EXCHANGE);
  CHECK(PathOf(t, a->ino) == "d/b");
  CHECK(PathOf(t, b->ino) == "a");
  CHECK(PathOf(t, inside->ino) == "a/inside");
  CHECK_FALSE(a->unlinked);
  CHECK_FALSE(b->unlinked);
  CHECK(a->names.size() == 1);
  CHECK(b->names.size() == 1);

  // A later lookup of either name finds the swapped inode, not a stale one.
  CHECK(File(t, "ia", d->ino, "b") == a);
  CHECK(a->names.size() == 1);
  CHECK(Dir(t, "ib", FUSE_ROOT_ID, "a") == b);
  CHECK(b->names.size() == 1);

  // Exchanging back.
  t.Rename(FUSE_ROOT_ID, "a", d->ino, "b", RENAME_EXCHANGE);
  CHECK(PathOf(t, a->ino) == "a");
  CHECK(PathOf(t, b->ino) == "d/b");
  CHECK(PathOf(t, inside->ino) == "d/b/inside");
}

TEST_CASE("InodeTable::Rename with RENAME_EXCHANGE when only one side is known") {
  InodeTable t("r");
  auto a = File(t, "ia", FUSE_ROOT_ID, "a");
  t.Rename(FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "b", RENAME_EXCHANGE);
  CHECK(PathOf(t, a->ino) == "b");
  // "a" now holds whatever "b" was; it is not known, so a lookup makes it fresh.
  auto other = File(t, "ib", FUSE_ROOT_ID, "a");
  CHECK(other != a);
  CHECK(PathOf(t, other->ino) == "a");
  CHECK(PathOf(t, a->ino) == "b");
}

TEST_CASE("InodeTable::Clear empties the table and returns what was in it") {
  InodeTable t("r");
  auto d = Dir(t, "d", FUSE_ROOT_ID, "d");
  auto f = File(t, "f", d->ino, "f");
  auto all = t.Clear();
  CHECK(all.size() == 3);
  std::set<fuse_ino_t> inos;
  for (const auto& in : all) inos.insert(in->ino);
  CHECK(inos == std::set<fuse_ino_t>{FUSE_ROOT_ID, d->ino, f->ino});
  CHECK(t.size() == 0);
  CHECK_FALSE(t.Get(FUSE_ROOT_ID));
  CHECK_FALSE(t.Get(f->ino));
  CHECK_FALSE(t.FindByIdentity("f"));
  CHECK_FALSE(t.FindByIdentity("r"));
  CHECK(t.Path(f->ino).err() == ESTALE);
  CHECK(t.Clear().empty());
}
