#include "outpost/sync/merge.hpp"

#include <algorithm>
#include <tuple>

namespace outpost::sync {

namespace {

/// Total order on versions: (hlc, device id, change id). Change ids break the tie
/// of one device writing two values with the same HLC, which a correct HLC never
/// does but a replayed or crafted change might.
bool greater(const FieldVersion& a, const FieldVersion& b) {
  return std::tie(a.hlc, a.deviceId, a.changeId) > std::tie(b.hlc, b.deviceId, b.changeId);
}

bool isSuperseded(const FieldState& s, const VersionId& v) {
  return std::binary_search(s.superseded.begin(), s.superseded.end(), v);
}

void addSuperseded(FieldState& s, const VersionId& v) {
  const auto at = std::lower_bound(s.superseded.begin(), s.superseded.end(), v);
  if (at == s.superseded.end() || *at != v) {
    s.superseded.insert(at, v);
  }
}

bool knownChange(const FieldState& s, const Uuid& changeId) {
  if (s.current && s.current->changeId == changeId) {
    return true;
  }
  const auto same = [&](const FieldVersion& v) { return v.changeId == changeId; };
  return std::any_of(s.conflicts.begin(), s.conflicts.end(), same) ||
         std::any_of(s.entries.begin(), s.entries.end(), same);
}

FieldVersion versionOf(const Change& c) { return {c.value, c.hlc, c.deviceId, c.changeId}; }

} // namespace

std::string_view mergeOutcomeName(MergeOutcome outcome) noexcept {
  switch (outcome) {
  case MergeOutcome::fastForward:
    return "fast-forward";
  case MergeOutcome::won:
    return "won";
  case MergeOutcome::lost:
    return "lost";
  case MergeOutcome::superseded:
    return "superseded";
  case MergeOutcome::appended:
    return "appended";
  case MergeOutcome::duplicate:
    return "duplicate";
  case MergeOutcome::rejected:
    return "rejected";
  }
  return "unknown";
}

MergeOutcome merge(FieldState& state, const Change& change, MergePolicy policy, bool frozen) {
  if (knownChange(state, change.changeId)) {
    return MergeOutcome::duplicate;
  }
  if (policy == MergePolicy::appendOnly) {
    FieldVersion entry = versionOf(change);
    const auto at = std::lower_bound(
        state.entries.begin(), state.entries.end(), entry,
        [](const FieldVersion& a, const FieldVersion& b) { return greater(b, a); });
    state.entries.insert(at, std::move(entry));
    return MergeOutcome::appended;
  }
  if (policy == MergePolicy::immutableAfterSign && frozen) {
    return MergeOutcome::rejected;
  }

  // A field's first version, with no base and nothing resolved (every field of a
  // new record): what the general case below would conclude, without its copies.
  if (!state.current && state.conflicts.empty() && state.superseded.empty() && !change.base() &&
      change.resolves.empty()) {
    state.current = versionOf(change);
    return MergeOutcome::fastForward;
  }

  // What this change saw and replaced.
  const std::optional<FieldVersion> before = state.current;
  if (const auto base = change.base()) {
    addSuperseded(state, *base);
  }
  for (const VersionId& v : change.resolves) {
    addSuperseded(state, v);
  }

  // Current and conflicts: the versions nobody replaced, greatest first.
  std::vector<FieldVersion> heads;
  heads.reserve(state.conflicts.size() + 2);
  if (state.current) {
    heads.push_back(std::move(*state.current));
  }
  for (FieldVersion& v : state.conflicts) {
    heads.push_back(std::move(v));
  }
  const bool changeSuperseded = isSuperseded(state, change.version());
  if (!changeSuperseded) {
    heads.push_back(versionOf(change));
  }
  std::erase_if(heads, [&](const FieldVersion& v) { return isSuperseded(state, v.version()); });
  std::sort(heads.begin(), heads.end(), greater);
  state.current.reset();
  state.conflicts.clear();
  if (!heads.empty()) {
    state.current = std::move(heads.front());
    state.conflicts.assign(std::make_move_iterator(heads.begin() + 1),
                           std::make_move_iterator(heads.end()));
  }

  if (changeSuperseded) {
    return MergeOutcome::superseded;
  }
  if (state.current && state.current->changeId == change.changeId) {
    const bool replacedBefore = !before || isSuperseded(state, before->version());
    return replacedBefore ? MergeOutcome::fastForward : MergeOutcome::won;
  }
  return MergeOutcome::lost;
}

bool isDeleted(const RecordState& record) noexcept {
  const auto it = record.fields.find(kRecordField);
  return it != record.fields.end() && it->second.current &&
         std::holds_alternative<Tombstone>(it->second.current->value);
}

std::vector<std::pair<std::string, FieldVersion>> deletionConflicts(const RecordState& record) {
  std::vector<std::pair<std::string, FieldVersion>> out;
  if (!isDeleted(record)) {
    return out;
  }
  const FieldState& deletion = record.fields.find(kRecordField)->second;
  for (const auto& [name, field] : record.fields) {
    if (name == kRecordField) {
      continue;
    }
    const auto unseen = [&](const FieldVersion& v) {
      return !std::binary_search(deletion.superseded.begin(), deletion.superseded.end(),
                                 v.version());
    };
    if (field.current && unseen(*field.current)) {
      out.emplace_back(name, *field.current);
    }
    for (const FieldVersion& v : field.conflicts) {
      if (unseen(v)) {
        out.emplace_back(name, v);
      }
    }
  }
  return out;
}

} // namespace outpost::sync
