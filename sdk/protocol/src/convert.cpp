// protocol::Change <-> sync::Change.

#include <outpost/error.hpp>
#include <outpost/protocol/convert.hpp>

#include <algorithm>
#include <cstring>

namespace outpost::protocol {

namespace {

sync::Uuid uuidOf(const protocol::Uuid& raw) {
  sync::Uuid u;
  u.bytes = raw;
  return u;
}

// The two Value variants list the same alternatives in the same order (value.hpp
// says so); the static_asserts keep it that way.
static_assert(std::variant_size_v<sync::Value> == std::variant_size_v<protocol::Value>);
static_assert(std::is_same_v<std::variant_alternative_t<5, sync::Value>,
                             std::variant_alternative_t<5, protocol::Value>>);
static_assert(std::is_same_v<std::variant_alternative_t<6, sync::Value>,
                             std::variant_alternative_t<6, protocol::Value>>);
static_assert(std::is_same_v<std::variant_alternative_t<7, sync::Value>,
                             std::variant_alternative_t<7, protocol::Value>>);

/// The value, copied from an lvalue or taken from an rvalue.
template <class V>
sync::Value toSyncValue(V&& v) {
  return std::visit(
      [](auto&& x) -> sync::Value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, protocol::Null>) {
          return sync::Null{};
        } else if constexpr (std::is_same_v<T, protocol::Tombstone>) {
          return sync::Tombstone{};
        } else {
          return std::forward<decltype(x)>(x);
        }
      },
      std::forward<V>(v));
}

/// The value, copied from an lvalue or taken from an rvalue.
template <class V>
protocol::Value wireValueOf(V&& v) {
  return std::visit(
      [](auto&& x) -> protocol::Value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, sync::Null>) {
          return protocol::Null{};
        } else if constexpr (std::is_same_v<T, sync::Tombstone>) {
          return protocol::Tombstone{};
        } else {
          return std::forward<decltype(x)>(x);
        }
      },
      std::forward<V>(v));
}

} // namespace

Value toWireValue(sync::Value&& value) { return wireValueOf(std::move(value)); }

bool isElidedId(const Uuid& id) noexcept {
  std::uint64_t half[2];
  std::memcpy(half, id.data(), sizeof half);
  return (half[0] | half[1]) == 0;
}

Uuid effectiveChangeId(const Change& c) {
  if (!isElidedId(c.changeId)) {
    return c.changeId;
  }
  return sync::derivedChangeId(uuidOf(c.deviceId), uuidOf(c.recordId), c.field, sync::Hlc{c.hlc})
      .bytes;
}

sync::Change toSync(const protocol::Change& c) { return toSync(c, effectiveChangeId(c)); }

sync::Change toSync(protocol::Change&& c, const Uuid& changeId) {
  sync::Change s{uuidOf(changeId),
                 uuidOf(c.recordId),
                 std::move(c.recordType),
                 std::move(c.field),
                 toSyncValue(std::move(c.value)),
                 sync::Hlc{c.hlc},
                 uuidOf(c.deviceId),
                 sync::Hlc{c.baseHlc},
                 uuidOf(c.baseDeviceId),
                 {}};
  s.resolves.reserve(c.resolves.size());
  for (const auto& r : c.resolves) {
    s.resolves.push_back({sync::Hlc{r.hlc}, uuidOf(r.deviceId)});
  }
  return s;
}

sync::Change toSync(const protocol::Change& c, const Uuid& changeId) {
  return toSync(protocol::Change(c), changeId);
}

namespace {

/// The change for the wire, its strings and value copied from an lvalue or taken
/// from an rvalue.
template <class C>
protocol::Change wireChangeOf(C&& c, bool elideDerivedId) {
  protocol::Change w;
  w.changeId = c.changeId.bytes;
  if (elideDerivedId &&
      c.changeId == sync::derivedChangeId(c.deviceId, c.recordId, c.field, c.hlc)) {
    w.changeId = {};
  }
  w.recordId = c.recordId.bytes;
  w.recordType = std::forward<C>(c).recordType;
  w.field = std::forward<C>(c).field;
  w.value = wireValueOf(std::forward<C>(c).value);
  w.hlc = c.hlc.value;
  w.deviceId = c.deviceId.bytes;
  w.baseHlc = c.baseHlc.value;
  w.baseDeviceId = c.baseDeviceId.bytes;
  w.resolves.reserve(c.resolves.size());
  for (const auto& r : c.resolves) {
    w.resolves.push_back({r.hlc.value, r.deviceId.bytes});
  }
  return w;
}

} // namespace

protocol::Change toWire(const sync::Change& c, bool elideDerivedId) {
  return wireChangeOf(c, elideDerivedId);
}

protocol::Change toWire(sync::Change&& c, bool elideDerivedId) {
  return wireChangeOf(std::move(c), elideDerivedId);
}

} // namespace outpost::protocol
