#pragma once
/// \file
/// The first exchange on a secure channel, both sides: enrollment (XK channel:
/// EnrollRequest -> EnrollReply | Error) and session admission (IK channel:
/// Hello -> HelloReply | Error). Everything after Hello belongs to the sync layer.
///
/// Server-side refusals are sent as an `Error` message before the server closes,
/// so the device learns why (auth_failed, revoked, version_mismatch), and are also
/// thrown on the server side as `outpost::Error` with the same code.

#include "outpost/asio.hpp"
#include "outpost/protocol/channel.hpp"
#include "outpost/protocol/enrollment.hpp"

namespace outpost::protocol {

/// Device side of enrollment: runs the XK handshake over `socket` (already connected
/// to payload.host:payload.port) pinning payload.serverKey, presents the code, and
/// returns the server's EnrollReply. `deviceStatic` is the device's fresh key pair
/// (kept by the caller in its key store). Throws the server's refusal as
/// `Error{auth_failed}` (wrong/expired/used/locked code) or `Error{version_mismatch}`,
/// and transport failures as network/timeout/protocol.
asio::awaitable<EnrollReply> enrollDevice(const Context& context, asio::ip::tcp::socket socket,
                                          const EnrollmentPayload& payload,
                                          const noise::KeyPair& deviceStatic,
                                          std::string appVersion, ChannelLimits limits = {});

/// Server side of enrollment on an accepted channel of purpose `enrollment`: reads
/// the EnrollRequest, redeems the code for the channel's authenticated device key,
/// replies. Returns the new device, or nullopt after sending the refusal.
asio::awaitable<std::optional<DeviceRecord>> serveEnrollment(SecureChannel& channel,
                                                             EnrollmentRegistry& registry,
                                                             Hlc serverHlc, Clock::time_point now);

/// What the server knows once a session is admitted.
struct AdmittedSession {
  DeviceRecord device;
  Hello hello;
  std::uint16_t version = 0; ///< the negotiated protocol version
};

/// Server side: reads Hello on an accepted `session` channel and admits it only
/// when the channel's device key is enrolled and not revoked, the Hello names that
/// device, and the versions overlap. The caller then sends HelloReply. Refusals are
/// sent as Error and thrown: `auth_failed` (unknown key, or Hello names another
/// device), `revoked`, `version_mismatch`, `protocol` (not a Hello).
asio::awaitable<AdmittedSession> admitSession(SecureChannel& channel, DeviceRegistry& devices);

/// Device side: sends `hello` on a connected session channel and returns the
/// server's HelloReply. Throws the server's refusal with its code, or
/// `Error{version_mismatch}` when the server chose a version outside hello's range.
asio::awaitable<HelloReply> openSession(SecureChannel& channel, Hello hello);

} // namespace outpost::protocol
