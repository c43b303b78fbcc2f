#pragma once
// Checking a write against its entity type (internal to the record core).

#include <outpost/records.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace outpost::model {

/// The type of the record with this id, or nullopt if there is none.
using ReferenceLookup = std::function<std::optional<std::string>(const Uuid&)>;

void checkValue(const FieldSpec& spec, const Value& value, const std::string& where,
                const ReferenceLookup& lookup, std::vector<FieldProblem>& problems);

/// Every problem of a write: value types, enums, references, required fields,
/// merge policies (append-only, immutable after sign) and the type's rules.
[[nodiscard]] std::vector<FieldProblem>
checkWrite(const Schema& schema, const EntityType& type, const FieldValues* before,
           const FieldValues& after, const FieldValues& changed, const ReferenceLookup& lookup);

[[nodiscard]] bool isSigned(const EntityType& type, const FieldValues& fields);

/// "type.field: message; ..." (never contains values).
[[nodiscard]] std::string describeProblems(const std::vector<FieldProblem>& problems);

} // namespace outpost::model
