#include "outpost/context.hpp"

#include "outpost/error.hpp"

#include <sodium.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace outpost {

namespace {
std::shared_ptr<spdlog::logger> defaultLogger() {
  // Not registered with spdlog's registry: each Context owns its logger.
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("outpost", std::move(sink));
  logger->set_level(spdlog::level::warn);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %n: %v", spdlog::pattern_time_type::utc);
  return logger;
}
} // namespace

Context::Context(std::shared_ptr<spdlog::logger> logger)
    : logger_(logger ? std::move(logger) : defaultLogger()) {
  // sodium_init() is idempotent and thread-safe; -1 means it could not initialise.
  if (sodium_init() < 0) {
    throw Error(Errc::internal, "libsodium could not be initialised");
  }
}

Context::~Context() = default;

} // namespace outpost
