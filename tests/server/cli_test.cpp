// The real programs: outpostctl commands (and their refusals), and outpost-server
// as a subprocess that a device syncs with and that exits cleanly on SIGTERM.

#include "harness.hpp"

#include <nlohmann/json.hpp>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

extern char** environ;

using namespace outpost;
using namespace outpost::server;
using namespace outpost::server::testing;

namespace {

struct Run {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs outpostctl with `args` (already shell-quoted where needed).
Run ctl(const TempDir& scratch, const std::string& args) {
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

  explicit ServerProcess(const fs::path& data) {
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
    std::string line;
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

  /// Sends `signal` and waits (at most 10 s) for the exit; returns the exit code, or
  /// -1 when it did not exit normally in time.
  int signalAndWait(int signal) {
    kill(pid, signal);
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
};

} // namespace

TEST_SUITE("server.cli") {
  TEST_CASE("outpostctl refuses bad input with a message and a non-zero exit") {
    TempDir scratch;
    const std::string data = (scratch.path / "data").string();
    SUBCASE("missing --data") {
      const Run r = ctl(scratch, "devices");
      CHECK(r.status != 0);
      CHECK(r.err.find("--data") != std::string::npos);
    }
    SUBCASE("a folder that was never initialised") {
      const Run r = ctl(scratch, "--data " + data + " devices");
      CHECK(r.status == 1);
      CHECK(r.err.find("init") != std::string::npos);
      CHECK_FALSE(fs::exists(data));
    }
    SUBCASE("init twice, an unknown team, a bad device id, a bad ttl") {
      const Run first = ctl(scratch, "--data " + data + " init --listen 127.0.0.1:7420");
      REQUIRE(first.status == 0);
      CHECK(first.out.find("server public key") != std::string::npos);
      const std::string keyBefore = slurp(fs::path(data) / "keys" / "server-static");
      const Run second = ctl(scratch, "--data " + data + " init");
      CHECK(second.status == 1);
      CHECK(second.err.find("already") != std::string::npos);
      CHECK(slurp(fs::path(data) / "keys" / "server-static") == keyBefore);

      const Run noTeam = ctl(scratch, "--data " + data + " worker add alice --team north");
      CHECK(noTeam.status == 1);
      CHECK(noTeam.err.find("team add") != std::string::npos);
      CHECK(ctl(scratch, "--data " + data + " team add north").status == 0);
      CHECK(ctl(scratch, "--data " + data + " team add north").status == 1);
      CHECK(ctl(scratch, "--data " + data + " worker add alice --team north").status == 0);
      CHECK(ctl(scratch, "--data " + data + " enroll nobody").status == 1);
      CHECK(ctl(scratch, "--data " + data + " worker set-teams alice --team south").status == 1);
      CHECK(ctl(scratch, "--data " + data + " worker set-teams nobody --team north").status == 1);
      CHECK(ctl(scratch, "--data " + data + " enroll alice --ttl forever").status == 1);
      CHECK(ctl(scratch, "--data " + data + " revoke not-a-uuid").status == 1);
      CHECK(
          ctl(scratch, "--data " + data + " revoke 00000000-0000-4000-8000-000000000000").status ==
          1);
      CHECK(ctl(scratch, "--data " + data + " export --format xml").status != 0);
      CHECK(ctl(scratch, "--data " + data + " conflicts show nope").status == 1);
      const Run help = ctl(scratch, "enroll --help");
      CHECK(help.status == 0);
      CHECK(help.out.find("--ttl") != std::string::npos);
    }
  }

  TEST_CASE("end to end with the real programs: init, enroll, sync, conflicts, export, SIGTERM") {
    Context ctx;
    TempDir scratch;
    const fs::path data = scratch.path / "data";
    const std::string d = "--data " + data.string();
    REQUIRE(ctl(scratch, d + " init").status == 0);
    REQUIRE(ctl(scratch, d + " team add north").status == 0);
    REQUIRE(ctl(scratch, d + " worker add alice --team north").status == 0);
    REQUIRE(ctl(scratch, d + " worker add bob --team north").status == 0);

    ServerProcess server(data);
    const std::string line = server.firstLine();
    const auto at = line.find("listening on 127.0.0.1:");
    REQUIRE(at != std::string::npos);
    const std::string port = line.substr(at + 23, line.find(' ', at + 23) - (at + 23));

    Device a(ctx);
    Device b(ctx);
    for (const auto& [device, worker] : {std::pair<Device*, std::string>{&a, "alice"},
                                         std::pair<Device*, std::string>{&b, "bob"}}) {
      const Run issued =
          ctl(scratch, d + " --json enroll " + worker + " --ttl 1h --server 127.0.0.1:" + port);
      REQUIRE(issued.status == 0);
      const auto j = nlohmann::json::parse(issued.out);
      const std::string payload = j.at("payload");
      CHECK(payload.rfind("outpost-enroll:v1:127.0.0.1:" + port + ":", 0) == 0);
      device->enroll(payload);
      (void)device->hello();
    }
    const protocol::Uuid record = newId();
    const protocol::Change base = a.change(record, "risk.level", std::string("low"));
    (void)a.push({base});
    (void)a.push({a.change(record, "risk.level", std::string("medium"), base.hlc, a.deviceId)});
    (void)b.push({b.change(record, "risk.level", std::string("high"), base.hlc, a.deviceId)});
    a.channel.reset();
    b.channel.reset();

    const Run devices = ctl(scratch, d + " --json devices");
    REQUIRE(devices.status == 0);
    CHECK(nlohmann::json::parse(devices.out).size() == 2);
    const Run list = ctl(scratch, d + " --json conflicts list");
    REQUIRE(list.status == 0);
    const auto conflicts = nlohmann::json::parse(list.out);
    REQUIRE(conflicts.size() == 1);
    const std::string recordId = conflicts[0].at("record");
    const Run show = ctl(scratch, d + " conflicts show " + recordId);
    CHECK(show.status == 0);
    CHECK(show.out.find("risk.level") != std::string::npos);

    const Run json =
        ctl(scratch, d + " export --format json --out " + (scratch.path / "export.json").string());
    REQUIRE(json.status == 0);
    const auto exported = nlohmann::json::parse(slurp(scratch.path / "export.json"));
    REQUIRE(exported.at("records").size() == 1);
    CHECK(exported["records"][0]["inConflict"] == true);
    CHECK(exported["records"][0]["conflicts"]["risk.level"].size() == 2);
    const Run csv = ctl(scratch, d + " export --format csv");
    CHECK(csv.status == 0);
    CHECK(csv.out.find("risk.level") != std::string::npos);

    // Revocation takes effect on the running server.
    sync::Uuid bId;
    bId.bytes = b.deviceId;
    CHECK(ctl(scratch, d + " revoke " + bId.toString()).status == 0);
    CHECK(codeOf([&] { (void)b.hello(); }) == Errc::revoked);

    CHECK(server.signalAndWait(SIGTERM) == 0);
  }
}
