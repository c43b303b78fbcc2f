#pragma once
// Real TCP on 127.0.0.1 for the channel tests: an acceptor on an ephemeral port,
// helpers to run client and server coroutines to completion in one io_context, and
// a man-in-the-middle proxy that can drop, replay, reorder, flip or cut frames.

#include <outpost/asio.hpp>
#include <outpost/error.hpp>

#include <exception>
#include <functional>
#include <optional>
#include <vector>

namespace outpost::protocol::testing {

using tcp = asio::ip::tcp;
using Frame = std::vector<std::uint8_t>;

inline tcp::endpoint localhost(std::uint16_t port = 0) {
  return {asio::ip::make_address("127.0.0.1"), port};
}

inline Errc codeOf(const std::exception_ptr& e) {
  if (!e) {
    return Errc::ok;
  }
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return err.code();
  } catch (...) {
    return Errc::internal;
  }
}

inline asio::awaitable<tcp::socket> connectTo(std::uint16_t port) {
  tcp::socket s(co_await asio::this_coro::executor);
  co_await s.async_connect(localhost(port), asio::use_awaitable);
  co_return s;
}

/// Spawns the coroutine function `fn` (kept alive by Asio for the coroutine's
/// lifetime, unlike a lambda called in place) and records how it ended.
template <typename F>
void spawn(asio::io_context& io, F fn, std::optional<std::exception_ptr>& result) {
  asio::co_spawn(io, std::move(fn), [&result](std::exception_ptr e, auto&&...) { result = e; });
}

/// Decides what the proxy forwards for each device->server frame (index counts
/// from the first handshake frame). Returns the frames to send now.
using FrameHook = std::function<std::vector<Frame>(std::size_t index, Frame frame)>;

/// Accepts one connection on `front`, connects to `backPort`, forwards the
/// preamble, then frames (device->server through `hook`) and bytes (server->device).
inline asio::awaitable<void> proxy(tcp::acceptor& front, std::uint16_t backPort, FrameHook hook) {
  tcp::socket device = co_await front.async_accept(asio::use_awaitable);
  tcp::socket server = co_await connectTo(backPort);
  auto back = [&]() -> asio::awaitable<void> {
    std::array<std::uint8_t, 4096> buf{};
    boost::system::error_code ec;
    for (;;) {
      const std::size_t n = co_await server.async_read_some(
          asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        device.close(ec);
        co_return;
      }
      co_await asio::async_write(device, asio::buffer(buf.data(), n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        co_return;
      }
    }
  };
  asio::co_spawn(co_await asio::this_coro::executor, back(), asio::detached);
  boost::system::error_code ec;
  std::array<std::uint8_t, 8> preamble{};
  co_await asio::async_read(device, asio::buffer(preamble),
                            asio::redirect_error(asio::use_awaitable, ec));
  co_await asio::async_write(server, asio::buffer(preamble),
                             asio::redirect_error(asio::use_awaitable, ec));
  for (std::size_t index = 0;; ++index) {
    std::array<std::uint8_t, 2> header{};
    co_await asio::async_read(device, asio::buffer(header),
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      server.close(ec);
      co_return;
    }
    Frame frame(static_cast<std::size_t>(header[0]) << 8 | header[1]);
    co_await asio::async_read(device, asio::buffer(frame),
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      server.close(ec);
      co_return;
    }
    for (const Frame& f : hook(index, std::move(frame))) {
      std::vector<std::uint8_t> out(f.size() + 2);
      out[0] = static_cast<std::uint8_t>(f.size() >> 8);
      out[1] = static_cast<std::uint8_t>(f.size() & 0xff);
      std::copy(f.begin(), f.end(), out.begin() + 2);
      co_await asio::async_write(server, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

} // namespace outpost::protocol::testing
