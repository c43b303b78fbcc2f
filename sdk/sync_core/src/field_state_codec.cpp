// The stored form of a field's merge state (server store and device vault).

#include "outpost/sync/merge.hpp"

#include <outpost/error.hpp>

#include <cstring>

namespace outpost::sync {

namespace {

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
void putUuid(std::string& out, const Uuid& u) {
  out.append(reinterpret_cast<const char*>(u.bytes.data()), u.bytes.size());
}
void putVersion(std::string& out, const FieldVersion& v) {
  putU64(out, v.hlc.value);
  putUuid(out, v.deviceId);
  putUuid(out, v.changeId);
  encodeValue(v.value, out);
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
  Uuid uuid() {
    if (in.size() < 16) {
      corrupt();
    }
    Uuid u;
    std::memcpy(u.bytes.data(), in.data(), 16);
    in.remove_prefix(16);
    return u;
  }
  FieldVersion version() {
    FieldVersion v;
    v.hlc = Hlc{u64()};
    v.deviceId = uuid();
    v.changeId = uuid();
    v.value = decodeValue(in);
    return v;
  }
  std::vector<FieldVersion> versions() {
    std::vector<FieldVersion> out(u32());
    for (auto& v : out) {
      v = version();
    }
    return out;
  }
};

} // namespace

std::string encodeFieldState(const FieldState& state) {
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

FieldState decodeFieldState(std::string_view bytes) {
  Reader r{bytes};
  if (r.u8() != kStateFormat) {
    corrupt();
  }
  FieldState s;
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
    v.hlc = Hlc{r.u64()};
    v.deviceId = r.uuid();
  }
  if (!r.in.empty()) {
    corrupt();
  }
  return s;
}

constexpr std::uint8_t kRecordStateFormat = 1;

std::string encodeRecordState(const RecordState& record) {
  std::string out;
  out.push_back(static_cast<char>(kRecordStateFormat));
  putU32(out, record.fields.size());
  for (const auto& [name, state] : record.fields) {
    putU32(out, name.size());
    out.append(name);
    const std::string bytes = encodeFieldState(state);
    putU32(out, bytes.size());
    out.append(bytes);
  }
  return out;
}

RecordState decodeRecordState(std::string_view bytes) {
  RecordState record;
  if (bytes.empty()) {
    return record;
  }
  Reader r{bytes};
  if (r.u8() != kRecordStateFormat) {
    corrupt();
  }
  const std::size_t n = r.u32();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t nameSize = r.u32();
    std::string name(r.in.substr(0, nameSize));
    r.in.remove_prefix(nameSize);
    const std::size_t stateSize = r.u32();
    const std::string_view state = r.in.substr(0, stateSize);
    r.in.remove_prefix(stateSize);
    if (!record.fields.emplace(std::move(name), decodeFieldState(state)).second) {
      corrupt(); // a field twice
    }
  }
  if (!r.in.empty()) {
    corrupt();
  }
  return record;
}

} // namespace outpost::sync
