#include "outpost/secret.hpp"

#include "outpost/error.hpp"

#include <sodium.h>

#include <cstring>
#include <utility>

namespace outpost {

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  if (size == 0) {
    return;
  }
  data_ = static_cast<unsigned char*>(sodium_malloc(size));
  if (data_ == nullptr) {
    size_ = 0;
    throw Error(Errc::internal, "out of guarded memory for key material");
  }
  sodium_memzero(data_, size);
}

SecretBytes SecretBytes::copyOf(std::span<const unsigned char> bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) {
    std::memcpy(s.data_, bytes.data(), bytes.size());
  }
  return s;
}

SecretBytes::~SecretBytes() { reset(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

bool SecretBytes::equals(std::span<const unsigned char> other) const noexcept {
  return other.size() == size_ && (size_ == 0 || sodium_memcmp(data_, other.data(), size_) == 0);
}

void SecretBytes::reset() noexcept {
  if (data_ != nullptr) {
    sodium_free(data_); // wipes before freeing
  }
  data_ = nullptr;
  size_ = 0;
}

} // namespace outpost
