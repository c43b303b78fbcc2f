#include "outpost/protocol/secret.hpp"

#include "outpost/error.hpp"

#include <sodium.h>

#include <cstring>
#include <utility>

namespace outpost::protocol {

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  // sodium_malloc(0) is valid but returns a pointer we must still free; keep it simple.
  data_ = static_cast<std::uint8_t*>(sodium_malloc(size == 0 ? 1 : size));
  if (data_ == nullptr) {
    throw Error(Errc::internal, "cannot allocate guarded memory for a secret");
  }
  sodium_memzero(data_, size == 0 ? 1 : size);
}

SecretBytes SecretBytes::copyOf(std::span<const std::uint8_t> bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) {
    std::memcpy(s.data_, bytes.data(), bytes.size());
  }
  return s;
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) {
    sodium_free(data_); // wipes before unmapping
  }
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) {
      sodium_free(data_);
    }
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes SecretBytes::clone() const { return copyOf(span()); }

bool SecretBytes::equals(std::span<const std::uint8_t> other) const noexcept {
  return other.size() == size_ && (size_ == 0 || sodium_memcmp(data_, other.data(), size_) == 0);
}

} // namespace outpost::protocol
