#include "outpost/sync/change.hpp"

#include <sodium.h>

#include <array>
#include <cstring>

namespace outpost::sync {

std::string_view mergePolicyName(MergePolicy policy) noexcept {
  switch (policy) {
  case MergePolicy::lww:
    return "lww";
  case MergePolicy::appendOnly:
    return "append-only";
  case MergePolicy::immutableAfterSign:
    return "immutable-after-sign";
  }
  return "unknown";
}

std::optional<MergePolicy> parseMergePolicy(std::string_view name) noexcept {
  for (const MergePolicy p :
       {MergePolicy::lww, MergePolicy::appendOnly, MergePolicy::immutableAfterSign}) {
    if (mergePolicyName(p) == name) {
      return p;
    }
  }
  return std::nullopt;
}

static_assert(sizeof(crypto_generichash_state) <= 384 && alignof(crypto_generichash_state) <= 64);

ChangeIdDeriver::ChangeIdDeriver(const Uuid& device, const Uuid& record, Hlc hlc) noexcept
    : prefix_{} {
  auto* st = reinterpret_cast<crypto_generichash_state*>(prefix_.data());
  crypto_generichash_init(st, nullptr, 0, 16);
  crypto_generichash_update(st, device.bytes.data(), device.bytes.size());
  crypto_generichash_update(st, record.bytes.data(), record.bytes.size());
  std::array<unsigned char, 8> h{};
  for (std::size_t k = 0; k < 8; ++k) {
    h[k] = static_cast<unsigned char>(hlc.value >> (56 - 8 * k));
  }
  crypto_generichash_update(st, h.data(), h.size());
}

Uuid ChangeIdDeriver::operator()(std::string_view field) const noexcept {
  crypto_generichash_state st;
  std::memcpy(&st, prefix_.data(), sizeof st);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(field.data()),
                            field.size());
  Uuid id;
  crypto_generichash_final(&st, id.bytes.data(), id.bytes.size());
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x80);
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);
  return id;
}

Uuid derivedChangeId(const Uuid& device, const Uuid& record, std::string_view field, Hlc hlc) {
  return ChangeIdDeriver(device, record, hlc)(field);
}

} // namespace outpost::sync
