// cachefuse: mounts a network file tree with a persistent local cache.
//
// Start-up: options are checked in the parent; the daemon (a child, unless
// -f) opens the cache, mounts, and reports back through a pipe once the mount
// answers, so `cachefuse` returns only when the mount is usable, or fails with
// one line naming the problem and leaves nothing behind.
#include <fcntl.h>
#include <fuse_log.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "cache/cache.h"
#include "common/mountinfo.h"
#include "common/units.h"
#include "daemon/control_socket.h"
#include "daemon/filesystem.h"
#include "daemon/fuse_ops.h"
#include "daemon/mount_options.h"
#include "netfs_backends/backend.h"
#include "netfs_backends/registry.h"

namespace cachefuse::daemon {
namespace {

constexpr const char* kVersion = "0.1.0";

// Reports the outcome of start-up: to the waiting parent, or to stderr with -f.
class StartupReporter {
 public:
  explicit StartupReporter(int fd) : fd_(fd) {}
  int Fail(const std::string& msg) {
    if (fd_ >= 0) {
      std::string line = "ERR " + msg + "\n";
      (void)!::write(fd_, line.data(), line.size());
      ::close(fd_);
      fd_ = -1;
    } else if (!done_) {
      std::fprintf(stderr, "cachefuse: %s\n", msg.c_str());
    }
    done_ = true;
    return 1;
  }
  void Ready() {
    if (fd_ >= 0) {
      (void)!::write(fd_, "OK\n", 3);
      ::close(fd_);
      fd_ = -1;
    }
    done_ = true;
  }

 private:
  int fd_;
  bool done_ = false;
};

// libfuse says why a mount failed only through its log: keep its last message
// for our one line, and send everything it says to our log.
std::mutex fuse_log_mu;
std::string last_fuse_message;  // guarded by fuse_log_mu

void CaptureFuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (msg.rfind("fuse: ", 0) == 0) msg.erase(0, 6);
  {
    std::lock_guard lk(fuse_log_mu);
    last_fuse_message = msg;
  }
  // At debug level only: a start-up failure is reported once, in our own line.
  spdlog::debug("libfuse ({}): {}", static_cast<int>(level), msg);
}

std::string LastFuseMessage() {
  std::lock_guard lk(fuse_log_mu);
  return last_fuse_message;
}

// An existing mount on MOUNTPOINT: a live cachefuse would be hidden under the
// new one, a dead one ("Transport endpoint is not connected") must be cleared.
// Returns the problem, or "" if there is none.
std::string MountpointInUse(const std::string& mountpoint) {
  auto m = FindMount(mountpoint);
  if (!m || m->fstype != "fuse.cachefuse") return "";
  struct statfs sf {};
  if (::statfs(mountpoint.c_str(), &sf) != 0 && errno == ENOTCONN) {
    return mountpoint + " is a dead cachefuse mount (its daemon died); clear it with fusermount3 -u " + mountpoint;
  }
  return mountpoint + " is already a cachefuse mount (of " + m->source + "); unmount it first (fusermount3 -u " +
         mountpoint + ")";
}

void RaiseFileLimit() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// The kernel reads ahead only 128 KiB on a FUSE mount unless its bdi says more.
void RaiseKernelReadahead(const MountOptions& mo, dev_t dev) {
  if (::geteuid() != 0 || mo.readahead == 0) return;
  uint64_t kb = std::clamp<uint64_t>(mo.readahead / 1024, 128, 16384);
  std::string path =
      "/sys/class/bdi/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) + "/read_ahead_kb";
  std::ofstream f(path);
  if (f) f << kb << "\n";
  if (!f) spdlog::debug("cannot set {}", path);
}

void SetupLogging(const MountOptions& mo) {
  auto logger = spdlog::stderr_logger_mt("cachefuse");
  logger->set_pattern("cachefuse[%P] %l: %v");
  spdlog::set_default_logger(logger);
  auto level = spdlog::level::from_str(mo.log_level);
  // Until it detaches, a background daemon shares the user's terminal: warnings only.
  spdlog::set_level(mo.foreground ? level : std::max(level, spdlog::level::warn));
}

void SwitchToSyslog(const MountOptions& mo) {
  auto logger = spdlog::syslog_logger_mt("cachefuse-syslog", "cachefuse", LOG_PID, LOG_DAEMON);
  logger->set_pattern("%l: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(mo.log_level));
}

void DetachStdio() {
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  ::dup2(null, 0);
  ::dup2(null, 1);
  ::dup2(null, 2);
  ::close(null);
}

// The real path of p, or of its nearest existing ancestor with the rest
// appended (a cache dir that does not exist yet).
std::string RealOrAncestor(const std::string& p) {
  std::string head = p;
  std::string tail;
  while (!head.empty()) {
    char real[PATH_MAX];
    if (::realpath(head.c_str(), real)) return std::string(real) + tail;
    size_t slash = head.find_last_of('/');
    if (slash == std::string::npos) break;
    tail = head.substr(slash) + tail;
    head = slash == 0 ? "/" : head.substr(0, slash);
    if (head == "/" && tail.empty()) break;
  }
  return p;
}

bool Within(const std::string& inner, const std::string& outer) {
  if (outer == "/") return true;
  return inner == outer ||
         (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '/');
}

// Setups that would cache the cache or mount a tree over itself: one line each.
std::string PathLoop(const MountOptions& mo) {
  const bool local = mo.source.find("://") == std::string::npos;
  const std::string cache = RealOrAncestor(mo.cache_dir.empty() ? DefaultCacheDir() : mo.cache_dir);
  if (local && mo.source == mo.mountpoint) {
    return "SOURCE and MOUNTPOINT are the same directory (" + mo.source + "): mount the source somewhere else";
  }
  if (local && Within(cache, mo.source)) {
    return "cache_dir " + cache + " is inside SOURCE " + mo.source +
           ": the cache would be cached through itself; put it outside the source";
  }
  if (Within(cache, mo.mountpoint)) {
    return "cache_dir " + cache + " is inside the mountpoint " + mo.mountpoint +
           ": the mount would hide it; put it outside";
  }
  return "";
}

int RunDaemon(const MountOptions& mo, int ready_fd) {
  StartupReporter report(ready_fd);
  SetupLogging(mo);
  // The kernel applies the caller's umask to the modes it sends: ours must not
  // apply again (cache files get explicit modes).
  ::umask(0);
  RaiseFileLimit();
  // libfuse's SIGTERM/SIGINT/SIGHUP handler ends the loop only by
  // interrupting the main thread's wait (its workers block these signals);
  // landing on one of our own threads (engine reaper, flusher, ...) it would go
  // unnoticed until the next request. So every thread started before the loop
  // starts with them blocked, and only the main thread takes them again when
  // the loop begins.
  sigset_t stop_signals;
  sigset_t old_mask;
  sigemptyset(&stop_signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, sig);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);

  auto parsed = netfs::ParseSource(mo.source);
  if (!parsed.ok()) return report.Fail(parsed.status().ToString());
  netfs::SourceOptions source_options = mo.ToSourceOptions();
  source_options.warn = [](const std::string& msg) { spdlog::warn("{}", msg); };
  if (mo.insecure) {
    spdlog::warn("insecure: TLS certificates of {} are not verified; anyone on the path can pose as the server",
                 parsed->canonical);
  }
  auto backend = netfs::OpenSource(*parsed, source_options);
  if (!backend.ok()) return report.Fail(backend.status().ToString());
  std::unique_ptr<netfs::Backend> source = std::move(backend.value());
  auto cache = cache::Cache::Open(mo.ToCacheOptions());
  if (!cache.ok()) return report.Fail(cache.status().ToString());
  const std::string engine_line =
      "cache " + (*cache)->dir() + ": io engine " + (*cache)->engine().name() + " (" + (*cache)->engine_reason() + ")";
  auto volume = (*cache)->AcquireVolume(source->describe());
  if (!volume.ok()) return report.Fail(volume.status().ToString());
  const std::string described = source->describe();
  auto fs = std::make_unique<Filesystem>(mo, std::move(source), std::move(cache.value()), std::move(volume.value()));
  if (!fs->root_status().ok()) {
    // The source was asked for its root through the retry policy: it does not answer.
    const std::string why = fs->root_status().ToString();
    fs->Shutdown();
    return report.Fail("source " + described + " does not answer for its root: " + why);
  }

  std::string fuse_opts = mo.FuseMountOptions();
  std::vector<const char*> argv = {"cachefuse", "-o", fuse_opts.c_str()};
  if (mo.debug && mo.log_level == "trace") argv.push_back("-d");
  struct fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  fuse_session* se = fuse_session_new(&args, &FuseOps(), sizeof(fuse_lowlevel_ops), fs.get());
  fuse_opt_free_args(&args);
  if (!se) return report.Fail("cannot start a FUSE session (is /dev/fuse there?)");
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return report.Fail("cannot install signal handlers");
  }
  if (fuse_session_mount(se, mo.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    fs->Shutdown();
    std::string why = LastFuseMessage();
    return report.Fail("cannot mount on " + mo.mountpoint + (why.empty() ? "" : ": " + why));
  }
  fs->set_session(se);
  std::unique_ptr<ControlSocket> control;
  if (auto cs = ControlSocket::Start(fs.get()); cs.ok()) {
    control = std::move(cs.value());
    fs->set_control_socket(control->path());
  } else {
    spdlog::warn("no control socket: {}", cs.status().ToString());
  }

  // Ready once the mount answers a stat of its root (served by the loop below).
  std::thread ready([&] {
    struct stat st {};
    if (::stat(mo.mountpoint.c_str(), &st) != 0) {
      report.Fail("the mount on " + mo.mountpoint + " does not answer: " + std::strerror(errno));
      fuse_session_exit(se);
      return;
    }
    RaiseKernelReadahead(mo, st.st_dev);
    ::sd_notify(0, "READY=1");
    report.Ready();
    if (!mo.foreground) {
      DetachStdio();
      SwitchToSyslog(mo);
    }
    spdlog::info("mounted {} on {}", mo.source, mo.mountpoint);
    spdlog::info("{}", engine_line);
  });

  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  struct fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, mo.threads);
  fuse_loop_cfg_set_idle_threads(cfg, std::min(4u, mo.threads));
  int rc = fuse_session_loop_mt(se, cfg);
  // From here on a stop signal has nothing left to stop: a second SIGTERM
  // during the unmount and the persisting below must not kill the process
  // once libfuse puts the default handlers back (exit status -15 and a
  // failed systemd unit). Every other thread blocks them already.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  fuse_loop_cfg_destroy(cfg);
  ::sd_notify(0, "STOPPING=1");
  ready.join();
  spdlog::info("unmounting {} ({})", mo.mountpoint, rc > 0 ? strsignal(rc) : "unmounted");
  control.reset();
  fs->set_session(nullptr);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fs->Shutdown();  // persists maps and aux data of every object
  fuse_session_destroy(se);
  fs.reset();
  return 0;
}

std::string HelpFooter() {
  std::string s = "\nMount options (-o opt[,opt...]; also as key = value lines in a config= file):\n";
  for (const auto& d : OptionDocs()) {
    std::string name = std::string(d.name) + (*d.value ? std::string("=") + d.value : "");
    char line[256];
    std::snprintf(line, sizeof line, "  %-34s %s\n", name.c_str(), d.meaning);
    s += line;
  }
  s += "\nSOURCE is a local directory (a kernel NFS/SMB mount, a disk), or an http:// or https://\n"
       "URL of a directory served with listings (read-only; credentials only through credentials=FILE).\n"
       "Examples:\n"
       "  cachefuse /mnt/nfs/home ~/home -o cache_dir=/var/tmp/cf\n"
       "  cachefuse https://mirror.example.org/pub/ /mnt/pub -o credentials=/etc/cachefuse/pub.cred\n"
       "  mount -t fuse.cachefuse /mnt/nfs/data /data -o allow_other\n"
       "  cachefusectl stats ~/home\n\n";
  return s + ExitStatusDoc();
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"cachefuse: mounts SOURCE on MOUNTPOINT with a persistent local cache of file data", "cachefuse"};
  std::string source;
  std::string mountpoint;
  std::vector<std::string> opts;
  bool foreground = false;
  bool debug = false;
  app.add_option("SOURCE", source, "the file tree to cache (a directory)")->required();
  app.add_option("MOUNTPOINT", mountpoint, "where to mount it (a directory)")->required();
  app.add_flag("-f,--foreground", foreground, "stay in the foreground (for systemd)");
  app.add_flag("-d,--debug", debug, "foreground, with debug logging");
  app.add_option("-o", opts, "mount options, comma-separated (below)")->take_all();
  std::string sources;
  for (const auto& name : netfs::CompiledSources()) sources += (sources.empty() ? "" : " ") + name;
  app.set_version_flag("-V,--version", std::string("cachefuse ") + kVersion + "\nsources: " + sources);
  app.footer(HelpFooter());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "cachefuse: %s (see cachefuse --help)\n", e.what());
    return 2;
  }

  MountOptions mo;
  mo.source = source;
  mo.foreground = foreground || debug;
  mo.debug = debug;
  try {
    for (const auto& o : opts) ApplyOptionList(mo, o);
    ValidateOptions(mo);
  } catch (const OptionError& e) {
    std::fprintf(stderr, "cachefuse: %s\n", e.what());
    return 1;
  }
  if (debug) mo.log_level = "debug";

  // Check what can be checked before anything starts; the daemon connects.
  {
    auto parsed = netfs::ParseSource(source);
    if (!parsed.ok()) {
      std::fprintf(stderr, "cachefuse: %s\n", parsed.status().ToString().c_str());
      return 1;
    }
  }
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      // A cachefuse mount whose daemon died says so by name.
      std::string abs = mountpoint;
      if (!abs.empty() && abs.front() != '/') {
        char cwd[PATH_MAX];
        if (::getcwd(cwd, sizeof cwd)) abs = std::string(cwd) + "/" + abs;
      }
      if (std::string busy = MountpointInUse(abs); !busy.empty()) {
        std::fprintf(stderr, "cachefuse: %s\n", busy.c_str());
        return 1;
      }
      std::fprintf(stderr, "cachefuse: mountpoint %s: %s (a FUSE daemon died there); clear it with fusermount3 -u %s\n",
                   mountpoint.c_str(), std::strerror(errno), mountpoint.c_str());
    } else {
      std::fprintf(stderr, "cachefuse: mountpoint %s: %s\n", mountpoint.c_str(), std::strerror(errno));
    }
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "cachefuse: mountpoint %s is not a directory\n", mountpoint.c_str());
    return 1;
  }
  // The daemon runs in /: every path it keeps must be absolute.
  char real[PATH_MAX];
  mo.mountpoint = ::realpath(mountpoint.c_str(), real) ? real : mountpoint;
  if (std::string busy = MountpointInUse(mo.mountpoint); !busy.empty()) {
    std::fprintf(stderr, "cachefuse: %s\n", busy.c_str());
    return 1;
  }
  fuse_set_log_func(CaptureFuseLog);
  if (source.find("://") == std::string::npos && ::realpath(source.c_str(), real)) mo.source = real;
  // Files a source reads later, from the daemon's directory (/).
  for (std::string* file : {&mo.credentials_file, &mo.ca_file}) {
    if (!file->empty() && file->front() != '/' && ::realpath(file->c_str(), real)) *file = real;
  }
  if (!mo.cache_dir.empty() && mo.cache_dir.front() != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd)) mo.cache_dir = std::string(cwd) + "/" + mo.cache_dir;
  }
  if (std::string loop = PathLoop(mo); !loop.empty()) {
    std::fprintf(stderr, "cachefuse: %s\n", loop.c_str());
    return 1;
  }

  if (mo.foreground) return RunDaemon(mo, -1);

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    std::perror("cachefuse: pipe");
    return 1;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("cachefuse: fork");
    return 1;
  }
  if (pid == 0) {
    ::close(p[0]);
    ::setsid();
    if (::chdir("/") != 0) {
      // harmless: paths are absolute by now
    }
    ::_exit(RunDaemon(mo, p[1]));
  }
  ::close(p[1]);
  std::string answer;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) answer.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  if (answer.rfind("OK", 0) == 0) return 0;
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (answer.rfind("ERR ", 0) == 0) {
    std::string msg = answer.substr(4);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    std::fprintf(stderr, "cachefuse: %s\n", msg.c_str());
  } else {
    std::fprintf(stderr, "cachefuse: the daemon exited during start-up\n");
  }
  return 1;
}

}  // namespace cachefuse::daemon

int main(int argc, char** argv) {
  return cachefuse::daemon::Main(argc, argv);
}
