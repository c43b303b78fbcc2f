#pragma once
// A fault-injecting SQLite VFS that sits *below* the vault's encrypting VFS.
//
// It passes every call to the OS VFS, and models durability itself: for each file
// it keeps the bytes as of the last xSync ("durable") and the writes and
// truncations since ("pending"). Real fsyncs are skipped (the model decides what
// survives), which keeps crash enumeration fast.
//
// Faults, counted over all files from when they are armed:
// - crash at the Nth write or sync: that call is torn (writes) or not done
//   (syncs), and every later call fails as if the process had died. Then
//   `materialise(policy)` rewrites the files as a power loss could have left them.
// - an I/O error at the Nth write (once);
// - disk full from the Nth write on, until cleared.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace outpost::test {

enum class CrashPolicy {
  dropUnsynced, ///< only what was synced survives
  keepAll,      ///< every write reached the disk (a process crash, not a power loss)
  tearLast,     ///< all pending writes but the last, which is half written
  randomSubset, ///< each pending write survives, is torn or is lost, by a seeded draw
};

class FaultVfs {
public:
  static constexpr const char* kName = "outpost-fault";

  FaultVfs();
  ~FaultVfs();
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  /// Clears faults and counters (durability tracking continues).
  void disarm();
  void crashAtOperation(std::uint64_t n); ///< writes and syncs count
  void ioErrorAtWrite(std::uint64_t n);
  void diskFullFromWrite(std::uint64_t n);

  [[nodiscard]] bool crashed() const { return crashed_; }
  [[nodiscard]] std::uint64_t operations() const { return operations_; }
  [[nodiscard]] std::uint64_t writes() const { return writes_; }

  /// After a crash and after every connection is closed: rewrites each file that
  /// was written as the policy says a power loss could leave it. Then forgets all
  /// tracking and faults.
  void materialise(CrashPolicy policy, std::uint32_t seed = 0);

  // Used by the file methods.
  struct Pending {
    bool truncate = false;
    std::int64_t offset = 0; ///< write offset, or truncation size
    std::vector<unsigned char> bytes;
  };
  struct Tracked {
    std::optional<std::vector<unsigned char>> durable; ///< nullopt: file absent
    std::vector<Pending> pending;
  };
  Tracked& track(const std::string& path);
  [[nodiscard]] bool isTracked(const std::string& path) const { return files_.contains(path); }
  void forget(const std::string& path) { files_.erase(path); }
  /// Counts an operation; true when this one is the crash point.
  bool countOperation(bool isWrite);
  [[nodiscard]] int writeFault();
  void markCrashed() { crashed_ = true; }

  sqlite3_vfs* base() const { return base_; }

private:
  sqlite3_vfs vfs_{};
  sqlite3_vfs* base_;
  std::map<std::string, Tracked> files_;
  std::uint64_t operations_ = 0;
  std::uint64_t writes_ = 0;
  std::uint64_t crashAt_ = 0;
  std::uint64_t ioErrorAt_ = 0;
  std::uint64_t diskFullFrom_ = 0;
  bool crashed_ = false;
};

} // namespace outpost::test
