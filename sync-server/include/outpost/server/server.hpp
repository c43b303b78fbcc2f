#pragma once
/// \file
/// outpost-server: accepts device connections on TCP, runs each as a coroutine on
/// its own strand over a small thread pool (sessions: src/session.cpp), and serves
/// metrics and health over HTTP.

#include <outpost/asio.hpp>
#include <outpost/protocol/framing.hpp>
#include <outpost/protocol/noise.hpp>
#include <outpost/server/metrics.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

namespace outpost {
class Context;
}

namespace outpost::server {

struct ServerOptions {
  /// The data folder (server.db and keys/), made by `outpostctl init`.
  std::filesystem::path dataDir;
  asio::ip::tcp::endpoint listen{asio::ip::make_address("127.0.0.1"), 7420};
  /// Where to serve /metrics and /health; none when unset.
  std::optional<asio::ip::tcp::endpoint> metrics;
  unsigned threads = 2;
  /// Connections beyond this are closed as soon as they are accepted.
  std::size_t maxConnections = 512;
  /// Per-connection message size limit and read/write timeouts.
  protocol::ChannelLimits limits{};
  /// Pushed changes stamped further ahead of server time are rejected (clock_skew).
  std::chrono::milliseconds maxSkew = std::chrono::minutes(2);
};

/// Parses "HOST:PORT" (IPv4/IPv6 literal or "localhost"). Throws
/// Error{invalid_argument} saying what is wrong.
[[nodiscard]] asio::ip::tcp::endpoint parseEndpoint(std::string_view text);

class Server {
public:
  /// Loads the keys, checks the store and binds the ports (so `port()` is valid when
  /// this returns). Throws Error{not_found} for a data folder without `outpostctl
  /// init`, Error{network} when a port cannot be bound.
  Server(const Context& context, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] std::optional<std::uint16_t> metricsPort() const noexcept;
  [[nodiscard]] const protocol::noise::PublicKey& publicKey() const noexcept;
  [[nodiscard]] const Metrics& metrics() const noexcept;

  /// Stops on SIGINT and SIGTERM (call before run()).
  void handleSignals();
  /// Serves on `threads` threads (this one included) until stop() and until every
  /// session has ended. Returns normally after a graceful stop.
  void run();
  /// Graceful stop, from any thread, any number of times: stop accepting, close idle
  /// sessions, let sessions in the middle of a request finish it and then close.
  void stop();

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace outpost::server
