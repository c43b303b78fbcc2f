#pragma once
/// \file
/// The platform key store: small secrets bound to this device (the device secret
/// that is combined with the worker's PIN, the sealed commit counter, the
/// wrong-PIN counter).
///
/// Implementations: `FileKeyStore` (Linux; a 0600 file per item; development and
/// test grade, see docs/security-model.md), and the Android Keystore / iOS Keychain
/// adapters whose contract is in platform/android and platform/ios.

#include "outpost/secret.hpp"

#include <filesystem>
#include <optional>
#include <span>
#include <string_view>

namespace outpost::platform {

/// Contract every key store meets:
/// - `store` is atomic and durable when it returns (an item is either old or new
///   after a crash, never torn);
/// - `load` returns exactly what was stored, or nullopt if the item is absent;
/// - `erase` destroys the item so that it cannot be recovered by the app;
/// - names are short ASCII identifiers ([a-z0-9._-], at most 64 characters).
/// Thread-safe for distinct names; callers serialise use of one name.
class KeyStore {
public:
  virtual ~KeyStore() = default;
  [[nodiscard]] virtual std::optional<SecretBytes> load(std::string_view name) = 0;
  virtual void store(std::string_view name, std::span<const unsigned char> value) = 0;
  virtual void erase(std::string_view name) = 0;
};

/// Linux development key store: one 0600 file per item in a 0700 folder, written
/// with write-to-temp + fsync + rename. It adds no protection beyond file
/// permissions: anyone who can read the folder has the device secret.
class FileKeyStore final : public KeyStore {
public:
  /// Creates `dir` (0700) if needed. Throws Error{io} if it cannot.
  explicit FileKeyStore(std::filesystem::path dir);
  [[nodiscard]] std::optional<SecretBytes> load(std::string_view name) override;
  void store(std::string_view name, std::span<const unsigned char> value) override;
  void erase(std::string_view name) override;

private:
  [[nodiscard]] std::filesystem::path pathOf(std::string_view name) const;
  std::filesystem::path dir_;
};

} // namespace outpost::platform
