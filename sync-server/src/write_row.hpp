#pragma once
// A stored write: the row of `writes` that holds one device's changes to one record at
// one HLC (one local write), and the binary form of its fields. Internal to the server
// store and its audit chain.

#include <outpost/protocol/messages.hpp>
#include <outpost/sync/change.hpp>
#include <outpost/sync/merge.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace outpost::server {

/// One field of a stored write: the change's own members and how it merged.
struct StoredField {
  std::string field;
  sync::Value value;
  sync::Hlc baseHlc{};
  sync::Uuid baseDeviceId{};
  std::vector<sync::VersionId> resolves;
  /// The change id. Stored only when it is not the derived one
  /// (sync::derivedChangeId of device, record, field and HLC); decoding fills it in.
  sync::Uuid changeId{};
  bool derivedId = true;
  sync::MergeOutcome outcome = sync::MergeOutcome::fastForward;
  bool operator==(const StoredField&) const = default;
};

/// What the fields of a write share.
struct WriteKey {
  sync::Uuid recordId{};
  sync::Hlc hlc{};
  sync::Uuid deviceId{};
};

/// The `fields` column. Derived ids are left out (the key gives them back).
[[nodiscard]] std::string encodeStoredFields(const std::vector<StoredField>& fields);
/// Its inverse; derived ids are recomputed from `key` unless `withIds` is false (then
/// they stay all-zero: the "derived-ids" form). Throws Error{corrupt}.
[[nodiscard]] std::vector<StoredField> decodeStoredFields(std::string_view bytes,
                                                          const WriteKey& key, bool withIds = true);

/// "fast-forward", "won", ... back to the outcome (nullopt for anything else).
[[nodiscard]] std::optional<sync::MergeOutcome> parseMergeOutcome(std::string_view name) noexcept;

} // namespace outpost::server
