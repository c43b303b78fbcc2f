#pragma once
// The real programs as child processes: outpostctl runs, and outpost-server with
// its stdout on a pipe (for the "listening" line), stopped by a signal or killed.

#include "harness.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

extern char** environ;

namespace outpost::server::testing {

struct Run {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs outpostctl with `args` (already shell-quoted where needed).
inline Run ctl(const TempDir& scratch, const std::string& args) {
  const fs::path out = scratch.path / "stdout";
  const fs::path err = scratch.path / "stderr";
  const std::string cmd =
      std::string(OUTPOSTCTL_PATH) + " " + args + " >" + out.string() + " 2>" + err.string();
  const int rc = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

/// outpost-server as a child process with its stdout on a pipe.
struct ServerProcess {
  pid_t pid = -1;
  int stdoutFd = -1;
  std::string line; ///< the "listening" line, once read

  explicit ServerProcess(const fs::path& data, std::vector<std::string> extra = {}) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::string dataArg = data.string();
    std::vector<std::string> args = {OUTPOST_SERVER_PATH, "--data",      dataArg,
                                     "--listen",          "127.0.0.1:0", "--metrics",
                                     "127.0.0.1:0",       "--threads",   "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    REQUIRE(posix_spawn(&pid, OUTPOST_SERVER_PATH, &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    stdoutFd = fds[0];
  }
  ~ServerProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
    }
    if (stdoutFd >= 0) {
      close(stdoutFd);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  /// The "listening" line, waited for at most 10 s.
  std::string firstLine() {
    for (int i = 0; i < 100 && line.find('\n') == std::string::npos; ++i) {
      pollfd p{stdoutFd, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        char buf[256];
        const ssize_t n = read(stdoutFd, buf, sizeof buf);
        if (n <= 0) {
          break;
        }
        line.append(buf, static_cast<std::size_t>(n));
      }
    }
    return line;
  }

  /// The device port from the "listening" line (0 when it did not come).
  std::uint16_t port() {
    const std::string l = firstLine();
    const auto at = l.find("listening on 127.0.0.1:");
    if (at == std::string::npos) {
      return 0;
    }
    return static_cast<std::uint16_t>(std::stoi(l.substr(at + 23)));
  }

  /// Sends `signal` and waits (at most 10 s) for the exit; returns the exit code, or
  /// -1 when it did not exit normally in time.
  int signalAndWait(int signal) {
    kill(pid, signal);
    return waitExit();
  }

  /// Waits (at most 10 s) for the exit; the exit code, or -1 as signalAndWait().
  int waitExit() {
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(50ms);
    }
    return -1;
  }

  /// kill -9, and wait for it to be gone.
  void killNow() {
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
  }
};

} // namespace outpost::server::testing
