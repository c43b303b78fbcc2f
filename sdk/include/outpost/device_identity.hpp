#pragma once
/// \file
/// The device's identity with the central server: its static Noise key pair, the
/// server's address and pinned public key, and what enrollment assigned (device id,
/// worker, team). Kept inside the vault, so the private key is encrypted at rest
/// and destroyed with the vault.

#include "outpost/export.h"

#include <outpost/context.hpp>
#include <outpost/protocol/enrollment.hpp>
#include <outpost/protocol/noise.hpp>
#include <outpost/vault.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace outpost {

struct DeviceIdentity {
  protocol::Uuid deviceId{};
  std::string workerId;
  std::string teamId;
  std::string serverHost;
  std::uint16_t serverPort = 0;
  protocol::noise::PublicKey serverKey{};
  protocol::noise::KeyPair deviceKey; ///< the private half lives in guarded memory
};

/// Enrolls this device with the enrollment payload a worker typed or scanned
/// (`outpost-enroll:v1:<host>:<port>:<server key>:<code>`):
/// 1. parses it (a bad payload throws Error{invalid_argument} and changes nothing);
/// 2. creates the device's static key pair and stores it in the vault as pending,
///    so that the key the server is about to register is never lost;
/// 3. runs the enrollment handshake with the server, pinning its key;
/// 4. stores what the server assigned, in the same vault.
/// Throws Error{already_exists} when the vault already holds an enrolled identity,
/// Error{auth_failed} when the server refuses the code (wrong, used, expired,
/// locked: the worker needs a new code), Error{network|timeout} when the server
/// cannot be reached (retry: the pending key is reused).
OUTPOST_API DeviceIdentity enrollDevice(Context& context, Vault& vault, std::string_view payload,
                                        std::string_view appVersion,
                                        std::chrono::seconds timeout = std::chrono::seconds(30));

/// The enrolled identity, or nullopt when the device has not completed enrollment.
[[nodiscard]] OUTPOST_API std::optional<DeviceIdentity> loadDeviceIdentity(Vault& vault);

} // namespace outpost
