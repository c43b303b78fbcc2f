#pragma once
/// \file
/// The server's keys, in a FileKeyStore at DIR/keys (files `<name>.key`): the static
/// Noise key pair that devices pin ("server-static"), the secret that keys the
/// enrollment code hashes ("enrollment-secret"), and the Ed25519 key that signs the
/// audit chain ("audit-signing").

#include <outpost/protocol/noise.hpp>
#include <outpost/secret.hpp>

#include <array>
#include <filesystem>

namespace outpost {
class Context;
}

namespace outpost::server {

struct ServerKeys {
  protocol::noise::KeyPair staticKey;
  SecretBytes enrollmentSecret{32};
  /// Ed25519 (libsodium's 64-byte secret key form) and its public half.
  SecretBytes auditSigningKey{64};
  std::array<std::uint8_t, 32> auditPublicKey{};

  [[nodiscard]] static std::filesystem::path keysDir(const std::filesystem::path& dataDir);
  /// Creates fresh keys in `dataDir`. Throws Error{already_exists} when keys exist
  /// (never overwrites: devices pin the public key).
  [[nodiscard]] static ServerKeys create(const Context& context,
                                         const std::filesystem::path& dataDir);
  /// Loads the keys. Throws Error{not_found} (saying to run `outpostctl init`) when
  /// they are missing, Error{corrupt} when they have the wrong size. A folder made
  /// before the audit chain existed gets its audit key here, once (created
  /// exclusively: two programs starting together agree on one key).
  [[nodiscard]] static ServerKeys load(const std::filesystem::path& dataDir);
  [[nodiscard]] ServerKeys clone() const;
};

} // namespace outpost::server
