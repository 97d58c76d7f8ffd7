// Backend helpers shared by every source: path checks and the SOURCE dispatcher.
#include "netfs_backends/backend.h"

#include "netfs_backends/posix/posix_backend.h"

namespace cachefuse::netfs {

bool IsCleanRelativePath(const std::string& path) {
  if (path.empty()) return true;
  if (path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view comp(path.data() + start, end - start);
    if (comp.empty() || comp == "." || comp == "..") return false;
    start = end + 1;
  }
  return path.find('\0') == std::string::npos;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir + "/" + name;
}

Result<std::unique_ptr<Backend>> OpenBackend(const std::string& source) {
  for (const char* scheme : {"http://", "https://", "nfs://", "smb://"}) {
    if (source.rfind(scheme, 0) == 0) {
      return Status::NotSupported(std::string("source scheme ") + scheme +
                                  " is not supported yet; mount it with the kernel client and give its path");
    }
  }
  if (source.find("://") != std::string::npos) {
    return Status::Invalid("unknown source scheme in '" + source + "'");
  }
  auto posix = PosixBackend::Open(source);
  if (!posix.ok()) return posix.status();
  return std::unique_ptr<Backend>(std::move(posix.value()));
}

}  // namespace cachefuse::netfs
