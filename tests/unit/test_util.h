// Helpers for unit tests: scratch directories and small file utilities.
#pragma once

#include <string>

namespace cachefuse::test {

// A fresh directory under $TMPDIR (or /var/tmp, which supports O_DIRECT),
// removed with its contents when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, unsigned seed);

}  // namespace cachefuse::test
