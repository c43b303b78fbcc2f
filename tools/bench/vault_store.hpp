#pragma once
/// \file
/// `w1.vault`: the W1 schema on the encrypted vault.

#include "w1.hpp"

#include <memory>

namespace outpost::bench {

[[nodiscard]] std::unique_ptr<W1Store> makeVaultStore();

} // namespace outpost::bench
