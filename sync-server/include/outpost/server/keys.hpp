#pragma once
/// \file
/// The server's keys, in a FileKeyStore at DIR/keys: the static Noise key pair that
/// devices pin ("server-static") and the secret that keys the enrollment code hashes
/// ("enrollment-secret").

#include <outpost/protocol/noise.hpp>
#include <outpost/secret.hpp>

#include <filesystem>

namespace outpost {
class Context;
}

namespace outpost::server {

struct ServerKeys {
  protocol::noise::KeyPair staticKey;
  SecretBytes enrollmentSecret{32};

  [[nodiscard]] static std::filesystem::path keysDir(const std::filesystem::path& dataDir);
  /// Creates fresh keys in `dataDir`. Throws Error{already_exists} when keys exist
  /// (never overwrites: devices pin the public key).
  [[nodiscard]] static ServerKeys create(const Context& context,
                                         const std::filesystem::path& dataDir);
  /// Loads the keys. Throws Error{not_found} (saying to run `outpostctl init`) when
  /// they are missing, Error{corrupt} when they have the wrong size.
  [[nodiscard]] static ServerKeys load(const std::filesystem::path& dataDir);
};

} // namespace outpost::server
