#pragma once
// The commands of outpost-field, in groups. Each group registers its subcommands
// (CLI11) on the app; the subcommand that is parsed sets the action main runs.

#include "device.hpp"
#include "output.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace outpost::field {

/// What every command gets: the library context and the device folder.
struct Env {
  Context& context;
  DeviceFolder folder;
  bool json = false;
};

using Action = std::function<Result(Env&)>;

/// How long a command waits for another one on the same device to finish.
inline constexpr std::chrono::milliseconds kLockWait = std::chrono::seconds(30);

/// The action of a command that needs the unlocked vault: takes the folder lock,
/// reads the PIN, unlocks, runs `work`, and locks again (also when `work` throws).
template <typename Work>
Result withWorkspace(Env& env, Work&& work) {
  env.folder.requireVault();
  const FolderLock lock(env.folder, kLockWait);
  const SecretBytes pin = readPin("PIN: ");
  Workspace ws(env.context, env.folder, pinText(pin));
  return work(ws);
}

/// As `withWorkspace`, as an action.
template <typename Work>
Action unlocked(Work work) {
  return [work = std::move(work)](Env& env) { return withWorkspace(env, work); };
}

/// Sets `action` to run `run(env, *options)` when `command` is parsed.
template <typename Options, typename Run>
void onParsed(CLI::App* command, Action& action, std::shared_ptr<Options> options, Run run) {
  command->callback([&action, options, run] {
    action = [options, run](Env& env) { return run(env, *options); };
  });
}

/// A repeatable option: each occurrence takes one value, so that it never swallows
/// the positional arguments after it.
inline CLI::Option* addRepeated(CLI::App* command, const std::string& name,
                                std::vector<std::string>& into, const std::string& help) {
  return command->add_option(name, into, help)->allow_extra_args(false);
}

/// The current time from the system clock, in ms since the Unix epoch.
[[nodiscard]] std::int64_t nowMs();

void addVaultCommands(CLI::App& app, Action& action); // init, unlock, lock, status, wipe, audit
void addRecordCommands(CLI::App& app,
                       Action& action); // child, note, missing, share, concern, referral
void addAssessmentCommands(CLI::App& app, Action& action); // assessment ...
void addSyncCommands(CLI::App& app, Action& action);       // enroll, sync, conflicts

} // namespace outpost::field
