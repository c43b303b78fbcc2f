// outpost-server --data DIR [--listen 127.0.0.1:PORT] [--metrics 127.0.0.1:PORT] [--threads N]

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/enrollment.hpp>
#include <outpost/server/server.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

int main(int argc, char** argv) {
  using namespace outpost;
  CLI::App app{"outpost-server: the Outpost sync server (docs/operations.md)"};
  std::string dataDir;
  std::string listen = "127.0.0.1:7420";
  std::string metrics;
  unsigned threads = 2;
  std::size_t maxConnections = 512;
  std::string logLevel = "info";
  app.add_option("--data", dataDir, "The data folder made by 'outpostctl init'")->required();
  app.add_option("--listen", listen, "Address and port for devices (HOST:PORT; port 0 = any free)")
      ->capture_default_str();
  app.add_option("--metrics", metrics, "Address and port for /metrics and /health (HOST:PORT)");
  app.add_option("--threads", threads, "Worker threads")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  app.add_option("--max-connections", maxConnections, "Connections served at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_color_mt("outpost-server");
  logger->set_level(spdlog::level::from_str(logLevel));
  try {
    Context context(logger);
    server::ServerOptions options;
    options.dataDir = dataDir;
    options.listen = server::parseEndpoint(listen);
    if (!metrics.empty()) {
      options.metrics = server::parseEndpoint(metrics);
    }
    options.threads = threads;
    options.maxConnections = maxConnections;
    server::Server srv(context, options);
    srv.handleSignals();
    // One line for people and scripts to wait for.
    std::cout << "outpost-server listening on " << options.listen.address().to_string() << ":"
              << srv.port() << " key " << protocol::toBase64Url(srv.publicKey());
    if (const auto port = srv.metricsPort()) {
      std::cout << " metrics " << options.metrics->address().to_string() << ":" << *port;
    }
    std::cout << std::endl;
    srv.run();
    logger->info("stopped");
    return 0;
  } catch (const Error& e) {
    std::cerr << "outpost-server: " << e.message() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "outpost-server: " << e.what() << "\n";
    return 1;
  }
}
