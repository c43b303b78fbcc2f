#pragma once
// Checking a write against its entity type (internal to the record core).

#include <outpost/records.hpp>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace outpost::model {

/// The type of the record with this id, or nullopt if there is none.
using ReferenceLookup = std::function<std::optional<std::string>(const Uuid&)>;

/// The problems of one value, each at a path that begins with `where` (the field's
/// own path, or empty for paths relative to the field: "[2]", ".name").
void checkValue(const FieldSpec& spec, const Value& value, const std::string& where,
                const ReferenceLookup& lookup, std::vector<FieldProblem>& problems);

/// The specs of a record's fields, asked for in name order (a record's fields and
/// a write's changes are sorted): the type's fields are walked once, not looked up
/// one by one. nullptr for a field the type does not have (or with no type).
class FieldSpecWalk {
public:
  FieldSpecWalk(const Schema& schema, const EntityType* type)
      : fields_(type ? schema.fieldsByName(*type) : std::span<const FieldSpec* const>()) {}

  const FieldSpec* operator()(std::string_view field) {
    for (; at_ < fields_.size(); ++at_) {
      const int c = fields_[at_]->name.compare(field); // one compare a step
      if (c >= 0) {
        return c == 0 ? fields_[at_] : nullptr;
      }
    }
    return nullptr;
  }

private:
  std::span<const FieldSpec* const> fields_;
  std::size_t at_ = 0;
};

/// Every problem of a write: value types, enums, references, required fields,
/// merge policies (append-only, immutable after sign) and the type's rules.
[[nodiscard]] std::vector<FieldProblem>
checkWrite(const Schema& schema, const EntityType& type, const FieldValues* before,
           const FieldValues& after, const FieldValues& changed, const ReferenceLookup& lookup);

[[nodiscard]] bool isSigned(const EntityType& type, const FieldValues& fields);

/// "type.field: message; ..." (never contains values).
[[nodiscard]] std::string describeProblems(const std::vector<FieldProblem>& problems);

} // namespace outpost::model
