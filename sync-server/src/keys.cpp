#include <outpost/error.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/server/keys.hpp>

#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace outpost::server {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kStatic = "server-static";
constexpr std::string_view kEnrollment = "enrollment-secret";
constexpr std::string_view kAudit = "audit-signing";

SecretBytes newAuditKey(std::array<std::uint8_t, 32>& publicKey) {
  SecretBytes secret(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(publicKey.data(), secret.data());
  return secret;
}

/// The audit key of a folder initialised before it existed: written under a
/// temporary name, then linked into place only if no other program did it first.
void addMissingAuditKey(platform::FileKeyStore& store, const fs::path& dir) {
  std::array<std::uint8_t, 32> publicKey{};
  const SecretBytes secret = newAuditKey(publicKey);
  std::array<unsigned char, 8> r{};
  randombytes_buf(r.data(), r.size());
  std::string temp = std::string(kAudit) + "-new-";
  for (unsigned char c : r) {
    temp += "0123456789abcdef"[c >> 4];
    temp += "0123456789abcdef"[c & 15];
  }
  store.store(temp, secret.span());
  const fs::path from = dir / (temp + ".key");
  const fs::path to = dir / (std::string(kAudit) + ".key");
  const int rc = ::link(from.c_str(), to.c_str());
  const int err = errno;
  std::error_code ignored;
  fs::remove(from, ignored);
  if (rc != 0 && err != EEXIST) {
    throw Error(Errc::io, "cannot create the audit key in '" + dir.string() +
                              "': " + std::strerror(err) + "; check the folder's permissions");
  }
}
} // namespace

fs::path ServerKeys::keysDir(const fs::path& dataDir) { return dataDir / "keys"; }

ServerKeys ServerKeys::create(const Context& context, const fs::path& dataDir) {
  platform::FileKeyStore store(keysDir(dataDir));
  if (store.load(kStatic) || store.load(kEnrollment) || store.load(kAudit)) {
    throw Error(Errc::already_exists, "server keys already exist in '" + keysDir(dataDir).string() +
                                          "'; devices pin them, so they are never replaced");
  }
  ServerKeys keys{protocol::noise::KeyPair::generate(context),
                  SecretBytes(32),
                  SecretBytes(crypto_sign_SECRETKEYBYTES),
                  {}};
  randombytes_buf(keys.enrollmentSecret.data(), keys.enrollmentSecret.size());
  keys.auditSigningKey = newAuditKey(keys.auditPublicKey);
  store.store(kEnrollment, keys.enrollmentSecret.span());
  store.store(kAudit, keys.auditSigningKey.span());
  store.store(kStatic, keys.staticKey.secretKey.span());
  return keys;
}

ServerKeys ServerKeys::load(const fs::path& dataDir) {
  if (!fs::exists(keysDir(dataDir))) {
    throw Error(Errc::not_found, "no server keys in '" + dataDir.string() +
                                     "'; run 'outpostctl --data " + dataDir.string() +
                                     " init' first");
  }
  platform::FileKeyStore store(keysDir(dataDir));
  auto secret = store.load(kStatic);
  auto enrollment = store.load(kEnrollment);
  if (!secret || !enrollment) {
    throw Error(Errc::not_found, "the server keys in '" + keysDir(dataDir).string() +
                                     "' are incomplete; restore them from the backup");
  }
  auto audit = store.load(kAudit);
  if (!audit) {
    addMissingAuditKey(store, keysDir(dataDir));
    audit = store.load(kAudit);
  }
  if (secret->size() != protocol::noise::kKeySize || enrollment->size() != 32 || !audit ||
      audit->size() != crypto_sign_SECRETKEYBYTES) {
    throw Error(Errc::corrupt, "the server keys in '" + keysDir(dataDir).string() +
                                   "' are damaged; restore them from the backup");
  }
  ServerKeys keys{protocol::noise::KeyPair::fromSecret(secret->span()),
                  std::move(*enrollment),
                  std::move(*audit),
                  {}};
  crypto_sign_ed25519_sk_to_pk(keys.auditPublicKey.data(), keys.auditSigningKey.data());
  return keys;
}

ServerKeys ServerKeys::clone() const {
  return ServerKeys{staticKey.clone(), enrollmentSecret.clone(), auditSigningKey.clone(),
                    auditPublicKey};
}

} // namespace outpost::server
