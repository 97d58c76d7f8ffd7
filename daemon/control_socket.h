// ControlSocket: the Unix socket through which cachefusectl talks to a mount's daemon.
//
// Protocol: the client sends one command line ("stats", "status", "invalidate
// PATH", "forget PATH", "cull"); the daemon answers "ok\n" or "error MESSAGE\n",
// then the payload, and closes. Only root and the mount's owner may connect.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cachefuse::daemon {

class Filesystem;

class ControlSocket {
 public:
  // Listens on <runtime dir>/cachefuse/<pid>.sock.
  static Result<std::unique_ptr<ControlSocket>> Start(Filesystem* fs);
  ~ControlSocket();
  const std::string& path() const { return path_; }

  // The answer to one command line (exposed for tests).
  static std::string Handle(Filesystem* fs, const std::string& line);

 private:
  ControlSocket(Filesystem* fs, std::string path, UniqueFd listen_fd, UniqueFd wake_r, UniqueFd wake_w)
      : fs_(fs),
        path_(std::move(path)),
        listen_fd_(std::move(listen_fd)),
        wake_r_(std::move(wake_r)),
        wake_w_(std::move(wake_w)) {}
  void Loop();
  void Serve(int fd);

  Filesystem* const fs_;
  const std::string path_;
  UniqueFd listen_fd_;
  UniqueFd wake_r_;
  UniqueFd wake_w_;
  std::thread thread_;
};

// The directory the sockets live in for this user.
std::string ControlSocketDir();

}  // namespace cachefuse::daemon
