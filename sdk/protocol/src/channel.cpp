#include "outpost/protocol/channel.hpp"

#include "outpost/context.hpp"
#include "outpost/error.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#include <zstd.h>

namespace outpost::protocol {

using boost::system::error_code;
using tcp = asio::ip::tcp;

struct SecureChannel::State {
  State(tcp::socket s, ChannelLimits l)
      : socket(std::move(s)), readTimer(socket.get_executor()), writeTimer(socket.get_executor()),
        limits(l), assembler(l.maxMessage) {}

  tcp::socket socket;
  asio::steady_timer readTimer;
  asio::steady_timer writeTimer;
  ChannelLimits limits;
  Purpose purpose = Purpose::session;
  noise::CipherState sendCipher;
  noise::CipherState receiveCipher;
  noise::PublicKey remoteStatic{};
  noise::Bytes handshakeHash;
  MessageAssembler assembler;
  bool open = true;
  bool handshaken = false;
  std::uint64_t readGeneration = 0;
  std::uint64_t writeGeneration = 0;
  bool readExpired = false;
  bool writeExpired = false;
  std::uint64_t bytesSent = 0;
  std::uint64_t bytesReceived = 0;
  bool compress = false;
  EncodeOptions encoding;

  void shut() noexcept {
    open = false;
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    readTimer.cancel();
    writeTimer.cancel();
  }
};

namespace {

using State = SecureChannel::State;

void requireOpen(const State& st) {
  if (!st.open) {
    throw Error(Errc::protocol, "the secure session has ended; reconnect");
  }
}

/// A deadline for one read or one write. The timer's handler holds the state weakly
/// and checks the generation, so a firing that arrives after the operation finished
/// (or after the channel is gone) changes nothing.
struct Deadline {
  asio::steady_timer State::*timer;
  std::uint64_t State::*generation;
  bool State::*expired;
};

void arm(const std::shared_ptr<State>& st, const Deadline& d, std::chrono::milliseconds timeout) {
  const std::uint64_t generation = ++((*st).*d.generation);
  (*st).*d.expired = false;
  ((*st).*d.timer).expires_after(timeout);
  std::weak_ptr<State> weak = st;
  ((*st).*d.timer).async_wait([weak, d, generation](error_code ec) {
    auto s = weak.lock();
    if (ec || !s || (*s).*d.generation != generation) {
      return; // cancelled, gone, or a later operation's deadline
    }
    (*s).*d.expired = true;
    error_code ignored;
    s->socket.cancel(ignored);
  });
}

/// Ends the deadline: a late firing for this generation is ignored.
bool disarm(State& st, const Deadline& d) {
  ++(st.*d.generation);
  (st.*d.timer).cancel();
  return st.*d.expired;
}

[[noreturn]] void failIo(State& st, error_code ec, bool timedOut, const char* what) {
  st.shut();
  if (timedOut) {
    throw Error(Errc::timeout, std::string("timed out ") + what);
  }
  if (ec == asio::error::eof || ec == asio::error::connection_reset) {
    throw Error(Errc::network, std::string("the peer closed the connection ") + what);
  }
  throw Error(Errc::network, std::string("network failure ") + what + ": " + ec.message());
}

asio::awaitable<void> readExactly(std::shared_ptr<State> st, std::span<std::uint8_t> buf,
                                  const char* what) {
  const Deadline d{&State::readTimer, &State::readGeneration, &State::readExpired};
  arm(st, d, st->limits.readTimeout);
  error_code ec;
  const std::size_t n = co_await asio::async_read(st->socket, asio::buffer(buf.data(), buf.size()),
                                                  asio::redirect_error(asio::use_awaitable, ec));
  st->bytesReceived += n;
  const bool timedOut = disarm(*st, d);
  if (ec) {
    failIo(*st, ec, timedOut, what);
  }
}

asio::awaitable<void> writeAll(std::shared_ptr<State> st, std::span<const std::uint8_t> buf,
                               const char* what) {
  const Deadline d{&State::writeTimer, &State::writeGeneration, &State::writeExpired};
  arm(st, d, st->limits.writeTimeout);
  error_code ec;
  const std::size_t n = co_await asio::async_write(st->socket, asio::buffer(buf.data(), buf.size()),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  st->bytesSent += n;
  const bool timedOut = disarm(*st, d);
  if (ec) {
    failIo(*st, ec, timedOut, what);
  }
}

void appendFrame(noise::Bytes& out, std::span<const std::uint8_t> frame) {
  out.push_back(static_cast<std::uint8_t>(frame.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(frame.size() & 0xff));
  out.insert(out.end(), frame.begin(), frame.end());
}

asio::awaitable<noise::Bytes> readFrame(std::shared_ptr<State> st, const char* what) {
  std::array<std::uint8_t, 2> header{};
  co_await readExactly(st, header, what);
  const std::size_t len = static_cast<std::size_t>(header[0]) << 8 | header[1];
  if (len == 0) {
    st->shut();
    throw Error(Errc::protocol, "an empty frame arrived");
  }
  noise::Bytes frame(len);
  co_await readExactly(st, frame, what);
  co_return frame;
}

asio::awaitable<void> writeFrame(std::shared_ptr<State> st, std::span<const std::uint8_t> frame,
                                 const char* what) {
  noise::Bytes out;
  appendFrame(out, frame);
  co_await writeAll(st, out, what);
}

/// Runs `f` (a handshake step); a Noise failure ends the session as auth_failed.
template <typename F>
auto handshakeStep(State& st, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    st.shut();
    if (e.code() == Errc::protocol) {
      throw Error(Errc::auth_failed,
                  "the peer's handshake did not authenticate (wrong or unknown key): " +
                      e.message());
    }
    throw;
  }
}

void requireEmpty(State& st, const noise::Bytes& payload) {
  if (!payload.empty()) {
    st.shut();
    throw Error(Errc::protocol, "a handshake message carried a payload");
  }
}

} // namespace

std::array<std::uint8_t, kPreambleSize> preambleFor(Purpose purpose) noexcept {
  return {'O', 'P', 'S', 'T', kWireVersion, static_cast<std::uint8_t>(purpose), 0, 0};
}

noise::Bytes prologueFor(Purpose purpose) {
  noise::Bytes p = {'o', 'u', 't', 'p', 'o', 's', 't'};
  const auto pre = preambleFor(purpose);
  p.insert(p.end(), pre.begin(), pre.end());
  return p;
}

Purpose parsePreamble(std::span<const std::uint8_t> preamble) {
  if (preamble.size() != kPreambleSize || std::memcmp(preamble.data(), "OPST", 4) != 0) {
    throw Error(Errc::protocol, "the peer does not speak the Outpost protocol");
  }
  if (preamble[4] != kWireVersion) {
    throw Error(Errc::version_mismatch,
                "the peer uses wire version " + std::to_string(preamble[4]) + ", this side " +
                    std::to_string(kWireVersion) + "; update the older side");
  }
  if (preamble[5] != static_cast<std::uint8_t>(Purpose::session) &&
      preamble[5] != static_cast<std::uint8_t>(Purpose::enrollment)) {
    throw Error(Errc::protocol, "the peer asked for an unknown connection purpose");
  }
  if (preamble[6] != 0 || preamble[7] != 0) {
    throw Error(Errc::protocol, "the preamble's reserved bytes are not zero");
  }
  return static_cast<Purpose>(preamble[5]);
}

namespace {
noise::HandshakeConfig configFor(Purpose purpose, noise::Role role) {
  noise::HandshakeConfig c;
  c.pattern = purpose == Purpose::session ? noise::patternIK() : noise::patternXK();
  c.hash = noise::Hash::blake2b;
  c.role = role;
  c.prologue = prologueFor(purpose);
  return c;
}

void finishHandshake(State& st, noise::HandshakeState& hs) {
  auto t = hs.finish();
  st.sendCipher = std::move(t.send);
  st.receiveCipher = std::move(t.receive);
  st.handshakeHash = std::move(t.handshakeHash);
  st.remoteStatic = *hs.remoteStatic();
  st.handshaken = true;
}
} // namespace

asio::awaitable<SecureChannel> SecureChannel::connect(const Context& context, tcp::socket socket,
                                                      Purpose purpose,
                                                      const noise::KeyPair& deviceStatic,
                                                      const noise::PublicKey& serverStatic,
                                                      ChannelLimits limits) {
  auto st = std::make_shared<State>(std::move(socket), limits);
  st->purpose = purpose;
  auto config = configFor(purpose, noise::Role::initiator);
  config.localStatic = deviceStatic.clone();
  config.remoteStatic = serverStatic;
  noise::HandshakeState hs(context, std::move(config));

  noise::Bytes first;
  const auto pre = preambleFor(purpose);
  first.insert(first.end(), pre.begin(), pre.end());
  appendFrame(first, hs.writeMessage({}));
  co_await writeAll(st, first, "sending the handshake");
  const noise::Bytes m2 = co_await readFrame(st, "waiting for the server's handshake");
  requireEmpty(*st, handshakeStep(*st, [&] { return hs.readMessage(m2); }));
  if (!hs.isComplete()) { // XK: -> s, se
    // Named, not a temporary inside co_await: gcc 12 mis-destroys those.
    const noise::Bytes m3 = hs.writeMessage({});
    co_await writeFrame(st, m3, "sending the handshake");
  }
  finishHandshake(*st, hs);
  co_return SecureChannel(std::move(st));
}

asio::awaitable<SecureChannel> SecureChannel::accept(const Context& context, tcp::socket socket,
                                                     const noise::KeyPair& serverStatic,
                                                     ChannelLimits limits) {
  auto st = std::make_shared<State>(std::move(socket), limits);
  std::array<std::uint8_t, kPreambleSize> preamble{};
  co_await readExactly(st, preamble, "waiting for the preamble");
  try {
    st->purpose = parsePreamble(preamble);
  } catch (...) {
    st->shut();
    throw;
  }
  if (st->purpose == Purpose::enrollment) {
    // Anyone can complete an XK handshake: keep what they can make us buffer small.
    st->limits.maxMessage = std::min(st->limits.maxMessage, kMaxEnrollmentMessage);
    st->assembler = MessageAssembler(st->limits.maxMessage);
  }
  auto config = configFor(st->purpose, noise::Role::responder);
  config.localStatic = serverStatic.clone();
  noise::HandshakeState hs(context, std::move(config));
  const noise::Bytes m1 = co_await readFrame(st, "waiting for the device's handshake");
  requireEmpty(*st, handshakeStep(*st, [&] { return hs.readMessage(m1); }));
  const noise::Bytes m2 = hs.writeMessage({});
  co_await writeFrame(st, m2, "answering the handshake");
  if (!hs.isComplete()) { // XK: <- s, se
    const noise::Bytes m3 = co_await readFrame(st, "waiting for the device's handshake");
    requireEmpty(*st, handshakeStep(*st, [&] { return hs.readMessage(m3); }));
  }
  finishHandshake(*st, hs);
  co_return SecureChannel(std::move(st));
}

SecureChannel::SecureChannel(std::shared_ptr<State> state) : state_(std::move(state)) {}
SecureChannel::SecureChannel(SecureChannel&&) noexcept = default;
SecureChannel& SecureChannel::operator=(SecureChannel&&) noexcept = default;
SecureChannel::~SecureChannel() {
  if (state_) {
    state_->shut();
  }
}

asio::awaitable<void> SecureChannel::send(std::span<const std::uint8_t> message) {
  auto st = state_;
  requireOpen(*st);
  const auto chunks = splitMessage(message, st->limits.maxMessage);
  noise::Bytes out;
  out.reserve(message.size() + chunks.size() * (2 + noise::kTagSize) + kMessageHeader);
  try {
    for (const auto& chunk : chunks) {
      appendFrame(out, st->sendCipher.encrypt({}, chunk));
    }
  } catch (...) {
    st->shut();
    throw;
  }
  co_await writeAll(st, out, "sending a message");
}

asio::awaitable<noise::Bytes> SecureChannel::receive() {
  auto st = state_;
  requireOpen(*st);
  for (;;) {
    const noise::Bytes frame = co_await readFrame(st, "waiting for a message");
    try {
      const noise::Bytes plain = st->receiveCipher.decrypt({}, frame);
      if (auto message = st->assembler.add(plain)) {
        co_return std::move(*message);
      }
    } catch (...) {
      st->shut();
      throw;
    }
  }
}

namespace {

/// Message encodings once compression is on: a first byte says which.
constexpr std::uint8_t kPlain = 0;
constexpr std::uint8_t kZstd = 1;
/// zstd level: fast, and most of what the higher levels would gain on change lists.
constexpr int kZstdLevel = 3;

/// One zstd context of each kind per thread, reused: making one per message costs
/// its tables' allocation and first touch (about a megabyte at level 3 for a large
/// batch) every time. Per thread, not per channel, so a server's thousand idle
/// connections hold none.
template <class Ctx, Ctx* (*Create)(), std::size_t (*Free)(Ctx*)>
Ctx* threadContext() {
  thread_local const std::unique_ptr<Ctx, std::size_t (*)(Ctx*)> ctx(Create(), Free);
  if (!ctx) {
    throw std::bad_alloc();
  }
  return ctx.get();
}

ZSTD_CCtx* threadCompressor() { return threadContext<ZSTD_CCtx, ZSTD_createCCtx, ZSTD_freeCCtx>(); }
ZSTD_DCtx* threadDecompressor() {
  return threadContext<ZSTD_DCtx, ZSTD_createDCtx, ZSTD_freeDCtx>();
}

noise::Bytes compressed(const noise::Bytes& plain) {
  noise::Bytes out(1 + ZSTD_compressBound(plain.size()));
  const std::size_t n = ZSTD_compressCCtx(threadCompressor(), out.data() + 1, out.size() - 1,
                                          plain.data(), plain.size(), kZstdLevel);
  if (ZSTD_isError(n) || n >= plain.size()) {
    out.assign(1, kPlain); // not worth it (or failed): send as is
    out.insert(out.end(), plain.begin(), plain.end());
    return out;
  }
  out[0] = kZstd;
  out.resize(1 + n);
  return out;
}

/// The message bytes of a received compressed-mode message. Refuses anything that
/// would decompress beyond `limit` before decompressing it.
noise::Bytes decompressed(std::span<const std::uint8_t> bytes, std::size_t limit) {
  if (bytes.empty()) {
    throw Error(Errc::protocol, "an empty message arrived");
  }
  const auto body = bytes.subspan(1);
  if (bytes[0] == kPlain) {
    return {body.begin(), body.end()};
  }
  if (bytes[0] != kZstd) {
    throw Error(Errc::protocol, "a message has an unknown encoding");
  }
  const unsigned long long size = ZSTD_getFrameContentSize(body.data(), body.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size == 0 ||
      size > limit) {
    throw Error(Errc::protocol, "a compressed message is malformed or too large");
  }
  noise::Bytes out(static_cast<std::size_t>(size));
  const std::size_t n =
      ZSTD_decompressDCtx(threadDecompressor(), out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n) || n != out.size()) {
    throw Error(Errc::protocol, "a compressed message does not decompress");
  }
  return out;
}

} // namespace

void SecureChannel::compressMessages() noexcept { state_->compress = true; }
void SecureChannel::groupWrites() noexcept { state_->encoding.recordWrites = true; }
void SecureChannel::compactAcks() noexcept { state_->encoding.compactAcks = true; }

asio::awaitable<void> SecureChannel::sendMessage(const Message& message) {
  noise::Bytes bytes = encode(message, state_->encoding);
  if (state_->compress) {
    bytes = compressed(bytes);
  }
  co_await send(bytes);
}

asio::awaitable<Message> SecureChannel::receiveMessage() {
  const noise::Bytes bytes = co_await receive();
  try {
    if (state_->compress) {
      co_return decode(decompressed(bytes, state_->limits.maxMessage));
    }
    co_return decode(bytes);
  } catch (...) {
    state_->shut();
    throw;
  }
}

Purpose SecureChannel::purpose() const noexcept { return state_->purpose; }
const noise::PublicKey& SecureChannel::remoteStatic() const noexcept {
  return state_->remoteStatic;
}
const noise::Bytes& SecureChannel::handshakeHash() const noexcept { return state_->handshakeHash; }
bool SecureChannel::isOpen() const noexcept { return state_ && state_->open; }
std::uint64_t SecureChannel::bytesSent() const noexcept { return state_ ? state_->bytesSent : 0; }
std::uint64_t SecureChannel::bytesReceived() const noexcept {
  return state_ ? state_->bytesReceived : 0;
}
void SecureChannel::close() noexcept {
  if (state_) {
    state_->shut();
  }
}

} // namespace outpost::protocol
