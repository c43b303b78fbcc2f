// Change ids on the wire: left out when derivable ("derived-ids").

#include <outpost/protocol/convert.hpp>

#include <cstring>

namespace outpost::protocol {

bool isElidedId(const Uuid& id) noexcept {
  std::uint64_t half[2];
  std::memcpy(half, id.data(), sizeof half);
  return (half[0] | half[1]) == 0;
}

sync::Uuid effectiveChangeId(const Change& c) {
  if (!c.changeId.isNil()) {
    return c.changeId;
  }
  return sync::derivedChangeId(c.deviceId, c.recordId, c.field, c.hlc);
}

} // namespace outpost::protocol
