#pragma once
/// \file
/// Secret bytes in libsodium's guarded memory: allocated with `sodium_malloc`
/// (guard pages, locked where the OS allows) and wiped by `sodium_free` when the
/// owner is destroyed. Keys, chaining keys and enrollment secrets live here.

#include <cstddef>
#include <cstdint>
#include <span>

namespace outpost::protocol {

/// A fixed-size buffer of secret bytes, zero-initialised. Move-only: copying a
/// secret is explicit (`clone()`). Not thread-safe. Throws `Error{internal}` when
/// guarded memory cannot be allocated. Requires libsodium to be initialised
/// (an `outpost::Context` exists).
class SecretBytes {
public:
  explicit SecretBytes(std::size_t size);
  /// Copies `bytes` into guarded memory (the caller wipes its own copy).
  static SecretBytes copyOf(std::span<const std::uint8_t> bytes);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  [[nodiscard]] SecretBytes clone() const;
  [[nodiscard]] std::uint8_t* data() noexcept { return data_; }
  [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<std::uint8_t> span() noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<const std::uint8_t> span() const noexcept { return {data_, size_}; }
  /// Constant-time comparison (sodium_memcmp); sizes must match to be equal.
  [[nodiscard]] bool equals(std::span<const std::uint8_t> other) const noexcept;

private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace outpost::protocol
