#include "cipher.hpp"

#include "vault/page_aead.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <vector>

namespace outpost::bench {

namespace {

constexpr std::size_t kMessageBytes = 4096;

struct Round {
  double mbPerSecond = 0;
  bool allOpened = true;
};

/// `messages` seal + open pairs of one 4 KiB message under fresh nonces; MB/s counts
/// 4 KiB per pair (the form of the WORKLOADS.md reference).
template <typename Seal, typename Open>
Round runRound(std::uint32_t messages, Seal&& seal, Open&& open) {
  std::array<unsigned char, 32> key{};
  std::array<unsigned char, 24> nonce{};
  randombytes_buf(key.data(), key.size());
  randombytes_buf(nonce.data(), nonce.size());
  std::vector<unsigned char> plain(kMessageBytes);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    plain[i] = static_cast<unsigned char>(i * 13);
  }
  std::vector<unsigned char> sealed(kMessageBytes);
  std::vector<unsigned char> opened(kMessageBytes);
  std::array<unsigned char, 16> tag{};
  Round r;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < messages; ++i) {
    sodium_increment(nonce.data(), nonce.size());
    seal(key, nonce, plain, sealed.data(), tag.data());
    r.allOpened = open(key, nonce, sealed, tag.data(), opened.data()) && r.allOpened;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.allOpened = r.allOpened && opened == plain;
  r.mbPerSecond = static_cast<double>(messages) * kMessageBytes / 1e6 / seconds;
  return r;
}

} // namespace

bool runCipher(const CipherOptions& options, Report& report) {
  report.info("w1.sodium", "XChaCha20-Poly1305 by libsodium " +
                               std::string(sodium_version_string()) +
                               ", 4 KiB messages, seal + open");
  report.info("w1.page_cipher", "the vault's page cipher (XChaCha20-Poly1305), its "
                                "ChaCha20-Poly1305 by " +
                                    std::string(vault::aead::implementation()));
  const auto sodiumSeal = [](const auto& key, const auto& nonce, const auto& plain,
                             unsigned char* out, unsigned char* tag) {
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, tag, nullptr, plain.data(),
                                                        plain.size(), nullptr, 0, nullptr,
                                                        nonce.data(), key.data());
  };
  const auto sodiumOpen = [](const auto& key, const auto& nonce, const auto& sealed,
                             const unsigned char* tag, unsigned char* out) {
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, nullptr, sealed.data(),
                                                               sealed.size(), tag, nullptr, 0,
                                                               nonce.data(), key.data()) == 0;
  };
  const auto pageSeal = [](const auto& key, const auto& nonce, const auto& plain,
                           unsigned char* out, unsigned char* tag) {
    vault::aead::seal(key, nonce, {}, plain, out, tag);
  };
  const auto pageOpen = [](const auto& key, const auto& nonce, const auto& sealed,
                           const unsigned char* tag, unsigned char* out) {
    return vault::aead::open(key, nonce, {}, sealed, tag, out);
  };

  std::vector<double> sodium;
  std::vector<double> page;
  bool allOpened = true;
  for (std::uint32_t round = 0; round < options.rounds; ++round) {
    const Round s = runRound(options.messages, sodiumSeal, sodiumOpen);
    const Round p = runRound(options.messages, pageSeal, pageOpen);
    sodium.push_back(s.mbPerSecond);
    page.push_back(p.mbPerSecond);
    allOpened = allOpened && s.allOpened && p.allOpened;
  }
  report.result("w1.sodium", "seal_open_4k_mb_per_s", median(sodium), "MB/s");
  report.result("w1.page_cipher", "seal_open_4k_mb_per_s", median(page), "MB/s");
  report.result("w1.page_cipher", "vs_sodium", median(page) / median(sodium), "x");
  report.check("w1.page_cipher", "every message opened to what was sealed", allOpened);
  return report.allChecksPassed();
}

} // namespace outpost::bench
