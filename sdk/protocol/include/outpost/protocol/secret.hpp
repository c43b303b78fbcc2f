#pragma once
/// \file
/// The protocol keeps keys, chaining keys and enrollment secrets in the platform's
/// guarded-memory type (outpost/secret.hpp).

#include <outpost/secret.hpp>

namespace outpost::protocol {
using SecretBytes = outpost::SecretBytes;
} // namespace outpost::protocol
