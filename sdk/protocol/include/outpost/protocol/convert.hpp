#pragma once
/// \file
/// protocol::Change <-> sync::Change: the same fields; the wire uses plain arrays.

#include <outpost/protocol/messages.hpp>
#include <outpost/sync/change.hpp>

#include <vector>

namespace outpost::protocol {

/// A wire change with an all-zero change id (the peer left out a derivable id,
/// "derived-ids") gets its derived id.
[[nodiscard]] sync::Change toSync(const Change& change);
/// The same with the change's id given (e.g. derived by the caller for a whole write).
[[nodiscard]] sync::Change toSync(const Change& change, const Uuid& changeId);
/// The same, taking the change's strings and value instead of copying them.
[[nodiscard]] sync::Change toSync(Change&& change, const Uuid& changeId);
/// With `elideDerivedId`, a change whose id is sync::derivedChangeId of its own
/// fields goes with an all-zero id (only to a peer that named "derived-ids").
[[nodiscard]] Change toWire(const sync::Change& change, bool elideDerivedId = false);
/// The same, taking the change's strings, value and resolved versions instead of
/// copying them; its ids, HLCs and devices stay as they were.
[[nodiscard]] Change toWire(sync::Change&& change, bool elideDerivedId = false);
/// A value for the wire, taken from `value` (its strings and lists are moved).
[[nodiscard]] Value toWireValue(sync::Value&& value);
/// True for the all-zero id that stands for the derived one.
[[nodiscard]] bool isElidedId(const Uuid& id) noexcept;
/// The change's id, derived when the wire left it out.
[[nodiscard]] Uuid effectiveChangeId(const Change& change);

} // namespace outpost::protocol
