// ControlSocket: accept loop, peer credential check and the command handlers.
#include "daemon/control_socket.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/control_protocol.h"
#include "daemon/filesystem.h"
#include "netfs_backends/backend.h"

namespace cachefuse::daemon {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string StatusJson(Filesystem* fs) {
  auto& cache = fs->cache();
  auto& stats = cache.stats();
  struct statvfs vfs {};
  ::statvfs(cache.dir().c_str(), &vfs);
  std::string out = "{";
  out += "\"pid\": " + std::to_string(::getpid());
  out += ", \"source\": " + JsonString(fs->options().source);
  out += ", \"mountpoint\": " + JsonString(fs->options().mountpoint);
  out += ", \"cache_dir\": " + JsonString(cache.dir());
  out += ", \"cache.state\": " + JsonString(cache::CacheStateName(cache.state()));
  out += ", \"io.engine\": " + JsonString(cache.engine().name());
  out += ", \"io.engine_reason\": " + JsonString(cache.engine_reason());
  out += ", \"granule\": " + std::to_string(cache.granule());
  out += ", \"cache.bytes_used\": " + std::to_string(stats.cache_bytes_used.load());
  out += ", \"cache.objects\": " + std::to_string(stats.cache_objects.load());
  out += ", \"cache_fs.free_bytes\": " + std::to_string(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
  out += ", \"cache_fs.total_bytes\": " + std::to_string(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize);
  out += ", \"inodes\": " + std::to_string(fs->inodes().size());
  return out + "}";
}

}  // namespace

std::string ControlSocketDir() {
  if (::geteuid() == 0) return "/run/cachefuse";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg == '/') return std::string(xdg) + "/cachefuse";
  return "/tmp/cachefuse-" + std::to_string(::geteuid());
}

Result<std::unique_ptr<ControlSocket>> ControlSocket::Start(Filesystem* fs) {
  std::string dir = ControlSocketDir();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + dir);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return Status::Invalid(dir + " is not a directory owned by this user");
  }
  std::string path = dir + "/" + std::to_string(::getpid()) + ".sock";
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::Invalid("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket");
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) return ErrnoStatus("bind " + path);
  if (::listen(fd.get(), 16) != 0) return ErrnoStatus("listen " + path);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  std::unique_ptr<ControlSocket> cs(new ControlSocket(fs, path, std::move(fd), UniqueFd(p[0]), UniqueFd(p[1])));
  cs->thread_ = std::thread([c = cs.get()] { c->Loop(); });
  return cs;
}

ControlSocket::~ControlSocket() {
  if (wake_w_.valid()) (void)!::write(wake_w_.get(), "x", 1);
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void ControlSocket::Loop() {
  for (;;) {
    struct pollfd pfd[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_r_.get(), POLLIN, 0}};
    if (::poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (pfd[1].revents) return;
    if (!(pfd[0].revents & POLLIN)) continue;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.valid()) Serve(conn.get());
  }
}

void ControlSocket::Serve(int fd) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != 0 && cred.uid != ::geteuid())) {
    const char* msg = "error permission denied: only root and the mount's owner may control it\n";
    (void)!::write(fd, msg, std::strlen(msg));
    return;
  }
  struct timeval tv {
    5, 0
  };
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line;
  char c;
  // A 4 KiB name escapes to at most 12 KiB; paths are longer than names.
  while (line.size() < (1 << 20) && ::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  std::string answer = Handle(fs_, line);
  size_t done = 0;
  while (done < answer.size()) {
    ssize_t n = ::write(fd, answer.data() + done, answer.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

std::string ControlSocket::Handle(Filesystem* fs, const std::string& request) {
  // "v2 VERB [ARG]" (common/control_protocol.h); commands without an argument
  // are also taken without the version, as older cachefusectl sent them.
  std::string line = request;
  const std::string version = std::string(kControlVersion) + " ";
  const bool versioned = line.rfind(version, 0) == 0;
  if (versioned) line.erase(0, version.size());
  std::string cmd = line.substr(0, line.find(' '));
  std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
  if (!arg.empty()) {
    if (!versioned)
      return "error this cachefusectl speaks an older protocol than the daemon; use the one installed with it\n";
    auto raw = UnescapeControlArg(arg);
    if (!raw) return "error malformed argument (bad escape, or a NUL byte)\n";
    arg = std::move(*raw);
  }
  if (cmd == "stats") return "ok\n" + cache::Stats::JsonOf(fs->StatsSnapshot()) + "\n";
  if (cmd == "status") return "ok\n" + StatusJson(fs) + "\n";
  if (cmd == "invalidate" || cmd == "forget") {
    if (!netfs::IsCleanRelativePath(arg) || arg.empty()) return "error bad path '" + EscapeControlArg(arg) + "'\n";
    Status st = fs->InvalidatePath(arg, cmd == "forget");
    if (!st.ok()) return "error " + st.ToString() + "\n";
    return "ok\n";
  }
  if (cmd == "cull") {
    Status st = fs->Cull();
    if (!st.ok()) return "error " + st.ToString() + "\n";
    return "ok\n" + cache::Stats::JsonOf(fs->StatsSnapshot()) + "\n";
  }
  return "error unknown command '" + cmd + "'\n";
}

}  // namespace cachefuse::daemon
