#pragma once
/// \file
/// What the server takes from the SDK's built-in safeguarding schema: the merge
/// policy of every field of every built-in entity type, so that the server merges
/// each field exactly as the devices do (e.g. `contact_note.addenda` append-only).

#include <outpost/server/store.hpp>

#include <vector>

namespace outpost::server {

/// Every field of every built-in type with its policy (lww included, so that a
/// stale row is removed). `Server` applies them to its store at start
/// (ServerStore::setFieldPolicies); `outpostctl init` does too.
[[nodiscard]] std::vector<FieldPolicy> builtinFieldPolicies();

} // namespace outpost::server
