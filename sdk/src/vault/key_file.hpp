#pragma once
/// \file
/// The vault's key file: the database key wrapped by a key derived from the
/// worker's PIN (Argon2id) and the device secret, with the parameters needed to
/// derive it again. Layout (little-endian), version 1:
///
///   "OPVK" | version u8 | database id 16 | salt 16 | opslimit u64 | memlimit u64
///   | nonce 24 | wrapped key 32 + tag 16
///
/// Everything before the nonce is the associated data of the wrap, so changing
/// any parameter makes unwrapping fail.

#include "page_cipher.hpp"

#include <outpost/secret.hpp>

#include <array>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

namespace outpost::vault {

struct KeyFile {
  static constexpr std::size_t kSaltBytes = 16;
  static constexpr std::size_t kWrappedBytes = kKeyBytes + kTagBytes;

  DatabaseId databaseId{};
  std::array<unsigned char, kSaltBytes> salt{};
  std::uint64_t opsLimit = 0;
  std::uint64_t memLimit = 0;
  std::array<unsigned char, kNonceBytes> nonce{};
  std::array<unsigned char, kWrappedBytes> wrapped{};

  /// Wraps `databaseKey` under (pin, deviceSecret) with a fresh salt and nonce.
  static KeyFile wrap(const DatabaseId& id, std::span<const unsigned char> databaseKey,
                      std::string_view pin, std::span<const unsigned char> deviceSecret,
                      std::uint64_t opsLimit, std::uint64_t memLimit);

  /// The database key, or nullopt if the PIN or device secret is wrong.
  [[nodiscard]] std::optional<SecretBytes>
  unwrap(std::string_view pin, std::span<const unsigned char> deviceSecret) const;

  [[nodiscard]] std::vector<unsigned char> serialise() const;
  /// Throws Error{corrupt} for a file that is not a version-1 key file.
  static KeyFile parse(std::span<const unsigned char> bytes);

  /// Writes atomically (temp file, fsync, rename, fsync of the folder).
  void save(const std::filesystem::path& path) const;
  static KeyFile load(const std::filesystem::path& path);
};

} // namespace outpost::vault
