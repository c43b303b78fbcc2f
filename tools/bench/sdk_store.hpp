#pragma once
/// \file
/// `w1.sdk`: the W1 records written and read through the public SDK API (record
/// store on the vault, with the journal and the audit trail).

#include "w1.hpp"

#include <memory>

namespace outpost::bench {

[[nodiscard]] std::unique_ptr<W1Store> makeSdkStore();

} // namespace outpost::bench
