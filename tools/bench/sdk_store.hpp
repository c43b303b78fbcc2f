#pragma once
/// \file
/// `w1.sdk`: the W1 records written and read through the public SDK API (record
/// store on the vault, with the journal and the audit trail).

#include "w1.hpp"

#include <outpost/records.hpp>

#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace outpost::bench {

[[nodiscard]] std::unique_ptr<W1Store> makeSdkStore(int cacheKiB);

inline constexpr std::string_view kAssessmentType = "w1.assessment";
/// "ind_01".."ind_25".
[[nodiscard]] const std::string& indicatorName(int k);
/// The app-defined types W1 and W2 store: a subject (the child) and an
/// assessment-like record linked to it, with the 25 indicators as typed fields.
void registerW1Types(model::Schema& schema);
/// The writes that store `batch`: subjects seen for the first time (tracked in
/// `subjects` across batches) are created first; the batch's records start at
/// `firstRecord`.
[[nodiscard]] std::vector<model::RecordWrite>
w1Writes(std::span<const Record> batch, std::unordered_map<std::string, sync::Uuid>& subjects,
         std::size_t& firstRecord);

} // namespace outpost::bench
