#pragma once
// The fuzz targets' entry functions, shared by the libFuzzer binaries (built with
// -DOUTPOST_FUZZ=ON and clang) and the doctest smoke test that keeps them from
// rotting in the normal build. Each entry accepts any bytes; a finding is an
// abort (or a sanitizer report), never an outpost::Error of the expected kind.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace outpost::protocol::fuzz {

/// Framing: the frame stream parser, frame decryption and message reassembly.
void frames(const std::uint8_t* data, std::size_t size);
/// Handshakes: the IK and XK responder and initiator reading untrusted messages.
void handshake(const std::uint8_t* data, std::size_t size);
/// Messages: decode() of every message type, and encode/decode stability.
void messages(const std::uint8_t* data, std::size_t size);

/// Valid inputs for a target ("frames", "handshake", "messages"), named.
std::vector<std::pair<std::string, std::vector<std::uint8_t>>> seeds(const std::string& target);

} // namespace outpost::protocol::fuzz
