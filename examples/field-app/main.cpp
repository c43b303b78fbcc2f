// outpost-field: a field app on the Outpost SDK's public API, for a worker at a
// terminal and for scripts (--json). See docs/getting-started.md.
//
//   outpost-field --vault DIR [--json] <command> ...
//
// The PIN comes from a no-echo prompt at the terminal or from OUTPOST_PIN. Every
// command prints one JSON document on stdout with --json (a refusal too, as
// {"error": {"code": "<stable name>", ...}}), and exits 0 on success, 1 when it was
// refused (nothing was changed), 2 for a command line it does not understand.

#include "commands.hpp"

#include <outpost/context.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <string_view>

namespace {

using namespace outpost;
using namespace outpost::field;

/// "type.field: problem; type.field: problem" (the SDK's validation messages) as a
/// list of {field, message}.
json problemsOf(const std::string& message) {
  json problems = json::array();
  std::size_t start = 0;
  while (start < message.size()) {
    std::size_t end = message.find("; ", start);
    if (end == std::string::npos) {
      end = message.size();
    }
    const std::string part = message.substr(start, end - start);
    const std::size_t colon = part.find(": ");
    if (colon == std::string::npos) {
      problems.push_back({{"field", ""}, {"message", part}});
    } else {
      problems.push_back({{"field", part.substr(0, colon)}, {"message", part.substr(colon + 2)}});
    }
    start = end + 2;
  }
  return problems;
}

int refuse(bool json, Errc code, const std::string& message, const nlohmann::json& details,
           int exitCode) {
  if (json) {
    std::cout << errorJson(code, message, details).dump(2) << "\n";
  } else {
    std::cerr << "outpost-field: " << message << "\n";
    if (code != Errc::invalid_argument && code != Errc::validation) {
      std::cerr << "(" << errcName(code) << ": " << errcAdvice(code) << ")\n";
    }
  }
  return exitCode;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"outpost-field: record, assess and sync safeguarding work on a device.\n"
               "The PIN is typed at a no-echo prompt, or taken from OUTPOST_PIN."};
  app.require_subcommand(1);
  std::string dir;
  bool json = false;
  app.add_option("--vault", dir, "The device folder (vault, keys)")
      ->required()
      ->envname("OUTPOST_VAULT");
  app.add_flag("--json", json, "One JSON document on stdout (errors too)");
  std::string logLevel = "error";
  app.add_option("--log-level", logLevel,
                 "The SDK's log on stderr: trace, debug, info, warn, error (the app says what "
                 "matters to the worker itself)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  Action action;
  addVaultCommands(app, action);
  addSyncCommands(app, action);
  addRecordCommands(app, action);
  addAssessmentCommands(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    bool wantsJson = false;
    for (int i = 1; i < argc; ++i) {
      wantsJson = wantsJson || std::string_view(argv[i]) == "--json";
    }
    return refuse(wantsJson, Errc::invalid_argument,
                  std::string(e.what()) + "; see 'outpost-field --help'", nlohmann::json::object(),
                  2);
  }

  auto logger = spdlog::stderr_color_mt("outpost-field");
  logger->set_level(spdlog::level::from_str(logLevel));
  try {
    Context context(logger);
    Env env{context, DeviceFolder{dir}, json};
    const Result r = action(env);
    if (json) {
      std::cout << r.data.dump(2) << "\n";
    } else {
      std::cout << r.text;
    }
    std::cout.flush();
    return std::cout ? 0 : 1;
  } catch (const Failure& f) {
    return refuse(json, f.code(), f.message(), f.details(), 1);
  } catch (const Error& e) {
    nlohmann::json details = nlohmann::json::object();
    if (e.code() == Errc::validation) {
      details["problems"] = problemsOf(e.message());
    }
    std::string message = e.message();
    if (e.code() == Errc::validation) {
      message = "not saved: " + message;
    }
    return refuse(json, e.code(), message, details, 1);
  } catch (const std::exception& e) {
    return refuse(json, Errc::internal, e.what(), nlohmann::json::object(), 1);
  }
}
