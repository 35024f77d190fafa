#include "moeplan/Support/Files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace moeplan::files {

void writeAtomically(const std::string &path, std::string_view bytes) {
  // Same directory as the target, so that rename stays within one file system; the pid
  // keeps ranks or processes writing the same path from sharing a temporary.
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string &what) {
    const std::string why = std::strerror(errno);
    std::remove(temporary.c_str());
    throw WriteError(what + ": cannot write: " + why);
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    throw WriteError(path + ": cannot write: " + why);
  }
  const char *data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      fail(path);
    }
    data += n, left -= size_t(n);
  }
  // No fsync: the rename protects against a process that dies mid-write (the failure the
  // runtime has); surviving a power cut would cost a disk flush per file.
  if (::close(fd) != 0) fail(path);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail(path);
}

} // namespace moeplan::files
