#include "outpost/sync/change.hpp"

namespace outpost::sync {

std::string_view mergePolicyName(MergePolicy policy) noexcept {
  switch (policy) {
  case MergePolicy::lww:
    return "lww";
  case MergePolicy::appendOnly:
    return "append-only";
  case MergePolicy::immutableAfterSign:
    return "immutable-after-sign";
  }
  return "unknown";
}

std::optional<MergePolicy> parseMergePolicy(std::string_view name) noexcept {
  for (const MergePolicy p :
       {MergePolicy::lww, MergePolicy::appendOnly, MergePolicy::immutableAfterSign}) {
    if (mergePolicyName(p) == name) {
      return p;
    }
  }
  return std::nullopt;
}

} // namespace outpost::sync
