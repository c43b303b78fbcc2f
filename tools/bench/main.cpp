// outpost-bench: the workloads of bench/WORKLOADS.md.
//
//   outpost-bench dump COUNT N          the first COUNT records of the N set, JSON lines
//   outpost-bench w1 [--only IDS] [--records N] [--dir DIR]
//   outpost-bench w2 [--records N] [--push-batch K] [--pull-batch K] [--dir DIR]
//   outpost-bench load [--devices N] [--seconds S] [--batch K] ...   (load.hpp)

#include "cipher.hpp"
#include "generator.hpp"
#include "load.hpp"
#include "report.hpp"
#include "w1.hpp"
#include "w2.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace outpost::bench;

namespace {

std::string runnerNames() {
  std::string names;
  for (const W1Runner& r : w1Runners()) {
    names += names.empty() ? "" : ",";
    names += r.name;
  }
  return names;
}

fs::path makeScratchDir() {
  std::string tmpl = (fs::temp_directory_path() / "outpost-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw outpost::Error(outpost::Errc::io,
                         "cannot create a scratch folder in " + fs::temp_directory_path().string());
  }
  return tmpl;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"outpost-bench: runs the workloads of bench/WORKLOADS.md and prints "
               "RESULT/INFO/CHECK lines"};
  app.require_subcommand(1);

  std::uint32_t dumpCount = 0;
  std::uint32_t dumpN = 0;
  auto* dump = app.add_subcommand("dump", "print the first COUNT records of the N-record set, "
                                          "one JSON per line");
  dump->add_option("count", dumpCount, "records to print")->required();
  dump->add_option("n", dumpN, "size of the data set")
      ->required()
      ->check(CLI::Range(1u, 100000000u));

  W1Options w1;
  std::string only;
  std::string dir;
  auto* w1cmd = app.add_subcommand("w1", "workload W1: the local store");
  w1cmd->add_option("--only", only, "comma-separated runners (" + runnerNames() + "); default all");
  w1cmd->add_option("--records", w1.records, "records to insert (default 100000)")
      ->check(CLI::Range(100u, 10000000u));
  w1cmd
      ->add_option("--vault-cache-kib", w1.vaultCacheKiB,
                   "page cache of the vault and sdk runners in KiB (default: the vault's own)")
      ->check(CLI::Range(100, 1 << 20));
  w1cmd
      ->add_option("--rounds", w1.rounds,
                   "rounds of every selected runner; each metric's median "
                   "and the median of the per-round ratios to w1.sqlite are shown (default 1)")
      ->check(CLI::Range(1u, 100u));
  w1cmd->add_flag("--sequential", w1.sequential,
                  "run each runner's whole pass before the next one's, instead of letting the "
                  "runners take turns at reading and querying");
  w1cmd->add_option("--dir", dir, "folder for the stores (default: a new temp folder, removed)");

  W2Options w2;
  std::string w2dir;
  auto* w2cmd = app.add_subcommand("w2", "workload W2: sync through a real outpost-server");
  w2cmd->add_option("--records", w2.records, "records device A creates (default 10000)")
      ->check(CLI::Range(100u, 1000000u));
  w2cmd->add_option("--push-batch", w2.pushBatch, "changes per push batch (default 10000)")
      ->check(CLI::Range(1u, 10000u));
  unsigned w2Rounds = 1;
  w2cmd
      ->add_option("--rounds", w2Rounds,
                   "runs of the whole workload, one after another; the median of each metric "
                   "is shown (default 1)")
      ->check(CLI::Range(1u, 100u));
  w2cmd->add_option("--pull-batch", w2.pullBatch, "changes per pull request (default 10000)")
      ->check(CLI::Range(1u, 10000u));
  w2cmd->add_option("--dir", w2dir,
                    "folder for the vaults and the server (default: a new temp "
                    "folder, removed)");
  LoadOptions load;
  auto* loadCmd = addLoadCommand(app, load);

  CipherOptions cipher;
  auto* cipherCmd = app.add_subcommand(
      "cipher", "seal + open of 4 KiB messages: libsodium's XChaCha20-Poly1305 (w1.sodium) "
                "and the vault's page cipher, in one run");
  cipherCmd->add_option("--messages", cipher.messages, "pairs per round (default 20000)")
      ->check(CLI::Range(1u, 10000000u));
  cipherCmd
      ->add_option("--rounds", cipher.rounds,
                   "alternated rounds; the median is shown "
                   "(default 5)")
      ->check(CLI::Range(1u, 1000u));

  CLI11_PARSE(app, argc, argv);

  try {
    outpost::Context context;
    if (dump->parsed()) {
      if (dumpCount > dumpN) {
        std::fprintf(stderr, "outpost-bench: COUNT (%u) must not exceed N (%u)\n", dumpCount,
                     dumpN);
        return 2;
      }
      for (std::uint32_t i = 0; i < dumpCount; ++i) {
        const std::string line = generate(i, dumpN).json();
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fputc('\n', stdout);
      }
      return 0;
    }

    if (cipherCmd->parsed()) {
      Report report(stdout);
      return runCipher(cipher, report) ? 0 : 1;
    }

    if (loadCmd->parsed()) {
      Report report(stdout);
      return runLoad(load, report) ? 0 : 1;
    }

    if (w2cmd->parsed()) {
      const bool scratch = w2dir.empty();
      w2.dir = scratch ? makeScratchDir() : fs::path(w2dir);
      Report report(stdout);
      bool ok = false;
      try {
        ok = w2Rounds == 1 ? runW2(w2, report) : runW2Rounds(w2, w2Rounds, report);
      } catch (...) {
        if (scratch) {
          fs::remove_all(w2.dir);
        }
        throw;
      }
      if (scratch) {
        fs::remove_all(w2.dir);
      }
      return ok ? 0 : 1;
    }
    if (w1cmd->parsed()) {
      std::string rest = only;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        std::string name = rest.substr(0, comma);
        rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
        bool known = false;
        for (const W1Runner& r : w1Runners()) {
          known = known || r.name == name;
        }
        if (!known) {
          std::fprintf(stderr, "outpost-bench: unknown runner '%s'; known: %s\n", name.c_str(),
                       runnerNames().c_str());
          return 2;
        }
        w1.only.push_back(name);
      }
      const bool scratch = dir.empty();
      w1.dir = scratch ? makeScratchDir() : fs::path(dir);
      Report report(stdout);
      const bool ok = runW1(w1, report);
      if (scratch) {
        fs::remove_all(w1.dir);
      }
      return ok ? 0 : 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "outpost-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
