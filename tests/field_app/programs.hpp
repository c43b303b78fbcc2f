#pragma once
// The real programs as child processes: outpostctl, outpost-server (on 127.0.0.1,
// port 0 so the kernel picks a free one) and outpost-field with --json, each in temp
// folders. Paths come from CMake (OUTPOSTCTL_PATH, OUTPOST_SERVER_PATH,
// OUTPOST_FIELD_PATH).

#include "../support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace outpost::test {

namespace fs = std::filesystem;
using nlohmann::json;

/// What a finished program left: its exit code (-1 if it did not exit normally),
/// stdout and stderr.
struct Run {
  int status = -1;
  std::string out;
  std::string err;
  /// stdout as JSON (a failed check, and null, when it is not JSON).
  [[nodiscard]] json document() const {
    json j = json::parse(out, nullptr, false);
    CHECK_MESSAGE(!j.is_discarded(), "not JSON: " << out << " / stderr: " << err);
    return j.is_discarded() ? json() : j;
  }
  /// The stable error name of a refusal printed with --json, or "".
  [[nodiscard]] std::string errorCode() const {
    const json j = json::parse(out, nullptr, false);
    if (j.is_object() && j.contains("error")) {
      return j["error"].value("code", "");
    }
    return "";
  }
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The environment of this process with `set` added or replaced (an empty value
/// removes the variable).
inline std::vector<std::string> environment(const std::map<std::string, std::string>& set) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (!set.contains(name)) {
      env.push_back(entry);
    }
  }
  for (const auto& [name, value] : set) {
    if (!value.empty()) {
      env.push_back(name + "=" + value);
    }
  }
  return env;
}

inline std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

/// Runs `program` with `args` and waits for it (stdin from `input`, else /dev/null).
inline Run run(const fs::path& scratch, const std::string& program,
               const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {},
               const std::optional<std::string>& input = std::nullopt) {
  const fs::path out = scratch / "run.stdout";
  const fs::path err = scratch / "run.stderr";
  const fs::path in = scratch / "run.stdin";
  {
    std::ofstream f(in, std::ios::binary | std::ios::trunc);
    f << input.value_or("");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> argStrings{program};
  argStrings.insert(argStrings.end(), args.begin(), args.end());
  std::vector<std::string> envStrings = environment(env);
  auto argv = pointers(argStrings);
  auto envp = pointers(envStrings);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE_MESSAGE(rc == 0, "cannot start " << program);
  int status = 0;
  waitpid(pid, &status, 0);
  Run r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

/// outpost-server on 127.0.0.1 with a port the kernel picked; killed at the end.
class ServerProcess {
public:
  explicit ServerProcess(const fs::path& data) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO,
                                     (data.parent_path() / "server.log").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    std::vector<std::string> args = {
        OUTPOST_SERVER_PATH, "--data", data.string(), "--listen", "127.0.0.1:0", "--threads", "2"};
    auto argv = pointers(args);
    REQUIRE(posix_spawn(&pid_, OUTPOST_SERVER_PATH, &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    std::string line;
    for (int i = 0; i < 200 && line.find('\n') == std::string::npos; ++i) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        char buf[256];
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) {
          break;
        }
        line.append(buf, static_cast<std::size_t>(n));
      }
    }
    close(fds[0]);
    const std::string marker = "listening on 127.0.0.1:";
    const auto at = line.find(marker);
    REQUIRE_MESSAGE(at != std::string::npos, "outpost-server did not start: " << line);
    const auto start = at + marker.size();
    port_ = std::stoi(line.substr(start, line.find(' ', start) - start));
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  [[nodiscard]] int port() const noexcept { return port_; }

private:
  pid_t pid_ = -1;
  int port_ = 0;
};

/// A server data folder administered with outpostctl.
class Central {
public:
  explicit Central(const TempDir& scratch) : scratch_(scratch.path()), data_(scratch / "server") {
    ctl({"init"});
    ctl({"team", "add", "north"});
  }
  /// Runs outpostctl --data DIR --json ARGS; REQUIREs success; returns its JSON.
  json ctl(std::vector<std::string> args) const {
    const Run r = ctlRun(std::move(args));
    REQUIRE_MESSAGE(r.status == 0, "outpostctl failed: " << r.err);
    return json::parse(r.out, nullptr, false);
  }
  [[nodiscard]] Run ctlRun(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--data", data_.string(), "--json"});
    return run(scratch_, OUTPOSTCTL_PATH, args);
  }
  [[nodiscard]] const fs::path& data() const noexcept { return data_; }
  /// A one-time enrollment payload for `worker`, pointing at `port`.
  [[nodiscard]] std::string payload(const std::string& worker, int port) const {
    return ctl({"enroll", worker, "--ttl", "1h", "--server", "127.0.0.1:" + std::to_string(port)})
        .at("payload");
  }

private:
  fs::path scratch_;
  fs::path data_;
};

/// A device folder used through outpost-field --json, with the worker's PIN.
class Device {
public:
  Device(const TempDir& scratch, const std::string& name, std::string pin = "2468")
      : scratch_(scratch.path()), dir_(scratch / name), pin_(std::move(pin)) {}

  /// Runs outpost-field --vault DIR --json ARGS with OUTPOST_PIN set to `pin`
  /// (std::nullopt: no PIN at all).
  [[nodiscard]] Run field(std::vector<std::string> args,
                          std::optional<std::string> pin = std::string(),
                          const std::optional<std::string>& input = std::nullopt) const {
    args.insert(args.begin(), {"--vault", dir_.string(), "--json"});
    const std::string usePin = pin ? (pin->empty() ? pin_ : *pin) : std::string();
    return run(scratch_, OUTPOST_FIELD_PATH, args, {{"OUTPOST_PIN", usePin}, {"OUTPOST_VAULT", ""}},
               input);
  }
  /// As `field`, REQUIRing success; returns the JSON document.
  json ok(std::vector<std::string> args) const {
    const Run r = field(args);
    REQUIRE_MESSAGE(r.status == 0,
                    "outpost-field " << args.front() << " failed: " << r.out << r.err);
    return r.document();
  }
  /// As `field`, REQUIRing a refusal with a non-zero exit; returns the error name.
  std::string refused(std::vector<std::string> args,
                      std::optional<std::string> pin = std::string()) const {
    const Run r = field(args, std::move(pin));
    CHECK_MESSAGE(r.status != 0, "outpost-field accepted: " << r.out);
    return r.errorCode();
  }
  [[nodiscard]] const fs::path& dir() const noexcept { return dir_; }

private:
  fs::path scratch_;
  fs::path dir_;
  std::string pin_;
};

} // namespace outpost::test
