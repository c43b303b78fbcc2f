#pragma once
/// \file
/// protocol::Change <-> sync::Change: the same fields; the wire uses plain arrays.

#include <outpost/protocol/messages.hpp>
#include <outpost/sync/change.hpp>

namespace outpost::protocol {

[[nodiscard]] sync::Change toSync(const Change& change);
[[nodiscard]] Change toWire(const sync::Change& change);

} // namespace outpost::protocol
