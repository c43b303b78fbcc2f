#pragma once
/// \file
/// `outpost-bench cipher`: seal + open of 4 KiB messages with XChaCha20-Poly1305,
/// by libsodium (`w1.sodium`, the reference of bench/WORKLOADS.md) and by the
/// vault's page cipher (`w1.page_cipher`, sdk/src/vault/page_aead.hpp), in one run,
/// alternating rounds so both see the same machine.

#include "report.hpp"

#include <cstdint>

namespace outpost::bench {

struct CipherOptions {
  std::uint32_t messages = 20000; ///< seal + open pairs per round and implementation
  std::uint32_t rounds = 5;       ///< the median round is reported
};

/// Prints RESULT lines (MB/s of 4 KiB seal + open pairs, and the ratio) and a CHECK
/// that every message opened to what was sealed. False if a CHECK failed.
bool runCipher(const CipherOptions& options, Report& report);

} // namespace outpost::bench
