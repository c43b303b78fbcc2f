#include "generator.hpp"

#include <cstdio>
#include <ctime>

namespace outpost::bench {

namespace {
constexpr std::uint32_t kBaseSeed = 0x5EED2024;
constexpr std::uint32_t kGolden = 0x9E3779B9;
constexpr std::int64_t kYear2024 = 1704067200;
constexpr std::array<std::string_view, 10> kRisk = {"low",    "low",    "low",    "low",  "low",
                                                    "medium", "medium", "medium", "high", "high"};
constexpr std::array<std::string_view, 8> kStates = {
    "none", "unknown", "reported", "suspected", "confirmed", "declined", "referred", "n/a"};
constexpr std::array<std::string_view, 32> kWords = {
    "child", "reported", "school",  "missing",  "contact", "online",  "adult",     "concern",
    "visit", "family",   "worker",  "referral", "police",  "meeting", "safety",    "plan",
    "risk",  "home",     "friend",  "phone",    "message", "gift",    "car",       "late",
    "night", "absent",   "support", "agreed",   "review",  "health",  "escalated", "observed"};

void appendHex(std::string& out, unsigned char byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back(kHex[byte >> 4]);
  out.push_back(kHex[byte & 0x0f]);
}
} // namespace

std::uint32_t fmix32(std::uint32_t h) noexcept {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

Stream::Stream(std::uint32_t seed) noexcept : state_(fmix32(seed)) {
  if (state_ == 0) {
    state_ = 1;
  }
}

std::uint32_t Stream::next() noexcept {
  state_ ^= state_ << 13;
  state_ ^= state_ >> 17;
  state_ ^= state_ << 5;
  return state_;
}

Stream derivedStream(std::uint32_t tag) noexcept { return Stream(kBaseSeed ^ tag); }

std::uint32_t subjectCount(std::uint32_t n) noexcept { return n / 10 > 0 ? n / 10 : 1; }

std::string subjectName(std::uint32_t subject) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "subj-%06u", subject);
  return buf;
}

std::string isoTime(std::int64_t unixSeconds) {
  const auto t = static_cast<std::time_t>(unixSeconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Record generate(std::uint32_t i, std::uint32_t n) {
  Stream s(kBaseSeed + i * kGolden);
  Record r;

  std::array<unsigned char, 16> bytes{};
  for (std::size_t w = 0; w < 4; ++w) {
    const std::uint32_t d = s.next();
    bytes[w * 4 + 0] = static_cast<unsigned char>(d >> 24);
    bytes[w * 4 + 1] = static_cast<unsigned char>(d >> 16);
    bytes[w * 4 + 2] = static_cast<unsigned char>(d >> 8);
    bytes[w * 4 + 3] = static_cast<unsigned char>(d);
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);
  r.id.reserve(36);
  for (std::size_t b = 0; b < bytes.size(); ++b) {
    if (b == 4 || b == 6 || b == 8 || b == 10) {
      r.id.push_back('-');
    }
    appendHex(r.id, bytes[b]);
  }

  r.subjectId = subjectName(s.next() % subjectCount(n));
  r.riskLevel = kRisk[s.next() % kRisk.size()];
  char buf[32];
  std::snprintf(buf, sizeof buf, "user-%03u", s.next() % 50);
  r.assessorId = buf;
  r.status = (s.next() % 4 == 0) ? "draft" : "final";
  r.created = kYear2024 + s.next() % 31536000;
  r.updated = r.created + s.next() % 604800;
  for (auto& f : r.flags) {
    f = (s.next() & 1u) != 0;
  }
  for (auto& c : r.counts) {
    c = s.next() % 101;
  }
  for (auto& st : r.states) {
    st = kStates[s.next() % kStates.size()];
  }

  const std::size_t target = 380 + s.next() % 41;
  r.note.reserve(target + 16);
  while (r.note.size() < target) {
    const std::string_view word = kWords[s.next() % kWords.size()];
    if (!r.note.empty()) {
      r.note.push_back(' ');
    }
    r.note.append(word);
  }
  r.note.resize(target);
  return r;
}

std::string Record::createdAt() const { return isoTime(created); }
std::string Record::updatedAt() const { return isoTime(updated); }

std::string Record::json() const {
  std::string out;
  out.reserve(1200);
  out += R"({"id":")";
  out += id;
  out += R"(","template":"cse-risk-v1","schema_version":1,"subject_id":")";
  out += subjectId;
  out += R"(","assessor_id":")";
  out += assessorId;
  out += R"(","status":")";
  out += status;
  out += R"(","risk_level":")";
  out += riskLevel;
  out += R"(","created_at":")";
  out += createdAt();
  out += R"(","updated_at":")";
  out += updatedAt();
  out += R"(","indicators":{)";
  char key[32];
  int k = 1;
  for (const bool f : flags) {
    std::snprintf(key, sizeof key, "\"ind_%02d\":", k++);
    out += key;
    out += f ? "true," : "false,";
  }
  for (const std::uint32_t c : counts) {
    std::snprintf(key, sizeof key, "\"ind_%02d\":", k++);
    out += key;
    out += std::to_string(c);
    out += ',';
  }
  for (const std::string_view st : states) {
    std::snprintf(key, sizeof key, "\"ind_%02d\":", k++);
    out += key;
    out += '"';
    out += st;
    out += "\",";
  }
  out.back() = '}';
  out += R"(,"note":")";
  out += note;
  out += "\"}";
  return out;
}

} // namespace outpost::bench
