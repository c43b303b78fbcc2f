#include "outpost/platform/files.hpp"

#include "outpost/error.hpp"

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace outpost::platform {

namespace fs = std::filesystem;

namespace {
void syncDir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
[[noreturn]] void failWrite(const std::string& tmp, std::string_view what, int err) {
  ::unlink(tmp.c_str());
  throw Error(err == ENOSPC ? Errc::disk_full : Errc::io,
              "cannot write " + std::string(what) + ": " + std::strerror(err));
}
} // namespace

void writeFileAtomically(const fs::path& path, std::span<const unsigned char> bytes,
                         std::string_view what) {
  const std::string tmp = path.string() + ".tmp";
  const auto fail = [&](int err) { failWrite(tmp, what, err); };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fail(errno);
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail(err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail(err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    fail(errno);
  }
  syncDir(path.parent_path());
}

void destroyFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      std::vector<unsigned char> noise(static_cast<std::size_t>(st.st_size));
      randombytes_buf(noise.data(), noise.size());
      [[maybe_unused]] const ssize_t n = ::pwrite(fd, noise.data(), noise.size(), 0);
      ::fsync(fd);
    }
    ::close(fd);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw Error(Errc::io,
                "cannot remove " + path.filename().string() + ": " + std::strerror(errno));
  }
  syncDir(path.parent_path());
}

} // namespace outpost::platform
