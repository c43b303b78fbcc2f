#include "outpost/protocol/framing.hpp"

#include "outpost/error.hpp"

#include <algorithm>

namespace outpost::protocol {

std::size_t framesFor(std::size_t size) noexcept {
  return (size + kMessageHeader + kFramePlaintext - 1) / kFramePlaintext;
}

std::vector<noise::Bytes> splitMessage(std::span<const std::uint8_t> message,
                                       std::size_t maxMessage) {
  if (message.empty()) {
    throw Error(Errc::invalid_argument, "an application message is at least one byte");
  }
  if (message.size() > std::min(maxMessage, kMaxApplicationMessage)) {
    throw Error(Errc::invalid_argument, "the message is over the size limit; split it");
  }
  noise::Bytes stream;
  stream.reserve(message.size() + kMessageHeader);
  const auto n = static_cast<std::uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    stream.push_back(static_cast<std::uint8_t>(n >> shift));
  }
  stream.insert(stream.end(), message.begin(), message.end());
  std::vector<noise::Bytes> frames;
  frames.reserve(framesFor(message.size()));
  for (std::size_t at = 0; at < stream.size(); at += kFramePlaintext) {
    const std::size_t len = std::min(kFramePlaintext, stream.size() - at);
    frames.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(at),
                        stream.begin() + static_cast<std::ptrdiff_t>(at + len));
  }
  return frames;
}

std::optional<noise::Bytes> MessageAssembler::add(std::span<const std::uint8_t> plaintext) {
  if (plaintext.size() > kFramePlaintext) {
    throw Error(Errc::protocol, "a frame is larger than the protocol allows");
  }
  if (expected_ == 0) {
    if (plaintext.size() < kMessageHeader + 1) {
      throw Error(Errc::protocol, "a message's first frame is too short");
    }
    std::size_t n = 0;
    for (std::size_t i = 0; i < kMessageHeader; ++i) {
      n = (n << 8) | plaintext[i];
    }
    if (n == 0 || n > std::min(maxMessage_, kMaxApplicationMessage)) {
      throw Error(Errc::protocol, "a message announces a size over the limit");
    }
    expected_ = n + kMessageHeader; // counted as stream bytes, header included
    buffer_.clear();
    // Grow with the bytes that actually arrive: announcing 16 MiB costs a peer
    // nothing, so it must not cost us 16 MiB up front.
    buffer_.reserve(std::min(n, kFramePlaintext));
    plaintext = plaintext.subspan(kMessageHeader);
    const std::size_t streamSoFar = kMessageHeader + plaintext.size();
    if (streamSoFar > expected_ || (streamSoFar < expected_ && streamSoFar != kFramePlaintext)) {
      expected_ = 0;
      throw Error(Errc::protocol, "a message's first frame has the wrong length");
    }
  } else {
    const std::size_t have = kMessageHeader + buffer_.size();
    const std::size_t remaining = expected_ - have;
    const std::size_t want = std::min(remaining, kFramePlaintext);
    if (plaintext.size() != want) {
      expected_ = 0;
      throw Error(Errc::protocol, "a continuation frame has the wrong length");
    }
  }
  buffer_.insert(buffer_.end(), plaintext.begin(), plaintext.end());
  if (kMessageHeader + buffer_.size() == expected_) {
    expected_ = 0;
    return std::move(buffer_);
  }
  return std::nullopt;
}

} // namespace outpost::protocol
