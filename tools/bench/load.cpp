// outpost-bench load: simulated devices against a real outpost-server process
// (see load.hpp). The devices run as coroutines on one client thread; the server is
// a child process, so its memory and CPU are its own.
//
// Callers name values before co_await: gcc 12 mis-destroys temporaries that live
// across one.

#include "load.hpp"

#include <outpost/asio.hpp>
#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/channel.hpp>
#include <outpost/protocol/enrollment.hpp>
#include <outpost/protocol/session.hpp>
#include <outpost/server/keys.hpp>
#include <outpost/server/sqlite_store.hpp>
#include <outpost/sync/uuid.hpp>

#include <CLI/CLI.hpp>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

extern char** environ;

namespace outpost::bench {

namespace {

namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr std::string_view kId = "load";

double msSince(SteadyClock::time_point t0) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
}

std::uint64_t hlcNow(std::uint32_t& counter) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return (static_cast<std::uint64_t>(ms) << 16) | (counter++ & 0xffffu);
}

/// Raises the soft descriptor limit to the hard one (inherited by the server).
rlim_t raiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return 0;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
    (void)::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

fs::path defaultServerPath() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("outpost-server") : self.parent_path() / "outpost-server";
}

fs::path makeScratchDir() {
  std::string tmpl = (fs::temp_directory_path() / "outpost-load-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw Error(Errc::io,
                "cannot create a scratch folder in " + fs::temp_directory_path().string());
  }
  return tmpl;
}

/// outpost-server as a child process.
class ServerChild {
public:
  ServerChild(const fs::path& program, std::vector<std::string> args) {
    int fds[2];
    if (::pipe(fds) != 0) {
      throw Error(Errc::io, std::string("pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    args.insert(args.begin(), program.string());
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    if (rc != 0) {
      pid_ = -1;
      throw Error(Errc::not_found, "cannot start '" + program.string() + "': " + std::strerror(rc) +
                                       "; build it or pass --server PATH");
    }
  }
  ~ServerChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    ::close(out_);
  }
  ServerChild(const ServerChild&) = delete;
  ServerChild& operator=(const ServerChild&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  /// The first line of its standard output (the "listening" line), within 20 s.
  std::string firstLine() {
    std::string line;
    for (int i = 0; i < 200 && line.find('\n') == std::string::npos; ++i) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char buf[512];
        const ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) {
          break;
        }
        line.append(buf, static_cast<std::size_t>(n));
      }
    }
    return line;
  }

  /// SIGTERM, then the exit status (-1 unless it exited normally within 30 s).
  int terminate() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 600; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

private:
  pid_t pid_ = -1;
  int out_ = -1;
};

/// VmRSS and VmHWM (KiB), memory mappings and CPU seconds (user + system) of a process.
struct ProcessUsage {
  std::int64_t rssKiB = 0;
  std::int64_t hwmKiB = 0;
  std::int64_t mappings = 0; // lines of /proc/PID/maps (Linux caps them: vm.max_map_count)
  double cpuSeconds = 0;
};

ProcessUsage usageOf(pid_t pid) {
  ProcessUsage u;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream fields(line);
    std::string name;
    std::int64_t value = 0;
    fields >> name >> value;
    if (name == "VmRSS:") {
      u.rssKiB = value;
    } else if (name == "VmHWM:") {
      u.hwmKiB = value;
    }
  }
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  while (std::getline(maps, line)) {
    ++u.mappings;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')'); // the command name may contain spaces
  if (close != std::string::npos) {
    std::istringstream rest(all.substr(close + 2));
    std::string field;
    double utime = 0;
    double stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) {
        utime = std::stod(field);
      } else if (i == 15) {
        stime = std::stod(field);
      }
    }
    u.cpuSeconds = (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return u;
}

double ownCpuSeconds() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/// One value of the server's /metrics (-1 when it cannot be read).
double metricValue(std::uint16_t port, std::string_view name) {
  try {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    std::string body;
    std::array<char, 4096> buf{};
    boost::system::error_code ec;
    for (;;) {
      const std::size_t n = socket.read_some(asio::buffer(buf), ec);
      body.append(buf.data(), n);
      if (ec) {
        break;
      }
    }
    const std::string key = "\n" + std::string(name) + " ";
    const auto at = body.find(key);
    if (at == std::string::npos) {
      return -1;
    }
    return std::stod(body.substr(at + key.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

/// One simulated device.
struct SimDevice {
  protocol::noise::KeyPair key;
  protocol::Uuid deviceId{};
  std::string workerId;
  std::optional<protocol::SecureChannel> channel;
  std::uint64_t cursor = 0;
  std::uint32_t counter = 0;
  bool connected = false;
};

/// What the devices measured (one client thread: no locking). Latencies, syncs and
/// change counts are those of syncs started once every device had connected;
/// `changesAcknowledged` counts every acknowledged change, warm-up included.
struct Tally {
  std::vector<double> handshakeMs;
  std::vector<double> pushMs;
  std::vector<double> pullMs;
  std::vector<double> syncMs;
  std::uint64_t syncs = 0;
  std::uint64_t changesPushed = 0;
  std::uint64_t changesAcknowledged = 0;
  std::uint64_t changesNotApplied = 0;
  std::uint64_t changesPulled = 0;
  std::uint64_t errors = 0;
  std::string firstError;

  void error(const std::string& what) {
    if (errors++ == 0) {
      firstError = what;
    }
  }
};

struct Run {
  const Context& context;
  const LoadOptions& options;
  protocol::noise::PublicKey serverKey{};
  tcp::endpoint endpoint;
  std::vector<SimDevice>& devices;
  Tally& tally;
  pid_t serverPid = -1;
  std::size_t next = 0;       ///< the next device to connect
  std::size_t connecting = 0; ///< connect loops still running
  /// Set once every device has connected: syncs started from then on are measured,
  /// until the deadline.
  SteadyClock::time_point measureFrom = SteadyClock::time_point::max();
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  SteadyClock::time_point connectStarted{};
  ProcessUsage connectedUsage{};
  std::int64_t peakRss = 0;
  bool connectTimedOut = false;
};

/// Connecting everyone may take at most this long; then the run stops (every loop of
/// the program ends by itself, whatever the server does).
constexpr auto kConnectLimit = std::chrono::seconds(120);

asio::awaitable<void> syncLoop(Run& run, SimDevice& device, std::uint32_t seed);
asio::awaitable<void> sampleMemory(Run& run);

/// Ends the run when the devices could not all connect within kConnectLimit.
asio::awaitable<void> connectWatchdog(Run& run) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  while (run.measureFrom == SteadyClock::time_point::max()) {
    if (SteadyClock::now() - run.connectStarted > kConnectLimit) {
      run.connectTimedOut = true;
      run.measureFrom = SteadyClock::now();
      run.deadline = run.measureFrom; // every sync loop ends after its current sync
      co_return;
    }
    timer.expires_after(std::chrono::milliseconds(200));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> connectDevice(Run& run, SimDevice& device) {
  const auto started = SteadyClock::now();
  try {
    auto executor = co_await asio::this_coro::executor;
    tcp::socket socket(executor);
    co_await socket.async_connect(run.endpoint, asio::use_awaitable);
    protocol::SecureChannel channel = co_await protocol::SecureChannel::connect(
        run.context, std::move(socket), protocol::Purpose::session, device.key, run.serverKey);
    device.channel.emplace(std::move(channel));
    const protocol::Hello hello{protocol::kProtocolVersionMin,
                                protocol::kProtocolVersionMax,
                                device.deviceId,
                                device.workerId,
                                "outpost-bench",
                                hlcNow(device.counter),
                                {}};
    const protocol::HelloReply reply = co_await protocol::openSession(*device.channel, hello);
    (void)reply;
    device.connected = true;
    run.tally.handshakeMs.push_back(msSince(started));
  } catch (const std::exception& e) {
    run.tally.error(std::string("connect: ") + e.what());
  }
}

/// Connects devices one after another (at most connectConcurrency of these loops);
/// each device starts syncing as soon as it is connected, so that none sits idle
/// into the server's read timeout while the others connect. The last loop to finish
/// starts the measured window.
asio::awaitable<void> connectLoop(Run& run) {
  auto executor = co_await asio::this_coro::executor;
  while (run.next < run.devices.size() && !run.connectTimedOut) {
    const std::size_t index = run.next++;
    SimDevice& device = run.devices[index];
    co_await connectDevice(run, device);
    if (device.connected) {
      asio::co_spawn(executor,
                     syncLoop(run, device, static_cast<std::uint32_t>(index) * 2654435761u),
                     asio::detached);
    }
  }
  if (--run.connecting == 0 && !run.connectTimedOut) {
    run.connectedUsage = usageOf(run.serverPid);
    run.measureFrom = SteadyClock::now();
    run.deadline = run.measureFrom +
                   std::chrono::milliseconds(static_cast<std::int64_t>(run.options.seconds * 1000));
    asio::co_spawn(executor, sampleMemory(run), asio::detached);
  }
}

asio::awaitable<void> syncLoop(Run& run, SimDevice& device, std::uint32_t seed) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  std::mt19937 rng(seed);
  const unsigned think = run.options.thinkMs;
  std::uniform_int_distribution<unsigned> pauses(0, 2 * think);
  try {
    for (;;) {
      const auto pause = std::chrono::milliseconds(think > 0 ? pauses(rng) : 0);
      if (SteadyClock::now() + pause >= run.deadline) {
        break;
      }
      if (pause.count() > 0) {
        timer.expires_after(pause);
        co_await timer.async_wait(asio::use_awaitable);
      }
      const auto started = SteadyClock::now();
      const bool measured = started >= run.measureFrom;
      protocol::PushBatch batch;
      batch.batchId = sync::Uuid::random().bytes;
      const sync::Uuid record = sync::Uuid::random();
      for (unsigned i = 0; i < run.options.batch; ++i) {
        protocol::Change c;
        c.changeId = sync::Uuid::random();
        c.recordId = record;
        c.recordType = "assessment";
        c.field = "field_" + std::to_string(i);
        c.value = std::string("value ") + std::to_string(device.counter);
        c.hlc = sync::Hlc{hlcNow(device.counter)};
        c.deviceId = sync::Uuid{device.deviceId};
        batch.changes.push_back(std::move(c));
      }
      const protocol::Message push = std::move(batch);
      co_await device.channel->sendMessage(push);
      const protocol::Message ack = co_await device.channel->receiveMessage();
      const double pushMs = msSince(started);
      const auto* pushAck = std::get_if<protocol::PushAck>(&ack);
      if (pushAck == nullptr) {
        throw Error(Errc::protocol, "the server answered a push with '" +
                                        std::string(protocol::messageName(ack)) + "'");
      }
      for (const auto& r : pushAck->results) {
        if (r.outcome != protocol::ChangeOutcome::applied) {
          ++run.tally.changesNotApplied;
        }
      }
      run.tally.changesAcknowledged += pushAck->results.size();
      if (measured) {
        run.tally.pushMs.push_back(pushMs);
        run.tally.changesPushed += pushAck->results.size();
      }
      bool more = true;
      while (more) {
        const auto pullStarted = SteadyClock::now();
        const protocol::Message request = protocol::PullRequest{device.cursor, 1000};
        co_await device.channel->sendMessage(request);
        const protocol::Message reply = co_await device.channel->receiveMessage();
        const auto* pulled = std::get_if<protocol::PullReply>(&reply);
        if (pulled == nullptr) {
          throw Error(Errc::protocol, "the server answered a pull with '" +
                                          std::string(protocol::messageName(reply)) + "'");
        }
        if (measured) {
          run.tally.pullMs.push_back(msSince(pullStarted));
          run.tally.changesPulled += pulled->changes.size();
        }
        device.cursor = pulled->nextCursor;
        more = pulled->more;
      }
      if (measured) {
        run.tally.syncMs.push_back(msSince(started));
        ++run.tally.syncs;
      }
    }
  } catch (const std::exception& e) {
    device.connected = false;
    run.tally.error(std::string("sync: ") + e.what());
  }
}

/// Samples the server's memory while the devices sync.
asio::awaitable<void> sampleMemory(Run& run) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  while (SteadyClock::now() < run.deadline) {
    run.peakRss = std::max(run.peakRss, usageOf(run.serverPid).rssKiB);
    timer.expires_after(std::chrono::milliseconds(250));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

void resultPercentiles(Report& report, std::string_view name, const std::vector<double>& ms) {
  const std::string n(name);
  report.result(kId, n + "_p50_ms", percentile(ms, 50), "ms");
  report.result(kId, n + "_p95_ms", percentile(ms, 95), "ms");
  report.result(kId, n + "_p99_ms", percentile(ms, 99), "ms");
  report.result(kId, n + "_max_ms", percentile(ms, 100), "ms");
}

std::string numbered(std::string_view prefix, unsigned n, int width) {
  std::string digits = std::to_string(n);
  if (digits.size() < static_cast<std::size_t>(width)) {
    digits.insert(0, static_cast<std::size_t>(width) - digits.size(), '0');
  }
  return std::string(prefix) + digits;
}

} // namespace

CLI::App* addLoadCommand(CLI::App& app, LoadOptions& o) {
  auto* cmd = app.add_subcommand(
      "load", "many devices holding sessions with one outpost-server process and syncing small "
              "batches over the real protocol (docs/benchmarks.md)");
  cmd->add_option("--devices", o.devices, "simulated devices, each with its own session")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  cmd->add_option("--seconds", o.seconds, "how long the devices sync")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "changes per push")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  cmd->add_option("--team-size", o.teamSize, "devices per team (a device pulls its team's changes)")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  cmd->add_option("--think-ms", o.thinkMs,
                  "mean pause between a device's syncs, uniform in 0..2x (0: back to back)")
      ->check(CLI::Range(0u, 600000u))
      ->capture_default_str();
  cmd->add_option("--server-threads", o.serverThreads, "outpost-server --threads")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  cmd->add_option("--connect-concurrency", o.connectConcurrency, "handshakes in flight at once")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  cmd->add_option("--server", o.serverPath,
                  "the outpost-server program (default: the one beside outpost-bench)");
  cmd->add_option("--dir", o.dir,
                  "data folder for the server (default: a new temp folder, removed)");
  return cmd;
}

bool runLoad(const LoadOptions& options, Report& report) {
  const Context context;
  const fs::path serverPath = options.serverPath.empty() ? defaultServerPath() : options.serverPath;
  if (!fs::exists(serverPath)) {
    throw Error(Errc::not_found, "no outpost-server at '" + serverPath.string() +
                                     "'; build it or pass --server PATH");
  }
  // Each side holds one descriptor per connection, plus the store's files.
  const rlim_t files = raiseFileLimit();
  const std::size_t needed = static_cast<std::size_t>(options.devices) + 64;
  if (files < needed) {
    throw Error(Errc::invalid_argument, "the descriptor limit is " + std::to_string(files) + ", " +
                                            std::to_string(needed) +
                                            " are needed; raise 'ulimit -n' or use fewer devices");
  }
  const bool scratch = options.dir.empty();
  const fs::path dir = scratch ? makeScratchDir() / "data" : options.dir;
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ec;
      if (!path.empty()) {
        fs::remove_all(path, ec);
      }
    }
  } cleanup{scratch ? dir.parent_path() : fs::path()};

  report.info(kId, "devices=" + std::to_string(options.devices) + " seconds=" +
                       std::to_string(options.seconds) + " batch=" + std::to_string(options.batch) +
                       " team_size=" + std::to_string(options.teamSize) +
                       " think_ms=" + std::to_string(options.thinkMs) +
                       " server_threads=" + std::to_string(options.serverThreads) +
                       " client_threads=1 fd_limit=" + std::to_string(files));

  // --- set-up: keys, teams, workers, one registered device per worker --------------
  std::vector<SimDevice> devices(options.devices);
  const auto setupStarted = SteadyClock::now();
  {
    const server::ServerKeys keys = server::ServerKeys::create(context, dir);
    server::SqliteServerStore store(context, dir, keys, true);
    store.setActor("outpost-bench");
    const unsigned teams = (options.devices + options.teamSize - 1) / options.teamSize;
    for (unsigned t = 0; t < teams; ++t) {
      store.addTeam(numbered("team-", t, 4));
    }
    for (unsigned i = 0; i < options.devices; ++i) {
      SimDevice& d = devices[i];
      d.workerId = numbered("worker-", i, 6);
      const std::string team = numbered("team-", i / options.teamSize, 4);
      store.addWorker(d.workerId, {team});
      d.key = protocol::noise::KeyPair::generate(context);
      d.deviceId = sync::Uuid::random().bytes;
      store.deviceRegistry().add({d.deviceId, d.key.publicKey, d.workerId, team, false},
                                 protocol::Clock::now());
    }
  }
  report.result(kId, "setup_s", msSince(setupStarted) / 1000, "s");

  // --- the server -------------------------------------------------------------------
  ServerChild server(serverPath,
                     {"--data", dir.string(), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                      "--threads", std::to_string(options.serverThreads), "--max-connections",
                      std::to_string(options.devices + 16), "--log-level", "warn"});
  const std::string line = server.firstLine();
  const auto at = line.find("listening on 127.0.0.1:");
  const auto metricsAt = line.find(" metrics 127.0.0.1:");
  if (at == std::string::npos || metricsAt == std::string::npos) {
    throw Error(Errc::internal, "outpost-server did not start: '" + line + "'");
  }
  const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(at + 23)));
  const auto metricsPort = static_cast<std::uint16_t>(std::stoi(line.substr(metricsAt + 19)));
  const ProcessUsage idle = usageOf(server.pid());
  report.result(kId, "server_idle_vmrss_kib", static_cast<double>(idle.rssKiB), "KiB");
  report.result(kId, "server_idle_mappings", static_cast<double>(idle.mappings), "count");

  Tally tally;
  Run run{context,
          options,
          server::ServerKeys::load(dir).staticKey.publicKey,
          tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
          devices,
          tally};
  run.serverPid = server.pid();
  asio::io_context io;

  // --- connect every device, each syncing once connected; then the measured window ----
  const double clientCpuBefore = ownCpuSeconds();
  run.connectStarted = SteadyClock::now();
  run.connecting = std::min<std::size_t>(options.connectConcurrency, options.devices);
  for (std::size_t i = 0; i < run.connecting; ++i) {
    asio::co_spawn(io, connectLoop(run), asio::detached);
  }
  asio::co_spawn(io, connectWatchdog(run), asio::detached);
  io.run();
  const double connectS =
      std::chrono::duration<double>(run.measureFrom - run.connectStarted).count();
  const double syncS = std::chrono::duration<double>(SteadyClock::now() - run.measureFrom).count();
  const auto connected = static_cast<std::size_t>(std::count_if(
      devices.begin(), devices.end(), [](const SimDevice& d) { return d.connected; }));
  report.result(kId, "connect_all_s", connectS, "s");
  if (2.0 * options.thinkMs >= 30000) {
    // outpost-server ends a session idle for 30 s (its read timeout).
    report.info(kId, "think times reach 30 s: the server's read timeout will cut idle devices");
  }
  report.result(kId, "handshakes_per_s", static_cast<double>(tally.handshakeMs.size()) / connectS,
                "1/s");
  resultPercentiles(report, "handshake", tally.handshakeMs);
  report.result(kId, "server_vmrss_connected_kib", static_cast<double>(run.connectedUsage.rssKiB),
                "KiB");
  report.result(kId, "server_kib_per_connection",
                connected > 0 ? static_cast<double>(run.connectedUsage.rssKiB - idle.rssKiB) /
                                    static_cast<double>(connected)
                              : 0,
                "KiB");
  report.result(kId, "server_mappings_connected", static_cast<double>(run.connectedUsage.mappings),
                "count");
  const ProcessUsage after = usageOf(server.pid());
  const double serverCpu = after.cpuSeconds - run.connectedUsage.cpuSeconds;
  const double clientCpu = ownCpuSeconds() - clientCpuBefore;
  const auto stillHeld = static_cast<std::size_t>(
      std::count_if(devices.begin(), devices.end(), [](const SimDevice& d) {
        return d.connected && d.channel && d.channel->isOpen();
      }));
  const double serverConnections = metricValue(metricsPort, "outpost_connections_current");
  const std::int64_t peakRss = std::max(run.peakRss, after.rssKiB);

  report.result(kId, "sync_phase_s", syncS, "s");
  report.result(kId, "syncs", static_cast<double>(tally.syncs), "count");
  report.result(kId, "syncs_per_s", static_cast<double>(tally.syncs) / syncS, "1/s");
  report.result(kId, "changes_pushed_per_s", static_cast<double>(tally.changesPushed) / syncS,
                "1/s");
  report.result(kId, "changes_pulled_per_s", static_cast<double>(tally.changesPulled) / syncS,
                "1/s");
  resultPercentiles(report, "push", tally.pushMs);
  resultPercentiles(report, "pull", tally.pullMs);
  resultPercentiles(report, "sync", tally.syncMs);
  report.result(kId, "connections_held", static_cast<double>(stillHeld), "count");
  report.result(kId, "server_connections_current", serverConnections, "count");
  report.result(kId, "server_vmrss_kib", static_cast<double>(after.rssKiB), "KiB");
  report.result(kId, "server_vmrss_peak_sampled_kib", static_cast<double>(peakRss), "KiB");
  report.result(kId, "server_vmhwm_kib", static_cast<double>(after.hwmKiB), "KiB");
  report.result(kId, "server_cpu_s", serverCpu, "s");
  report.result(kId, "client_cpu_s", clientCpu, "s");
  report.info(kId, "latencies, syncs and change rates are for syncs started after every device "
                   "had connected; server_cpu_s is for that window, client_cpu_s for the whole "
                   "run");

  // --- stop, then check what the server stored ------------------------------------------
  // Channels go before the io_context they run on (a socket must not outlive it).
  for (auto& d : devices) {
    d.channel.reset();
  }
  const int exitCode = server.terminate();
  report.check(kId, "connected within the limit", !run.connectTimedOut,
               std::to_string(kConnectLimit.count()) + " s");
  report.check(kId, "every device connected", connected == devices.size(),
               std::to_string(connected) + "/" + std::to_string(devices.size()));
  report.check(kId, "every connection held to the end", stillHeld == connected,
               std::to_string(stillHeld) + "/" + std::to_string(connected));
  report.check(kId, "the server counted the same connections",
               static_cast<std::size_t>(serverConnections) == stillHeld,
               std::to_string(serverConnections));
  report.check(kId, "no request failed", tally.errors == 0,
               tally.errors == 0 ? std::string() : tally.firstError);
  report.check(kId, "every pushed change applied", tally.changesNotApplied == 0,
               std::to_string(tally.changesNotApplied) + " not applied");
  report.check(kId, "some syncs completed", tally.syncs > 0);
  report.check(kId, "the server stopped cleanly on SIGTERM", exitCode == 0,
               "exit " + std::to_string(exitCode));
  {
    const server::ServerKeys keys = server::ServerKeys::load(dir);
    server::SqliteServerStore store(context, dir, keys);
    const auto verifyStarted = SteadyClock::now();
    const server::AuditVerification audit = store.verifyAudit();
    report.result(kId, "audit_verify_s", msSince(verifyStarted) / 1000, "s");
    report.check(kId, "the audit chain verifies", audit.intact, audit.problem);
    report.check(kId, "the server stored every pushed change",
                 static_cast<std::uint64_t>(audit.changesChecked) == tally.changesAcknowledged,
                 std::to_string(audit.changesChecked) + " stored, " +
                     std::to_string(tally.changesAcknowledged) + " acknowledged");
  }
  return report.allChecksPassed();
}

} // namespace outpost::bench
