#include "outpost/error.hpp"
#include "outpost/platform/files.hpp"
#include "outpost/platform/key_store.hpp"

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace outpost::platform {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void ioFail(const std::string& what, int err) {
  throw Error(err == ENOSPC ? Errc::disk_full : Errc::io,
              "key store: " + what + ": " + std::strerror(err));
}

void checkName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    throw Error(Errc::invalid_argument, "key store item names are 1 to 64 characters");
  }
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      throw Error(Errc::invalid_argument, "key store item names use [a-z0-9._-] only");
    }
  }
}

} // namespace

FileKeyStore::FileKeyStore(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    throw Error(Errc::io, "key store: cannot create " + dir_.string() + ": " + ec.message());
  }
  ::chmod(dir_.c_str(), 0700);
}

fs::path FileKeyStore::pathOf(std::string_view name) const {
  checkName(name);
  return dir_ / (std::string(name) + ".key");
}

std::optional<SecretBytes> FileKeyStore::load(std::string_view name) {
  const fs::path path = pathOf(name);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    ioFail("open " + std::string(name), errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    ioFail("stat " + std::string(name), err);
  }
  SecretBytes value(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < value.size()) {
    const ssize_t n = ::read(fd, value.data() + done, value.size() - done);
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      ioFail("read " + std::string(name), err);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return value;
}

void FileKeyStore::store(std::string_view name, std::span<const unsigned char> value) {
  writeFileAtomically(pathOf(name), value, "key store item " + std::string(name));
}

void FileKeyStore::erase(std::string_view name) { destroyFile(pathOf(name)); }

} // namespace outpost::platform
