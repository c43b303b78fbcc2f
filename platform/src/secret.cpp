#include "outpost/secret.hpp"

#include "outpost/error.hpp"

#include <sodium.h>

#include <cassert>
#include <cstring>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace outpost {

namespace {

/// Small secrets (keys, chaining keys, hashes: 32 or 64 bytes) share slabs of guarded
/// memory. `sodium_malloc` maps, protects, locks and marks pages for every allocation
/// (about eight system calls with its `sodium_free`, and a TLB shootdown on every other
/// core for each protection change); a Noise handshake makes a dozen such secrets. A
/// slab is one `sodium_malloc`: guard pages at both ends, locked out of swap where the
/// OS allows, left out of core dumps. A slot is wiped when it is freed, before it can be
/// handed out again. Slabs are kept for the life of the process, so the pool holds its
/// peak: 64 bytes per small secret alive at once, 16 KiB at a time.
class SecretPool {
public:
  static constexpr std::size_t kSlab = 16 * 1024;
  static constexpr std::size_t kSlots = kSlab / SecretBytes::kPooledMax;

  unsigned char* allocate() {
    const std::scoped_lock lock(mutex_);
    if (free_.empty()) {
      // Room first, for the slab and for every slot of every slab (so that release()
      // never allocates): nothing can throw once the slab is mapped.
      slabs_.reserve(slabs_.size() + 1);
      free_.reserve((slabs_.size() + 1) * kSlots);
      auto* slab = static_cast<unsigned char*>(sodium_malloc(kSlab));
      if (slab == nullptr) {
        return nullptr;
      }
      sodium_memzero(slab, kSlab);
      // Handed out from the slab's start.
      for (std::size_t at = kSlab; at > 0; at -= SecretBytes::kPooledMax) {
        free_.push_back(slab + at - SecretBytes::kPooledMax);
      }
      slabs_.push_back(slab);
    }
    unsigned char* slot = free_.back();
    free_.pop_back();
    return slot;
  }

  void release(unsigned char* slot) noexcept {
    sodium_memzero(slot, SecretBytes::kPooledMax);
    const std::scoped_lock lock(mutex_);
    assert(owns(slot));
    free_.push_back(slot); // within the capacity reserved in allocate(): cannot throw
  }

  bool owns(const unsigned char* p) const noexcept {
    for (const unsigned char* slab : slabs_) {
      if (std::less_equal<>{}(slab, p) && std::less<>{}(p, slab + kSlab)) {
        return true;
      }
    }
    return false;
  }

  bool contains(const unsigned char* p) const noexcept {
    const std::scoped_lock lock(mutex_);
    return owns(p);
  }

  std::size_t slabs() const noexcept {
    const std::scoped_lock lock(mutex_);
    return slabs_.size();
  }

private:
  mutable std::mutex mutex_;
  std::vector<unsigned char*> slabs_;
  std::vector<unsigned char*> free_;
};

/// Never destroyed: a SecretBytes in static storage may outlive any other static.
SecretPool& pool() {
  static auto* p = new SecretPool;
  return *p;
}

} // namespace

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  if (size == 0) {
    return;
  }
  data_ = size <= kPooledMax ? pool().allocate() : static_cast<unsigned char*>(sodium_malloc(size));
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

bool SecretBytes::pooled() const noexcept { return data_ != nullptr && pool().contains(data_); }

std::size_t SecretBytes::poolSlabs() noexcept { return pool().slabs(); }

void SecretBytes::reset() noexcept {
  if (data_ != nullptr) {
    if (size_ <= kPooledMax) {
      pool().release(data_); // wipes the whole slot
    } else {
      sodium_free(data_); // wipes before freeing
    }
  }
  data_ = nullptr;
  size_ = 0;
}

} // namespace outpost
