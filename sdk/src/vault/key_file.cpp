#include "key_file.hpp"

#include <outpost/error.hpp>
#include <outpost/platform/files.hpp>

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <unistd.h>

namespace outpost::vault {

namespace {
constexpr std::array<unsigned char, 4> kMagic = {'O', 'P', 'V', 'K'};
constexpr unsigned char kVersion = 1;
constexpr std::size_t kAadBytes = 4 + 1 + kDatabaseIdBytes + KeyFile::kSaltBytes + 8 + 8;
constexpr std::size_t kFileBytes = kAadBytes + kNonceBytes + KeyFile::kWrappedBytes;

void put64(std::vector<unsigned char>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
}
std::uint64_t get64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | p[i];
  }
  return v;
}

/// Argon2id(pin, salt) keyed-hashed with the device secret: both are needed.
SecretBytes wrappingKey(std::string_view pin, std::span<const unsigned char> deviceSecret,
                        const KeyFile& kf) {
  SecretBytes stretched(kKeyBytes);
  if (crypto_pwhash(stretched.data(), stretched.size(), pin.data(), pin.size(), kf.salt.data(),
                    kf.opsLimit, static_cast<std::size_t>(kf.memLimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw Error(Errc::internal, "not enough memory for the PIN key derivation");
  }
  SecretBytes key(kKeyBytes);
  crypto_generichash(key.data(), key.size(), stretched.data(), stretched.size(),
                     deviceSecret.data(), deviceSecret.size());
  return key;
}
} // namespace

std::vector<unsigned char> KeyFile::serialise() const {
  std::vector<unsigned char> out(kMagic.begin(), kMagic.end());
  out.push_back(kVersion);
  out.insert(out.end(), databaseId.begin(), databaseId.end());
  out.insert(out.end(), salt.begin(), salt.end());
  put64(out, opsLimit);
  put64(out, memLimit);
  out.insert(out.end(), nonce.begin(), nonce.end());
  out.insert(out.end(), wrapped.begin(), wrapped.end());
  return out;
}

KeyFile KeyFile::parse(std::span<const unsigned char> bytes) {
  if (bytes.size() != kFileBytes || std::memcmp(bytes.data(), kMagic.data(), 4) != 0) {
    throw Error(Errc::corrupt, "the vault key file is damaged or not a vault key file");
  }
  if (bytes[4] != kVersion) {
    throw Error(Errc::version_mismatch, "the vault key file has version " +
                                            std::to_string(bytes[4]) +
                                            "; update the app to open it");
  }
  KeyFile kf;
  const unsigned char* p = bytes.data() + 5;
  std::memcpy(kf.databaseId.data(), p, kDatabaseIdBytes);
  p += kDatabaseIdBytes;
  std::memcpy(kf.salt.data(), p, kSaltBytes);
  p += kSaltBytes;
  kf.opsLimit = get64(p);
  kf.memLimit = get64(p + 8);
  p += 16;
  std::memcpy(kf.nonce.data(), p, kNonceBytes);
  p += kNonceBytes;
  std::memcpy(kf.wrapped.data(), p, kWrappedBytes);
  if (kf.opsLimit < crypto_pwhash_OPSLIMIT_MIN || kf.opsLimit > crypto_pwhash_OPSLIMIT_MAX ||
      kf.memLimit < crypto_pwhash_MEMLIMIT_MIN || kf.memLimit > (std::uint64_t{4} << 30)) {
    throw Error(Errc::corrupt, "the vault key file has impossible key-derivation parameters");
  }
  return kf;
}

KeyFile KeyFile::wrap(const DatabaseId& id, std::span<const unsigned char> databaseKey,
                      std::string_view pin, std::span<const unsigned char> deviceSecret,
                      std::uint64_t opsLimit, std::uint64_t memLimit) {
  KeyFile kf;
  kf.databaseId = id;
  randombytes_buf(kf.salt.data(), kf.salt.size());
  randombytes_buf(kf.nonce.data(), kf.nonce.size());
  kf.opsLimit = opsLimit;
  kf.memLimit = memLimit;
  const SecretBytes key = wrappingKey(pin, deviceSecret, kf);
  const auto aad = kf.serialise();
  crypto_aead_xchacha20poly1305_ietf_encrypt(kf.wrapped.data(), nullptr, databaseKey.data(),
                                             databaseKey.size(), aad.data(), kAadBytes, nullptr,
                                             kf.nonce.data(), key.data());
  return kf;
}

std::optional<SecretBytes> KeyFile::unwrap(std::string_view pin,
                                           std::span<const unsigned char> deviceSecret) const {
  const SecretBytes key = wrappingKey(pin, deviceSecret, *this);
  const auto aad = serialise();
  SecretBytes databaseKey(kKeyBytes);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(databaseKey.data(), nullptr, nullptr,
                                                 wrapped.data(), wrapped.size(), aad.data(),
                                                 kAadBytes, nonce.data(), key.data()) != 0) {
    return std::nullopt;
  }
  return databaseKey;
}

void KeyFile::save(const std::filesystem::path& path) const {
  const auto bytes = serialise();
  platform::writeFileAtomically(path, bytes, "the vault key file");
}

KeyFile KeyFile::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(Errc::not_found, "no vault key file at " + path.string());
  }
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
  return parse(bytes);
}

} // namespace outpost::vault
