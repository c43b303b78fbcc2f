#pragma once
// Row numbers of records by id, kept in memory (internal).

#include <outpost/sync/uuid.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace outpost::model {

/// Row numbers of records by id: an open-addressing table (linear probing, at most
/// 70% full) of (id, row) slots, 24 bytes each. A lookup reads one slot, usually
/// in one cache line; a node-based map reads a bucket and then one or two nodes,
/// each a likely cache miss on a large store. Row numbers are positive (SQLite
/// hands out rowids from 1), so row 0 marks an empty slot.
class RowHints {
public:
  [[nodiscard]] std::optional<std::int64_t> find(const sync::Uuid& id) const noexcept {
    if (size_ == 0) {
      return std::nullopt;
    }
    for (std::size_t k = home(id);; k = next(k)) {
      const Slot& s = slots_[k];
      if (s.rid == 0) {
        return std::nullopt;
      }
      if (s.id == id) {
        return s.rid;
      }
    }
  }

  /// Adds or replaces `id`'s row. Adds nothing when `limit` ids are held already
  /// or `rid` is not positive.
  void put(const sync::Uuid& id, std::int64_t rid, std::size_t limit) {
    if (rid <= 0) {
      return;
    }
    if (!slots_.empty()) {
      for (std::size_t k = home(id);; k = next(k)) {
        Slot& s = slots_[k];
        if (s.rid == 0) {
          break;
        }
        if (s.id == id) {
          s.rid = rid;
          return;
        }
      }
    }
    if (size_ >= limit) {
      return;
    }
    if ((size_ + 1) * 10 > slots_.size() * 7) {
      grow();
    }
    place(id, rid);
    ++size_;
  }

  void erase(const sync::Uuid& id) noexcept {
    if (size_ == 0) {
      return;
    }
    std::size_t hole = home(id);
    for (;; hole = next(hole)) {
      if (slots_[hole].rid == 0) {
        return; // not held
      }
      if (slots_[hole].id == id) {
        break;
      }
    }
    // Backward shift: each later slot of the run whose home is not between the
    // hole and itself (cyclically) moves into the hole, so no lookup stops early.
    for (std::size_t k = next(hole); slots_[k].rid != 0; k = next(k)) {
      const std::size_t h = home(slots_[k].id);
      const bool stays = hole < k ? (hole < h && h <= k) : (hole < h || h <= k);
      if (!stays) {
        slots_[hole] = slots_[k];
        hole = k;
      }
    }
    slots_[hole] = Slot{};
    --size_;
  }

  void clear() noexcept {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Bytes the table takes.
  [[nodiscard]] std::size_t bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

private:
  struct Slot {
    sync::Uuid id;
    std::int64_t rid = 0;
  };

  [[nodiscard]] std::size_t home(const sync::Uuid& id) const noexcept {
    return std::hash<sync::Uuid>{}(id) & (slots_.size() - 1);
  }
  [[nodiscard]] std::size_t next(std::size_t k) const noexcept {
    return (k + 1) & (slots_.size() - 1);
  }

  void place(const sync::Uuid& id, std::int64_t rid) noexcept {
    std::size_t k = home(id);
    while (slots_[k].rid != 0) {
      k = next(k);
    }
    slots_[k] = Slot{id, rid};
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    for (const Slot& s : old) {
      if (s.rid != 0) {
        place(s.id, s.rid);
      }
    }
  }

  std::vector<Slot> slots_; ///< a power of two of them, or none
  std::size_t size_ = 0;
};

} // namespace outpost::model
