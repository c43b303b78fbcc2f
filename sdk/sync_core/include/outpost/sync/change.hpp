#pragma once
/// \file
/// A change: one journal entry, one changed field of one record (DESIGN.md §6).
/// The unit the device pushes, the server stores and the merge function takes.

#include <outpost/sync/hlc.hpp>
#include <outpost/sync/uuid.hpp>
#include <outpost/sync/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

/// One field change. `baseHlc` is the HLC of the value the editor replaced (zero
/// when the field had no value): equal to the current HLC means fast-forward.
struct Change {
  Uuid changeId; ///< the idempotency key
  Uuid recordId;
  std::string recordType;
  std::string field;
  Value value;
  Hlc hlc;
  Uuid deviceId;
  Hlc baseHlc;

  friend bool operator==(const Change&, const Change&) = default;
};

} // namespace outpost::sync
