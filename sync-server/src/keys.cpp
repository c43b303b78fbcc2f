#include <outpost/error.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/server/keys.hpp>

#include <sodium.h>

namespace outpost::server {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kStatic = "server-static";
constexpr std::string_view kEnrollment = "enrollment-secret";
} // namespace

fs::path ServerKeys::keysDir(const fs::path& dataDir) { return dataDir / "keys"; }

ServerKeys ServerKeys::create(const Context& context, const fs::path& dataDir) {
  platform::FileKeyStore store(keysDir(dataDir));
  if (store.load(kStatic) || store.load(kEnrollment)) {
    throw Error(Errc::already_exists, "server keys already exist in '" + keysDir(dataDir).string() +
                                          "'; devices pin them, so they are never replaced");
  }
  ServerKeys keys{protocol::noise::KeyPair::generate(context), SecretBytes(32)};
  randombytes_buf(keys.enrollmentSecret.data(), keys.enrollmentSecret.size());
  store.store(kEnrollment, keys.enrollmentSecret.span());
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
  if (secret->size() != protocol::noise::kKeySize || enrollment->size() != 32) {
    throw Error(Errc::corrupt, "the server keys in '" + keysDir(dataDir).string() +
                                   "' are damaged; restore them from the backup");
  }
  return ServerKeys{protocol::noise::KeyPair::fromSecret(secret->span()), std::move(*enrollment)};
}

} // namespace outpost::server
