#pragma once
/// \file
/// `w1.vault`: the W1 schema on the encrypted vault.

#include "w1.hpp"

#include <memory>

namespace outpost::bench {

/// `cacheKiB` 0: the vault's default page cache.
[[nodiscard]] std::unique_ptr<W1Store> makeVaultStore(int cacheKiB);
[[nodiscard]] int defaultVaultCacheKiB();

} // namespace outpost::bench
