// Change ids on the wire: left out when derivable ("derived-ids").

#include <outpost/protocol/convert.hpp>

namespace outpost::protocol {

sync::Uuid effectiveChangeId(const Change& c) {
  if (!c.changeId.isNil()) {
    return c.changeId;
  }
  return sync::derivedChangeId(c.deviceId, c.recordId, c.field, c.hlc);
}

} // namespace outpost::protocol
