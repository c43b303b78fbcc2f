// The stored form of a field's merge state (server store and device vault).

#include "outpost/sync/merge.hpp"

#include <outpost/error.hpp>

#include <algorithm>
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

// --- record state codec ---------------------------------------------------------
//
// Format 3, a record's merge state in one blob:
//   u8 3
//   varint device count, then each device id (16 bytes), in order of first use
//   varint field count, then each field, in name order:
//     varint name length, name
//     u8 parts: kCurrent | kConflicts | kEntries | kSuperseded, those the field has
//     the current version, if there is one
//     conflicts, entries, superseded, those there are: varint count, then each
//   a version: stamp, change id (16 bytes) unless the stamp says it is derived,
//     value (encodeValue)
//   a superseded version id: stamp, never flagged derived
//   a stamp: varint (device index << 2 | 2 when the change id is derived (left
//   out: all-zero in memory) | 1 when its HLC differs from the previous stamp's in
//   the blob, 0 before the first), then for 1 the zig-zag varint of the difference.
//   The versions of a record written at once share a device and an HLC, so most
//   stamps take one byte; their ids are most of what is left out.
// Format 2 (still read): the same but for the stamp, varint (device index << 1 |
// HLC differs), and every version's change id written out.
// Format 1 (still read): u32 field count, then each field's u32 name length, name,
// u32 length and encodeFieldState bytes.

namespace {

constexpr std::uint8_t kRecordStateFormatV1 = 1;
constexpr std::uint8_t kRecordStateFormatV2 = 2;
constexpr std::uint8_t kRecordStateFormat = 3;

enum Part : std::uint8_t {
  kCurrent = 1,
  kConflicts = 2,
  kEntries = 4,
  kSuperseded = 8,
};

void putVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::uint64_t getVarint(Reader& r) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const std::uint8_t b = r.u8();
    if (shift == 63 && b > 1) {
      corrupt(); // more than 64 bits
    }
    v |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) {
      return v;
    }
  }
  corrupt();
}

// A count of things that each take at least one byte.
std::size_t getCount(Reader& r) {
  const std::uint64_t n = getVarint(r);
  if (n > r.in.size()) {
    corrupt();
  }
  return static_cast<std::size_t>(n);
}

struct RecordWriter {
  std::string body;
  std::vector<Uuid> devices;
  std::uint64_t lastHlc = 0;

  void stamp(Hlc hlc, const Uuid& device, bool derivedId = false) {
    const auto found = std::find(devices.begin(), devices.end(), device);
    const auto index = static_cast<std::uint64_t>(found - devices.begin());
    if (found == devices.end()) {
      devices.push_back(device);
    }
    const std::uint64_t head = (index << 2) | (derivedId ? 2u : 0u);
    if (hlc.value == lastHlc) {
      putVarint(body, head);
      return;
    }
    putVarint(body, head | 1);
    const std::uint64_t delta = hlc.value - lastHlc; // modulo 2^64
    putVarint(body, (delta << 1) ^ (static_cast<std::int64_t>(delta) < 0 ? ~std::uint64_t{0} : 0));
    lastHlc = hlc.value;
  }
  void version(const FieldVersion& v) {
    const bool derivedId = v.changeId.isNil();
    stamp(v.hlc, v.deviceId, derivedId);
    if (!derivedId) {
      putUuid(body, v.changeId);
    }
    encodeValue(v.value, body);
  }
  void versions(const std::vector<FieldVersion>& list) {
    putVarint(body, list.size());
    for (const auto& v : list) {
      version(v);
    }
  }
  void field(const std::string& name, const FieldState& state) {
    putVarint(body, name.size());
    body.append(name);
    const auto parts = static_cast<std::uint8_t>(
        (state.current ? kCurrent : 0) | (state.conflicts.empty() ? 0 : kConflicts) |
        (state.entries.empty() ? 0 : kEntries) | (state.superseded.empty() ? 0 : kSuperseded));
    body.push_back(static_cast<char>(parts));
    if (state.current) {
      version(*state.current);
    }
    if (!state.conflicts.empty()) {
      versions(state.conflicts);
    }
    if (!state.entries.empty()) {
      versions(state.entries);
    }
    if (!state.superseded.empty()) {
      putVarint(body, state.superseded.size());
      for (const auto& v : state.superseded) {
        stamp(v.hlc, v.deviceId);
      }
    }
  }
};

struct RecordReader {
  Reader& r;
  std::uint8_t format = kRecordStateFormat;
  std::vector<Uuid> devices;
  std::uint64_t lastHlc = 0;

  /// A stamp, and whether it says the change id is derived (left out).
  std::pair<VersionId, bool> stamp() {
    const std::uint64_t s = getVarint(r);
    const unsigned shift = format == kRecordStateFormatV2 ? 1 : 2;
    const bool derivedId = format != kRecordStateFormatV2 && (s & 2) != 0;
    if ((s >> shift) >= devices.size()) {
      corrupt();
    }
    if ((s & 1) != 0) {
      const std::uint64_t z = getVarint(r);
      lastHlc += (z >> 1) ^ (~(z & 1) + 1); // modulo 2^64
    }
    return {{Hlc{lastHlc}, devices[static_cast<std::size_t>(s >> shift)]}, derivedId};
  }
  FieldVersion version() {
    FieldVersion v;
    const auto [id, derivedId] = stamp();
    v.hlc = id.hlc;
    v.deviceId = id.deviceId;
    if (!derivedId) {
      v.changeId = r.uuid();
      if (v.changeId.isNil() && format != kRecordStateFormatV2) {
        // Format 3: all-zero only stands for a derived id, which is never written
        // out. (A format 2 row may hold an all-zero id a device sent before
        // "derived-ids"; it now reads as the derived one.)
        corrupt();
      }
    }
    v.value = decodeValue(r.in);
    return v;
  }
  std::vector<FieldVersion> versions() {
    std::vector<FieldVersion> out(getCount(r));
    for (auto& v : out) {
      v = version();
    }
    return out;
  }
  FieldState field() {
    const std::uint8_t parts = r.u8();
    if ((parts & ~(kCurrent | kConflicts | kEntries | kSuperseded)) != 0) {
      corrupt();
    }
    FieldState s;
    if ((parts & kCurrent) != 0) {
      s.current = version();
    }
    if ((parts & kConflicts) != 0) {
      s.conflicts = versions();
    }
    if ((parts & kEntries) != 0) {
      s.entries = versions();
    }
    if ((parts & kSuperseded) != 0) {
      s.superseded.resize(getCount(r));
      for (auto& v : s.superseded) {
        const auto [id, derivedId] = stamp();
        if (derivedId) {
          corrupt(); // a superseded version has no change id
        }
        v = id;
      }
    }
    return s;
  }
  RecordState record() {
    devices.resize(getCount(r));
    for (auto& d : devices) {
      d = r.uuid();
    }
    RecordState record;
    const std::size_t n = getCount(r);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t nameSize = getCount(r);
      std::string name(r.in.substr(0, nameSize));
      r.in.remove_prefix(nameSize);
      // In name order, each once.
      if (!record.fields.empty() && !(record.fields.rbegin()->first < name)) {
        corrupt();
      }
      record.fields.emplace_hint(record.fields.end(), std::move(name), field());
    }
    return record;
  }
};

RecordState decodeRecordStateV1(Reader& r) {
  RecordState record;
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
  return record;
}

} // namespace

std::string encodeRecordState(const RecordState& record) {
  RecordWriter w;
  putVarint(w.body, record.fields.size());
  for (const auto& [name, state] : record.fields) {
    w.field(name, state);
  }
  std::string out;
  out.reserve(12 + 16 * w.devices.size() + w.body.size());
  out.push_back(static_cast<char>(kRecordStateFormat));
  putVarint(out, w.devices.size());
  for (const auto& d : w.devices) {
    putUuid(out, d);
  }
  out.append(w.body);
  return out;
}

RecordState decodeRecordState(std::string_view bytes) {
  if (bytes.empty()) {
    return {};
  }
  Reader r{bytes};
  RecordState record;
  const std::uint8_t format = r.u8();
  switch (format) {
  case kRecordStateFormatV1:
    record = decodeRecordStateV1(r);
    break;
  case kRecordStateFormatV2:
  case kRecordStateFormat:
    record = RecordReader{r, format, {}, 0}.record();
    break;
  default:
    corrupt();
  }
  if (!r.in.empty()) {
    corrupt();
  }
  return record;
}

namespace {

/// derivedChangeId for the versions of one record, the shared part hashed once per
/// (device, HLC) in a row (a record's versions mostly come from one write).
class RecordIdFiller {
public:
  explicit RecordIdFiller(const Uuid& record) : record_(record) {}

  void operator()(FieldState& state, std::string_view field) {
    const auto fill = [&](FieldVersion& v) {
      if (!v.changeId.isNil()) {
        return;
      }
      if (!derive_ || device_ != v.deviceId || hlc_ != v.hlc) {
        derive_.emplace(v.deviceId, record_, v.hlc);
        device_ = v.deviceId;
        hlc_ = v.hlc;
      }
      v.changeId = (*derive_)(field);
    };
    if (state.current) {
      fill(*state.current);
    }
    std::for_each(state.conflicts.begin(), state.conflicts.end(), fill);
    std::for_each(state.entries.begin(), state.entries.end(), fill);
  }

private:
  Uuid record_;
  std::optional<ChangeIdDeriver> derive_;
  Uuid device_;
  Hlc hlc_;
};

} // namespace

RecordState decodeRecordState(std::string_view bytes, const Uuid& record) {
  RecordState out = decodeRecordState(bytes);
  RecordIdFiller fill(record);
  for (auto& [name, state] : out.fields) {
    fill(state, name);
  }
  return out;
}

} // namespace outpost::sync
