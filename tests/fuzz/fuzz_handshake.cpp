// libFuzzer target: see fuzz_entries.hpp and docs/protocol.md ("Fuzzing").
#include "fuzz_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  outpost::protocol::fuzz::handshake(data, size);
  return 0;
}
