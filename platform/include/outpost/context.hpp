#pragma once
/// \file
/// The explicit library context: initialises libsodium and carries the logger.
/// There are no globals in Outpost; components that need crypto or logging take a
/// `Context&`, which proves initialisation happened before them.

#include <memory>

namespace spdlog {
class logger;
}

namespace outpost {

/// Owns process-wide set-up done once per program. Cheap to pass by reference;
/// not copyable. Thread-safe once constructed (libsodium and spdlog loggers are).
class Context {
public:
  /// Initialises libsodium (throws `Error{Errc::internal}` if it cannot) and uses
  /// `logger`, or a stderr logger named "outpost" when null.
  explicit Context(std::shared_ptr<spdlog::logger> logger = nullptr);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The logger components write to. Never log record contents or keys.
  [[nodiscard]] spdlog::logger& log() const noexcept { return *logger_; }

private:
  std::shared_ptr<spdlog::logger> logger_;
};

} // namespace outpost
