#pragma once
/// \file
/// Change ids on the wire: a peer that named "derived-ids" leaves out an id that is
/// sync::derivedChangeId of the change's own fields, sending it all-zero.

#include <outpost/protocol/messages.hpp>
#include <outpost/sync/change.hpp>

namespace outpost::protocol {

/// True for the all-zero id that stands for the derived one (a wire array converts).
[[nodiscard]] inline bool isElidedId(const sync::Uuid& id) noexcept { return id.isNil(); }
/// The change's id, derived when the wire left it out.
[[nodiscard]] sync::Uuid effectiveChangeId(const Change& change);

} // namespace outpost::protocol
