#pragma once
/// \file
/// Secret bytes in libsodium's guarded memory (`sodium_malloc`): guard pages around
/// it, locked out of swap where the OS allows it, left out of core dumps, and wiped when
/// freed. Secrets of up to 64 bytes (keys, chaining keys, hashes) share slabs of such
/// memory, one `sodium_malloc` per 256 of them; larger ones have their own.

#include <cstddef>
#include <span>

namespace outpost {

/// Owns `size` bytes of guarded memory, zero-initialised. Wiped and freed on
/// destruction. Move-only. Requires an `outpost::Context` to exist (libsodium
/// initialised).
class SecretBytes {
public:
  /// The largest secret that takes a slot of the shared slabs.
  static constexpr std::size_t kPooledMax = 64;

  SecretBytes() noexcept = default;
  explicit SecretBytes(std::size_t size);
  /// A copy of `bytes` in guarded memory.
  static SecretBytes copyOf(std::span<const unsigned char> bytes);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  [[nodiscard]] unsigned char* data() noexcept { return data_; }
  [[nodiscard]] const unsigned char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<const unsigned char> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<unsigned char> bytes() noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<const unsigned char> span() const noexcept { return bytes(); }
  [[nodiscard]] std::span<unsigned char> span() noexcept { return bytes(); }
  /// An explicit copy in new guarded memory.
  [[nodiscard]] SecretBytes clone() const { return copyOf(bytes()); }
  /// Constant-time comparison (sodium_memcmp); different sizes are never equal.
  [[nodiscard]] bool equals(std::span<const unsigned char> other) const noexcept;
  /// Wipes and frees now.
  void reset() noexcept;
  /// Whether these bytes sit in a slot of the shared slabs (a non-empty secret of at
  /// most kPooledMax bytes).
  [[nodiscard]] bool pooled() const noexcept;
  /// How many slabs the process's pool holds (it keeps its peak).
  [[nodiscard]] static std::size_t poolSlabs() noexcept;

private:
  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace outpost
