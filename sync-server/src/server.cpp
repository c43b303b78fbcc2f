// The acceptor, the thread pool, graceful stop, and the metrics/health HTTP port.

#include "server_impl.hpp"

#include <outpost/error.hpp>
#include <outpost/server/builtin_schema.hpp>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <thread>

namespace outpost::server {

namespace beast = boost::beast;
namespace http = beast::http;

tcp::endpoint parseEndpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    throw Error(Errc::invalid_argument,
                "'" + std::string(text) + "' is not HOST:PORT (e.g. 127.0.0.1:7420)");
  }
  std::string host(text.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  const std::string_view portText = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || end != portText.data() + portText.size() || port > 65535) {
    throw Error(Errc::invalid_argument, "'" + std::string(portText) + "' is not a port number");
  }
  boost::system::error_code bad;
  const auto address = asio::ip::make_address(host, bad);
  if (bad) {
    throw Error(Errc::invalid_argument, "'" + host + "' is not an IP address");
  }
  return {address, static_cast<std::uint16_t>(port)};
}

namespace {

void bindAcceptor(tcp::acceptor& acceptor, const tcp::endpoint& endpoint, std::string_view what) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw Error(Errc::network, "cannot listen for " + std::string(what) + " on " +
                                   endpoint.address().to_string() + ":" +
                                   std::to_string(endpoint.port()) + ": " + ec.message() +
                                   "; choose another address or port");
  }
}

} // namespace

Server::Impl::Impl(const Context& ctx, ServerOptions opts)
    : context(ctx), options(std::move(opts)), keys(ServerKeys::load(options.dataDir)) {
  if (options.threads == 0) {
    options.threads = 1;
  }
  // Fails now, with a clear message, rather than at the first connection. The store
  // merges the built-in types' fields with the devices' policies.
  const std::size_t changed = openStore()->setFieldPolicies(builtinFieldPolicies());
  if (changed > 0) {
    context.log().info("{} field merge policies set from the built-in schema", changed);
  }
  hlc.restore(sync::Hlc::make(static_cast<std::uint64_t>(clock.unixMillis()), 0));
  bindAcceptor(acceptor, options.listen, "devices");
  if (options.metrics) {
    bindAcceptor(metricsAcceptor, *options.metrics, "metrics");
  }
}

std::unique_ptr<ServerStore> Server::Impl::openStore() {
  auto store = std::make_unique<SqliteServerStore>(context, options.dataDir, keys);
  store->setAutoCheckpoint(false); // the checkpointer's thread does it
  return store;
}

sync::Hlc Server::Impl::now() {
  const std::lock_guard lock(hlcMutex);
  return hlc.now();
}

void Server::Impl::observe(sync::Hlc pushed) {
  if (pushed.isZero()) {
    return;
  }
  const std::lock_guard lock(hlcMutex);
  (void)hlc.update(pushed); // beyond the skew bound it was rejected anyway
}

asio::awaitable<void> Server::Impl::acceptLoop() {
  for (;;) {
    auto control = std::make_shared<SessionControl>(SessionControl{asio::make_strand(io)});
    tcp::socket socket(control->strand);
    boost::system::error_code ec;
    co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      // E.g. out of file descriptors: wait a little rather than spin.
      context.log().warn("accept failed: {}", ec.message());
      asio::steady_timer pause(io, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    metrics.connectionsTotal.fetch_add(1);
    if (static_cast<std::size_t>(metrics.connectionsCurrent.load()) >= options.maxConnections) {
      metrics.connectionsRefused.fetch_add(1);
      socket.close(ec);
      continue;
    }
    metrics.connectionsCurrent.fetch_add(1);
    auto strand = control->strand;
    asio::co_spawn(strand, runSession(*this, std::move(socket), std::move(control)),
                   asio::detached);
  }
}

asio::awaitable<void> Server::Impl::metricsLoop() {
  for (;;) {
    tcp::socket socket(asio::make_strand(io));
    boost::system::error_code ec;
    co_await metricsAcceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !metricsAcceptor.is_open()) {
        co_return;
      }
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, serveHttp(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Server::Impl::serveHttp(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(8192);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(8192);
  boost::system::error_code ec;
  stream.expires_after(std::chrono::seconds(5));
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return;
  }
  const auto& request = parser.get();
  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(false);
  response.set(http::field::server, "outpost-server");
  const std::string_view target(request.target().data(), request.target().size());
  if (request.method() != http::verb::get) {
    response.result(http::status::method_not_allowed);
    response.body() = "use GET\n";
  } else if (target == "/health") {
    response.result(http::status::ok);
    response.set(http::field::content_type, "text/plain");
    response.body() = "ok";
  } else if (target == "/metrics") {
    response.result(http::status::ok);
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    metrics.walCheckpoints.store(checkpointer.checkpoints());
    metrics.pushCommits.store(writer.commits());
    response.body() = metrics.render();
  } else {
    response.result(http::status::not_found);
    response.body() = "try /metrics or /health\n";
  }
  response.prepare_payload();
  co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

void Server::Impl::doStop() {
  std::vector<std::shared_ptr<SessionControl>> open;
  {
    const std::lock_guard lock(controlsMutex);
    if (stopping) {
      return;
    }
    stopping = true;
    for (const auto& [id, control] : controls) {
      (void)id;
      open.push_back(control);
    }
  }
  context.log().info("stopping: no new connections; {} open", open.size());
  boost::system::error_code ec;
  acceptor.close(ec);
  metricsAcceptor.close(ec);
  signals.cancel(ec);
  for (auto& control : open) {
    // On the session's strand: an idle session is closed now, a busy one finishes
    // its request (a batch in flight is committed and acknowledged) and then stops.
    asio::post(control->strand, [control] {
      control->stopRequested = true;
      if (control->channel != nullptr && !control->busy) {
        control->channel->close();
      }
    });
  }
}

Server::Server(const Context& context, ServerOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}

Server::~Server() = default;

std::uint16_t Server::port() const noexcept { return impl_->acceptor.local_endpoint().port(); }

std::optional<std::uint16_t> Server::metricsPort() const noexcept {
  if (!impl_->options.metrics) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  const auto endpoint = impl_->metricsAcceptor.local_endpoint(ec);
  if (ec) {
    return std::nullopt;
  }
  return endpoint.port();
}

const protocol::noise::PublicKey& Server::publicKey() const noexcept {
  return impl_->keys.staticKey.publicKey;
}

const Metrics& Server::metrics() const noexcept { return impl_->metrics; }

void Server::handleSignals() {
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait(asio::bind_executor(
      impl_->controlStrand, [this](const boost::system::error_code& ec, int signal) {
        if (!ec) {
          impl_->context.log().info("signal {}: stopping gracefully", signal);
          impl_->doStop();
        }
      }));
}

void Server::run() {
  asio::co_spawn(impl_->controlStrand, impl_->acceptLoop(), asio::detached);
  if (impl_->options.metrics) {
    asio::co_spawn(impl_->controlStrand, impl_->metricsLoop(), asio::detached);
  }
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < impl_->options.threads; ++i) {
    pool.emplace_back([this] { impl_->io.run(); });
  }
  impl_->io.run();
  for (auto& t : pool) {
    t.join();
  }
}

void Server::stop() {
  asio::post(impl_->controlStrand, [this] { impl_->doStop(); });
}

} // namespace outpost::server
