// cachefusectl: asks the daemon of a cachefuse mount for its stats and status,
// and tells it to invalidate, forget or cull. Talks to the control socket that
// the mount's root names in its user.cachefuse.control xattr.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/control_protocol.h"
#include "common/mountinfo.h"

namespace {

struct Failure {
  std::string message;
};

bool IsPermissionError(int err) {
  return err == EACCES || err == EPERM;
}

Failure PermissionDenied(const std::string& mount_root) {
  return Failure{"permission denied talking to the daemon of " + mount_root + " (only root and the mount's owner may)"};
}

// Whether dir (a real path) is where a cachefuse mount sits. Only asked after
// EACCES/EPERM, which a mount hides behind: it answers nobody but its owner
// (and root), unless mounted with allow_other.
bool IsCachefuseMountRoot(const std::string& dir) {
  auto m = cachefuse::FindMount(dir);
  return m && m->fstype == "fuse.cachefuse";
}

// After realpath(path) failed with EACCES/EPERM: the cachefuse mount that
// refused, if path lies on one; else "".
std::string RefusingMountAbove(const std::string& path) {
  std::string dir = path;
  if (dir.empty() || dir.front() != '/') {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return "";
    dir = std::string(cwd) + "/" + dir;
  }
  while (dir.size() > 1) {
    size_t slash = dir.find_last_of('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    char real[PATH_MAX];
    if (::realpath(dir.c_str(), real) && IsCachefuseMountRoot(real)) return real;
  }
  return "";
}

// Finds the cachefuse mount holding `path`: (mount root, path relative to it).
std::pair<std::string, std::string> FindMount(const std::string& path) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) {
    int err = errno;
    if (IsPermissionError(err)) {
      if (std::string mount = RefusingMountAbove(path); !mount.empty()) throw PermissionDenied(mount);
    }
    throw Failure{path + ": " + std::strerror(err)};
  }
  std::string dir = real;
  struct stat st {};
  if (::stat(real, &st) == 0 && !S_ISDIR(st.st_mode)) dir = dir.substr(0, dir.rfind('/'));
  if (dir.empty()) dir = "/";
  for (;;) {
    char buf[8];
    if (::getxattr(dir.c_str(), "user.cachefuse.control", buf, 0) > 0) {
      std::string rel = std::string(real).substr(dir == "/" ? 1 : dir.size());
      if (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
      return {dir, rel};
    }
    if (IsPermissionError(errno) && IsCachefuseMountRoot(dir)) throw PermissionDenied(dir);
    if (dir == "/") break;
    size_t slash = dir.rfind('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
  }
  throw Failure{path + " is not on a cachefuse mount (or its daemon is not answering)"};
}

std::string SocketOf(const std::string& mount_root) {
  std::string value(4096, '\0');
  ssize_t n = ::getxattr(mount_root.c_str(), "user.cachefuse.control", value.data(), value.size());
  if (n < 0 && IsPermissionError(errno)) throw PermissionDenied(mount_root);
  if (n <= 0) throw Failure{mount_root + " is not a cachefuse mount"};
  value.resize(static_cast<size_t>(n));
  return value;
}

// Sends one command; returns the payload after "ok", or throws the daemon's error.
std::string Ask(const std::string& mount_root, const std::string& command) {
  std::string path = SocketOf(mount_root);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Failure{std::string("socket: ") + std::strerror(errno)};
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    int err_no = errno;
    std::string err = std::strerror(err_no);
    ::close(fd);
    if (IsPermissionError(err_no)) throw PermissionDenied(mount_root);
    throw Failure{"cannot reach the daemon of " + mount_root + " at " + path + ": " + err};
  }
  std::string line = command + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    throw Failure{"cannot talk to the daemon of " + mount_root};
  }
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) answer.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (answer.rfind("ok\n", 0) == 0) return answer.substr(3);
  if (answer.rfind("error ", 0) == 0) {
    std::string msg = answer.substr(6);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw Failure{msg};
  }
  throw Failure{"the daemon of " + mount_root + " gave no answer"};
}

// Renders a flat JSON object {"k": v, ...} as "k  v" lines.
std::string JsonToText(const std::string& json) {
  std::string out;
  size_t pos = 0;
  while ((pos = json.find('"', pos)) != std::string::npos) {
    size_t kend = json.find('"', pos + 1);
    if (kend == std::string::npos) break;
    std::string key = json.substr(pos + 1, kend - pos - 1);
    size_t colon = json.find(':', kend);
    if (colon == std::string::npos) break;
    size_t vstart = json.find_first_not_of(' ', colon + 1);
    size_t vend;
    std::string value;
    if (json[vstart] == '"') {
      vend = vstart + 1;
      while (vend < json.size() && json[vend] != '"') vend += json[vend] == '\\' ? 2 : 1;
      value = json.substr(vstart + 1, vend - vstart - 1);
      ++vend;
    } else {
      vend = json.find_first_of(",}", vstart);
      value = json.substr(vstart, vend - vstart);
    }
    char line[512];
    std::snprintf(line, sizeof line, "%-24s %s\n", key.c_str(), value.c_str());
    out += line;
    pos = vend;
  }
  return out;
}

// Lists each subcommand in --help with its arguments and flags:
// "stats MOUNTPOINT [--json]" rather than "stats".
class CtlFormatter : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::string synopsis = sub->get_display_name(true);
    for (const CLI::Option* opt : sub->get_options()) {
      if (opt == sub->get_help_ptr()) continue;
      std::string name = opt->get_name();
      synopsis += " " + (opt->get_required() ? name : "[" + name + "]");
    }
    std::stringstream out;
    CLI::detail::format_help(out, synopsis, sub->get_description(), get_column_width());
    return out.str();
  }
};

// The message for a command line without a known subcommand, or "" if the
// parse error was something else.
std::string NoSubcommandMessage(const CLI::App& app, const std::vector<CLI::App*>& subs) {
  for (const CLI::App* sub : subs) {
    if (sub->parsed()) return "";
  }
  std::string names;
  for (const CLI::App* sub : subs) names += (names.empty() ? "" : ", ") + sub->get_name();
  for (const std::string& arg : app.remaining()) {
    if (!arg.empty() && arg.front() != '-') return "unknown subcommand '" + arg + "'; the subcommands are " + names;
  }
  if (!app.remaining().empty()) return "unknown option '" + app.remaining().front() + "'";
  return "a subcommand is required: " + names;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cachefusectl: control a cachefuse mount", "cachefusectl"};
  app.formatter(std::make_shared<CtlFormatter>());
  app.require_subcommand(1);
  std::string target;
  bool json = false;

  auto* stats = app.add_subcommand("stats", "print the cache counters of a mount");
  stats->add_option("MOUNTPOINT", target, "a cachefuse mount (or a path on it)")->required();
  stats->add_flag("--json", json, "one JSON object");
  auto* status = app.add_subcommand("status", "print cache dir, usage, state and engine of a mount");
  status->add_option("MOUNTPOINT", target, "a cachefuse mount (or a path on it)")->required();
  status->add_flag("--json", json, "one JSON object");
  auto* invalidate = app.add_subcommand("invalidate", "drop a file's cached data and its kernel page cache");
  invalidate->add_option("PATH", target, "a file on a cachefuse mount")->required();
  auto* forget = app.add_subcommand("forget", "drop a file's cached data from the cache");
  forget->add_option("PATH", target, "a file on a cachefuse mount")->required();
  auto* cull = app.add_subcommand("cull", "run a culling pass now");
  cull->add_option("MOUNTPOINT", target, "a cachefuse mount")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string msg = NoSubcommandMessage(app, {stats, status, invalidate, forget, cull});
    std::fprintf(stderr, "cachefusectl: %s (see cachefusectl --help)\n", msg.empty() ? e.what() : msg.c_str());
    return 2;
  }
  try {
    auto [root, rel] = FindMount(target);
    if (stats->parsed() || status->parsed()) {
      std::string payload = Ask(root, stats->parsed() ? "stats" : "status");
      std::fputs(json ? payload.c_str() : JsonToText(payload).c_str(), stdout);
    } else if (invalidate->parsed() || forget->parsed()) {
      if (rel.empty()) throw Failure{target + " is the mount's root, not a file"};
      Ask(root, std::string(cachefuse::kControlVersion) + (invalidate->parsed() ? " invalidate " : " forget ") +
                    cachefuse::EscapeControlArg(rel));
    } else if (cull->parsed()) {
      Ask(root, "cull");
    }
  } catch (const Failure& f) {
    std::fprintf(stderr, "cachefusectl: %s\n", f.message.c_str());
    return 1;
  }
  return 0;
}
