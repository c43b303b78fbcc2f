// The fuzz targets' entry functions, run on their seeds, the committed corpus and
// deterministic random bytes, so they keep compiling and keep passing.

#include "fuzz_entries.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

using namespace outpost::protocol;

namespace {

using Entry = void (*)(const std::uint8_t*, std::size_t);

std::size_t feedCorpus(const std::string& target, Entry entry) {
  std::size_t n = 0;
  const auto dir = std::filesystem::path(OUTPOST_FUZZ_CORPUS) / target;
  if (!std::filesystem::exists(dir)) {
    return 0;
  }
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(file.path(), std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                          std::istreambuf_iterator<char>());
    entry(bytes.data(), bytes.size());
    ++n;
  }
  return n;
}

void feedMutations(const std::string& target, Entry entry) {
  std::mt19937 rng(20261129);
  auto seeds = fuzz::seeds(target);
  REQUIRE_FALSE(seeds.empty());
  for (const auto& [name, bytes] : seeds) {
    entry(bytes.data(), bytes.size());
    for (int round = 0; round < 200; ++round) {
      auto mutated = bytes;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !mutated.empty(); ++e) {
        const std::size_t at = rng() % mutated.size();
        switch (rng() % 3) {
        case 0:
          mutated[at] = static_cast<std::uint8_t>(rng());
          break;
        case 1:
          mutated.erase(mutated.begin() + static_cast<std::ptrdiff_t>(at));
          break;
        default:
          mutated.insert(mutated.begin() + static_cast<std::ptrdiff_t>(at),
                         static_cast<std::uint8_t>(rng()));
        }
      }
      entry(mutated.data(), mutated.size());
    }
  }
  for (int round = 0; round < 500; ++round) {
    std::vector<std::uint8_t> junk(rng() % 300);
    for (auto& b : junk) {
      b = static_cast<std::uint8_t>(rng());
    }
    entry(junk.data(), junk.size());
  }
}

} // namespace

TEST_SUITE("protocol.fuzz") {
  TEST_CASE("the frame decoding target survives its seeds, corpus and mutations") {
    feedMutations("frames", fuzz::frames);
    MESSAGE("corpus files: " << feedCorpus("frames", fuzz::frames));
  }
  TEST_CASE("the handshake target survives its seeds, corpus and mutations") {
    feedMutations("handshake", fuzz::handshake);
    MESSAGE("corpus files: " << feedCorpus("handshake", fuzz::handshake));
  }
  TEST_CASE("the message decoding target survives its seeds, corpus and mutations") {
    feedMutations("messages", fuzz::messages);
    MESSAGE("corpus files: " << feedCorpus("messages", fuzz::messages));
  }
}
