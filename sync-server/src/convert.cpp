// protocol::Change <-> sync::Change, and the stored form of a field's merge state.

#include <outpost/error.hpp>
#include <outpost/server/store.hpp>

#include <cstring>

namespace outpost::server {

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

sync::Value toSyncValue(const protocol::Value& v) {
  return std::visit(
      [](const auto& x) -> sync::Value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, protocol::Null>) {
          return sync::Null{};
        } else if constexpr (std::is_same_v<T, protocol::Tombstone>) {
          return sync::Tombstone{};
        } else {
          return x;
        }
      },
      v);
}

protocol::Value toWireValue(const sync::Value& v) {
  return std::visit(
      [](const auto& x) -> protocol::Value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, sync::Null>) {
          return protocol::Null{};
        } else if constexpr (std::is_same_v<T, sync::Tombstone>) {
          return protocol::Tombstone{};
        } else {
          return x;
        }
      },
      v);
}

// --- field state codec ----------------------------------------------------------

constexpr std::uint8_t kStateFormat = 1;

void putU64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}
void putU32(std::string& out, std::size_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}
void putUuid(std::string& out, const sync::Uuid& u) {
  out.append(reinterpret_cast<const char*>(u.bytes.data()), u.bytes.size());
}
void putVersion(std::string& out, const sync::FieldVersion& v) {
  putU64(out, v.hlc.value);
  putUuid(out, v.deviceId);
  putUuid(out, v.changeId);
  sync::encodeValue(v.value, out);
}

[[noreturn]] void corrupt() { throw Error(Errc::corrupt, "a stored field state is damaged"); }

struct Reader {
  std::string_view in;
  std::uint8_t u8() {
    if (in.empty()) {
      corrupt();
    }
    const auto v = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    return v;
  }
  std::uint64_t u64() {
    if (in.size() < 8) {
      corrupt();
    }
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= std::uint64_t{static_cast<std::uint8_t>(in[static_cast<std::size_t>(i)])} << (8 * i);
    }
    in.remove_prefix(8);
    return v;
  }
  std::size_t u32() {
    if (in.size() < 4) {
      corrupt();
    }
    std::size_t v = 0;
    for (int i = 0; i < 4; ++i) {
      v |= std::size_t{static_cast<std::uint8_t>(in[static_cast<std::size_t>(i)])} << (8 * i);
    }
    in.remove_prefix(4);
    // Every entry takes at least 8 bytes: a count above that is damage, not a list.
    if (v > in.size()) {
      corrupt();
    }
    return v;
  }
  sync::Uuid uuid() {
    if (in.size() < 16) {
      corrupt();
    }
    sync::Uuid u;
    std::memcpy(u.bytes.data(), in.data(), 16);
    in.remove_prefix(16);
    return u;
  }
  sync::FieldVersion version() {
    sync::FieldVersion v;
    v.hlc = sync::Hlc{u64()};
    v.deviceId = uuid();
    v.changeId = uuid();
    v.value = sync::decodeValue(in);
    return v;
  }
  std::vector<sync::FieldVersion> versions() {
    std::vector<sync::FieldVersion> out(u32());
    for (auto& v : out) {
      v = version();
    }
    return out;
  }
};

} // namespace

sync::Change toSync(const protocol::Change& c) {
  sync::Change s{uuidOf(c.changeId),     uuidOf(c.recordId),
                 c.recordType,           c.field,
                 toSyncValue(c.value),   sync::Hlc{c.hlc},
                 uuidOf(c.deviceId),     sync::Hlc{c.baseHlc},
                 uuidOf(c.baseDeviceId), {}};
  s.resolves.reserve(c.resolves.size());
  for (const auto& r : c.resolves) {
    s.resolves.push_back({sync::Hlc{r.hlc}, uuidOf(r.deviceId)});
  }
  return s;
}

protocol::Change toWire(const sync::Change& c) {
  protocol::Change w;
  w.changeId = c.changeId.bytes;
  w.recordId = c.recordId.bytes;
  w.recordType = c.recordType;
  w.field = c.field;
  w.value = toWireValue(c.value);
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

std::string encodeFieldState(const sync::FieldState& state) {
  std::string out;
  out.push_back(static_cast<char>(kStateFormat));
  out.push_back(state.current ? 1 : 0);
  if (state.current) {
    putVersion(out, *state.current);
  }
  putU32(out, state.conflicts.size());
  for (const auto& v : state.conflicts) {
    putVersion(out, v);
  }
  putU32(out, state.entries.size());
  for (const auto& v : state.entries) {
    putVersion(out, v);
  }
  putU32(out, state.superseded.size());
  for (const auto& v : state.superseded) {
    putU64(out, v.hlc.value);
    putUuid(out, v.deviceId);
  }
  return out;
}

sync::FieldState decodeFieldState(std::string_view bytes) {
  Reader r{bytes};
  if (r.u8() != kStateFormat) {
    corrupt();
  }
  sync::FieldState s;
  const std::uint8_t hasCurrent = r.u8();
  if (hasCurrent > 1) {
    corrupt();
  }
  if (hasCurrent == 1) {
    s.current = r.version();
  }
  s.conflicts = r.versions();
  s.entries = r.versions();
  s.superseded.resize(r.u32());
  for (auto& v : s.superseded) {
    v.hlc = sync::Hlc{r.u64()};
    v.deviceId = r.uuid();
  }
  if (!r.in.empty()) {
    corrupt();
  }
  return s;
}

} // namespace outpost::server
