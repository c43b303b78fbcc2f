#include "outpost/protocol/session.hpp"

#include "outpost/error.hpp"

namespace outpost::protocol {

namespace {

// Callers pass named values only: gcc 12 mis-destroys temporaries that live across
// a co_await.

/// Sends the refusal and closes. Best effort: the peer may already be gone.
asio::awaitable<void> sendRefusal(SecureChannel& channel, const Message& refusal) {
  try {
    co_await channel.sendMessage(refusal);
  } catch (const Error&) {
    // The refusal stands whether or not the peer heard it.
  }
  channel.close();
}

/// Sends the refusal, closes, and throws it on this side too.
asio::awaitable<void> refuse(SecureChannel& channel, const ErrorReply& refusal) {
  const Message message = refusal;
  co_await sendRefusal(channel, message);
  throw Error(refusal.code, refusal.message);
}

/// The version_mismatch refusal when the ranges do not overlap.
std::optional<ErrorReply> versionRefusal(std::uint16_t min, std::uint16_t max) {
  try {
    (void)requireVersion(min, max);
    return std::nullopt;
  } catch (const Error& e) {
    return ErrorReply{e.code(), e.message()};
  }
}

} // namespace

asio::awaitable<EnrollReply> enrollDevice(const Context& context, asio::ip::tcp::socket socket,
                                          const EnrollmentPayload& payload,
                                          const noise::KeyPair& deviceStatic,
                                          std::string appVersion, ChannelLimits limits) {
  SecureChannel channel = co_await SecureChannel::connect(
      context, std::move(socket), Purpose::enrollment, deviceStatic, payload.serverKey, limits);
  const Message request =
      EnrollRequest{payload.code, std::move(appVersion), kProtocolVersionMin, kProtocolVersionMax};
  co_await channel.sendMessage(request);
  Message reply = co_await channel.receiveMessage();
  channel.close();
  co_return expect<EnrollReply>(std::move(reply));
}

asio::awaitable<std::optional<DeviceRecord>> serveEnrollment(SecureChannel& channel,
                                                             EnrollmentRegistry& registry,
                                                             Hlc serverHlc, Clock::time_point now) {
  if (channel.purpose() != Purpose::enrollment) {
    throw Error(Errc::internal, "serveEnrollment on a session channel");
  }
  Message first = co_await channel.receiveMessage();
  auto* request = std::get_if<EnrollRequest>(&first);
  if (request == nullptr) {
    const ErrorReply refusal{Errc::protocol, "an enrollment starts with EnrollRequest"};
    co_await refuse(channel, refusal);
  }
  if (const auto refusal = versionRefusal(request->minVersion, request->maxVersion)) {
    co_await refuse(channel, *refusal);
  }
  const RedeemResult result = registry.redeem(request->code, channel.remoteStatic(), now);
  if (result.outcome != RedeemOutcome::enrolled) {
    // An expected refusal: reported to the device, a value here.
    const Message refusal = ErrorReply{Errc::auth_failed, std::string(describe(result.outcome))};
    co_await sendRefusal(channel, refusal);
    co_return std::nullopt;
  }
  const Message reply = EnrollReply{result.device->deviceId, result.device->workerId,
                                    result.device->teamId, serverHlc};
  co_await channel.sendMessage(reply);
  co_return result.device;
}

asio::awaitable<AdmittedSession> admitSession(SecureChannel& channel, DeviceRegistry& devices) {
  if (channel.purpose() != Purpose::session) {
    throw Error(Errc::internal, "admitSession on an enrollment channel");
  }
  Message first = co_await channel.receiveMessage();
  auto* hello = std::get_if<Hello>(&first);
  if (hello == nullptr) {
    const ErrorReply refusal{Errc::protocol, "a session starts with Hello"};
    co_await refuse(channel, refusal);
  }
  const auto device = devices.findByKey(channel.remoteStatic());
  if (!device) {
    const ErrorReply refusal{Errc::auth_failed, "this device is not enrolled; enroll it again"};
    co_await refuse(channel, refusal);
  }
  if (device->revoked) {
    const ErrorReply refusal{Errc::revoked, "this device was revoked by the central team"};
    co_await refuse(channel, refusal);
  }
  if (device->deviceId != hello->deviceId) {
    const ErrorReply refusal{Errc::auth_failed, "the device id does not match the device's key"};
    co_await refuse(channel, refusal);
  }
  if (const auto refusal = versionRefusal(hello->minVersion, hello->maxVersion)) {
    co_await refuse(channel, *refusal);
  }
  const std::uint16_t version = *negotiateVersion(hello->minVersion, hello->maxVersion);
  co_return AdmittedSession{*device, std::move(*hello), version};
}

asio::awaitable<HelloReply> openSession(SecureChannel& channel, Hello hello) {
  const Message message = hello;
  co_await channel.sendMessage(message);
  Message answer = co_await channel.receiveMessage();
  HelloReply reply = expect<HelloReply>(std::move(answer));
  if (reply.version < hello.minVersion || reply.version > hello.maxVersion) {
    channel.close();
    throw Error(Errc::version_mismatch, "the server chose protocol version " +
                                            std::to_string(reply.version) +
                                            ", outside what this app speaks; update the app");
  }
  co_return reply;
}

} // namespace outpost::protocol
