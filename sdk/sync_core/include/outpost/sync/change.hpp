#pragma once
/// \file
/// A change: one journal entry, one changed field of one record (DESIGN.md §6).
/// The unit the device pushes, the server stores and the merge function takes.

#include <outpost/sync/hlc.hpp>
#include <outpost/sync/uuid.hpp>
#include <outpost/sync/value.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::sync {

/// How concurrent edits of a field are reconciled.
enum class MergePolicy : std::uint8_t {
  lww,               ///< last writer wins; concurrent edits kept as a conflict for review
  appendOnly,        ///< a list of immutable entries; entries are only ever added
  immutableAfterSign ///< editable as a draft, frozen once the record is signed
};

/// "lww", "append-only", "immutable-after-sign".
[[nodiscard]] std::string_view mergePolicyName(MergePolicy policy) noexcept;
[[nodiscard]] std::optional<MergePolicy> parseMergePolicy(std::string_view name) noexcept;

/// Which version of a field a change saw: its HLC and the device that wrote it.
/// HLCs alone can collide between devices; the pair cannot.
struct VersionId {
  Hlc hlc;
  Uuid deviceId;
  friend auto operator<=>(const VersionId&, const VersionId&) noexcept = default;
};

/// The record itself, as a field: a change to it with a Tombstone deletes the record.
/// Field names of entity types never start with '$'.
inline constexpr std::string_view kRecordField = "$record";

/// One field change. `baseHlc`/`baseDeviceId` name the version the editor replaced
/// (zero HLC when the field had no value): equal to the current version means
/// fast-forward. `resolves` lists further versions the editor saw and replaced:
/// the competing values of a conflict it resolves, or, for a record deletion, the
/// current versions of the record's fields.
struct Change {
  Uuid changeId; ///< the idempotency key
  Uuid recordId;
  std::string recordType;
  std::string field;
  Value value;
  Hlc hlc;
  Uuid deviceId;
  Hlc baseHlc;
  Uuid baseDeviceId;
  std::vector<VersionId> resolves;

  [[nodiscard]] VersionId version() const noexcept { return {hlc, deviceId}; }
  [[nodiscard]] std::optional<VersionId> base() const noexcept {
    if (baseHlc.isZero()) {
      return std::nullopt;
    }
    return VersionId{baseHlc, baseDeviceId};
  }

  friend bool operator==(const Change&, const Change&) = default;
};

/// The change id the SDK gives the change a device made to `field` of `record` at
/// `hlc`: BLAKE2b-128 of (device, record, hlc, field) as a version-8 UUID. Unique
/// because a device never hands out an HLC twice and a write sets a field once;
/// derivable, so the wire can leave it out (docs/protocol.md, "derived-ids").
[[nodiscard]] Uuid derivedChangeId(const Uuid& device, const Uuid& record, std::string_view field,
                                   Hlc hlc);

/// derivedChangeId for the fields of one write (same device, record and HLC): what
/// they share is hashed once.
class ChangeIdDeriver {
public:
  ChangeIdDeriver(const Uuid& device, const Uuid& record, Hlc hlc) noexcept;
  [[nodiscard]] Uuid operator()(std::string_view field) const noexcept;

private:
  /// A crypto_generichash_state (libsodium) after the shared part.
  alignas(64) std::array<unsigned char, 384> prefix_;
};

} // namespace outpost::sync
