#include "write_row.hpp"

#include <outpost/error.hpp>

#include <cstring>
#include <optional>

namespace outpost::server {

namespace {

constexpr std::uint8_t kFieldsFormat = 1;
constexpr std::uint8_t kHasId = 1;
constexpr std::uint8_t kHasBase = 2;

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
void putId(std::string& out, const sync::Uuid& id) {
  out.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

[[noreturn]] void corrupt() { throw Error(Errc::corrupt, "a stored write is damaged"); }

struct Reader {
  std::string_view in;
  void need(std::size_t n) const {
    if (in.size() < n) {
      corrupt();
    }
  }
  std::uint8_t u8() {
    need(1);
    const auto v = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    return v;
  }
  std::uint64_t u64() {
    need(8);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      v |= std::uint64_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
    }
    in.remove_prefix(8);
    return v;
  }
  std::size_t u32() {
    need(4);
    std::size_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      v |= std::size_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
    }
    in.remove_prefix(4);
    if (v > in.size()) { // every counted item takes at least a byte
      corrupt();
    }
    return v;
  }
  sync::Uuid id() {
    need(16);
    sync::Uuid u;
    std::memcpy(u.bytes.data(), in.data(), 16);
    in.remove_prefix(16);
    return u;
  }
};

} // namespace

std::string encodeStoredFields(const std::vector<StoredField>& fields) {
  std::string out;
  out.push_back(static_cast<char>(kFieldsFormat));
  putU32(out, fields.size());
  for (const StoredField& f : fields) {
    const bool hasBase = !f.baseHlc.isZero();
    out.push_back(static_cast<char>((f.derivedId ? 0 : kHasId) | (hasBase ? kHasBase : 0)));
    out.push_back(static_cast<char>(f.outcome));
    putU32(out, f.field.size());
    out.append(f.field);
    sync::encodeValue(f.value, out);
    if (hasBase) {
      putU64(out, f.baseHlc.value);
      putId(out, f.baseDeviceId);
    }
    putU32(out, f.resolves.size());
    for (const auto& r : f.resolves) {
      putU64(out, r.hlc.value);
      putId(out, r.deviceId);
    }
    if (!f.derivedId) {
      putId(out, f.changeId);
    }
  }
  return out;
}

std::vector<StoredField> decodeStoredFields(std::string_view bytes, const WriteKey& key,
                                            bool withIds) {
  Reader r{bytes};
  if (r.u8() != kFieldsFormat) {
    corrupt();
  }
  std::vector<StoredField> out(r.u32());
  std::optional<sync::ChangeIdDeriver> derive; // the write's shared hash, made once
  for (StoredField& f : out) {
    const std::uint8_t flags = r.u8();
    const std::uint8_t outcome = r.u8();
    if ((flags & ~(kHasId | kHasBase)) != 0 ||
        outcome > static_cast<std::uint8_t>(sync::MergeOutcome::rejected)) {
      corrupt();
    }
    f.outcome = static_cast<sync::MergeOutcome>(outcome);
    const std::size_t nameSize = r.u32();
    f.field = std::string(r.in.substr(0, nameSize));
    r.in.remove_prefix(nameSize);
    f.value = sync::decodeValue(r.in);
    if ((flags & kHasBase) != 0) {
      f.baseHlc = sync::Hlc{r.u64()};
      f.baseDeviceId = r.id();
    }
    const std::size_t resolves = r.u32();
    r.need(resolves * 24);
    f.resolves.resize(resolves);
    for (auto& v : f.resolves) {
      v.hlc = sync::Hlc{r.u64()};
      v.deviceId = r.id();
    }
    f.derivedId = (flags & kHasId) == 0;
    if (!f.derivedId) {
      f.changeId = r.id();
    } else if (withIds) {
      if (!derive) {
        derive.emplace(key.deviceId, key.recordId, key.hlc);
      }
      f.changeId = (*derive)(f.field);
    }
  }
  if (!r.in.empty()) {
    corrupt();
  }
  return out;
}

std::optional<sync::MergeOutcome> parseMergeOutcome(std::string_view name) noexcept {
  for (std::uint8_t i = 0; i <= static_cast<std::uint8_t>(sync::MergeOutcome::rejected); ++i) {
    const auto outcome = static_cast<sync::MergeOutcome>(i);
    if (sync::mergeOutcomeName(outcome) == name) {
      return outcome;
    }
  }
  return std::nullopt;
}

} // namespace outpost::server
