// The vault's cipher: XChaCha20-Poly1305 (libsodium's, and the page cipher's, which
// runs on OpenSSL's libcrypto in a build that has it) against the Wycheproof vectors
// and against each other, and the page and frame sealing built on it.

#include "vault/page_aead.hpp"
#include "vault/page_cipher.hpp"
#include "vault/wal_format.hpp"

#include <outpost/context.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <fstream>
#include <random>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

using namespace outpost;
using namespace outpost::vault;

namespace {

std::vector<unsigned char> hex(const std::string& s) {
  std::vector<unsigned char> out(s.size() / 2);
  std::size_t len = 0;
  if (!out.empty()) {
    REQUIRE(sodium_hex2bin(out.data(), out.size(), s.c_str(), s.size(), nullptr, &len, nullptr) ==
            0);
  }
  out.resize(len);
  return out;
}

/// Sets how many libcrypto steps fail on this thread; back to none when it goes.
struct FailLibcrypto {
  explicit FailLibcrypto(int calls) { aead::testing::failLibcrypto(calls); }
  ~FailLibcrypto() { aead::testing::failLibcrypto(0); }
  FailLibcrypto(const FailLibcrypto&) = delete;
  FailLibcrypto& operator=(const FailLibcrypto&) = delete;
};

PageKeys testKeys() {
  std::array<unsigned char, 32> dek{};
  for (std::size_t i = 0; i < dek.size(); ++i) {
    dek[i] = static_cast<unsigned char>(i);
  }
  DatabaseId id{};
  id[0] = 7;
  return PageKeys::derive(dek, id);
}

} // namespace

TEST_SUITE("vault.cipher") {
  TEST_CASE("XChaCha20-Poly1305 passes every Wycheproof vector it can express") {
    const Context context;
    std::ifstream in(std::string(OUTPOST_TEST_DATA_DIR) +
                     "/wycheproof/xchacha20_poly1305_test.json");
    REQUIRE(in.good());
    const auto doc = nlohmann::json::parse(in);
    int valid = 0;
    int invalid = 0;
    int notExpressible = 0;
    for (const auto& group : doc["testGroups"]) {
      for (const auto& t : group["tests"]) {
        CAPTURE(t["tcId"].get<int>());
        const auto key = hex(t["key"]);
        const auto iv = hex(t["iv"]);
        const auto aad = hex(t["aad"]);
        const auto msg = hex(t["msg"]);
        const auto ct = hex(t["ct"]);
        const auto tag = hex(t["tag"]);
        if (iv.size() != crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ||
            key.size() != crypto_aead_xchacha20poly1305_ietf_KEYBYTES) {
          // Our API takes exactly 24-byte nonces and 32-byte keys by type.
          CHECK(t["result"] == "invalid");
          ++notExpressible;
          continue;
        }
        std::vector<unsigned char> out(msg.size() + 1);
        std::vector<unsigned char> pageOut(std::max(msg.size(), ct.size()) + 1, 0xee);
        std::vector<unsigned char> ctIn(ct.size() + 1);
        std::copy(ct.begin(), ct.end(), ctIn.begin());
        const auto keySpan = std::span<const unsigned char, aead::kKeyBytes>(key.data(), 32);
        const auto ivSpan = std::span<const unsigned char, aead::kNonceBytes>(iv.data(), 24);
        const bool tagSizeOk = tag.size() == crypto_aead_xchacha20poly1305_ietf_ABYTES;
        const int rc = tagSizeOk ? crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                                       out.data(), nullptr, ctIn.data(), ct.size(), tag.data(),
                                       aad.data(), aad.size(), iv.data(), key.data())
                                 : -1;
        // The page cipher takes 16-byte tags only: a shorter one is refused here.
        const bool pageOk =
            tagSizeOk && aead::open(keySpan, ivSpan, aad, std::span(ctIn.data(), ct.size()),
                                    tag.data(), pageOut.data());
        if (t["result"] == "valid") {
          ++valid;
          CHECK(rc == 0);
          CHECK(std::equal(msg.begin(), msg.end(), out.begin()));
          CHECK(pageOk);
          CHECK(std::equal(msg.begin(), msg.end(), pageOut.begin()));
          std::vector<unsigned char> sealed(msg.size() + 1);
          std::array<unsigned char, 16> mac{};
          crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
              sealed.data(), mac.data(), nullptr, msg.data(), msg.size(), aad.data(), aad.size(),
              nullptr, iv.data(), key.data());
          CHECK(std::equal(ct.begin(), ct.end(), sealed.begin()));
          CHECK(std::equal(tag.begin(), tag.end(), mac.begin()));
          std::vector<unsigned char> pageSealed(msg.size() + 1);
          std::array<unsigned char, 16> pageMac{};
          aead::seal(keySpan, ivSpan, aad, msg, pageSealed.data(), pageMac.data());
          CHECK(std::equal(ct.begin(), ct.end(), pageSealed.begin()));
          CHECK(std::equal(tag.begin(), tag.end(), pageMac.begin()));
        } else {
          ++invalid;
          CHECK(rc != 0);
          CHECK_FALSE(pageOk);
          if (tagSizeOk) {
            CHECK(std::all_of(pageOut.begin(),
                              pageOut.begin() + static_cast<std::ptrdiff_t>(ct.size()),
                              [](unsigned char b) { return b == 0; }));
          }
        }
      }
    }
    MESSAGE("Wycheproof XChaCha20-Poly1305: " << valid << " valid, " << invalid << " invalid, "
                                              << notExpressible << " not expressible");
    CHECK(valid == 246);
    CHECK(valid + invalid + notExpressible == doc["numberOfTests"].get<int>());
  }

  TEST_CASE("the page cipher runs on the implementation the build chose") {
    // A build with libcrypto that silently fell back to libsodium would be correct
    // but slow: its first-use self-test must pass on this machine.
    CHECK(aead::implementation() == OUTPOST_TEST_PAGE_AEAD);
  }

  TEST_CASE("a failure injected before the first use is not the self-test's") {
    // ctest runs each case in a process of its own: here the self-test runs now.
    const FailLibcrypto failing(1);
    CHECK(aead::implementation() == OUTPOST_TEST_PAGE_AEAD);
  }

  TEST_CASE("a seal or an open that libcrypto fails half-way is done by libsodium") {
    const Context context;
    std::array<unsigned char, 32> key{};
    std::array<unsigned char, 24> nonce{};
    key[0] = 1;
    nonce[23] = 2;
    const std::array<unsigned char, 5> aad = {1, 2, 3, 4, 5};
    std::vector<unsigned char> plain(kUsableBytes, 0x3c);
    std::vector<unsigned char> expected(plain.size());
    std::array<unsigned char, 16> expectedTag{};
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        expected.data(), expectedTag.data(), nullptr, plain.data(), plain.size(), aad.data(),
        aad.size(), nullptr, nonce.data(), key.data());

    std::vector<unsigned char> sealed(plain.size());
    std::array<unsigned char, 16> tag{};
    const FailLibcrypto stop(0); // whatever happens below, later tests run as built
    aead::testing::failLibcrypto(1);
    aead::seal(key, nonce, aad, plain, sealed.data(), tag.data());
    CHECK(sealed == expected);
    CHECK(tag == expectedTag);

    std::vector<unsigned char> out(plain.size(), 0xee);
    aead::testing::failLibcrypto(1);
    CHECK(aead::open(key, nonce, aad, sealed, tag.data(), out.data()));
    CHECK(out == plain);

    // A forged page stays refused, and nothing libcrypto decrypted is left.
    tag[3] ^= 1;
    std::fill(out.begin(), out.end(), 0xee);
    aead::testing::failLibcrypto(1);
    CHECK_FALSE(aead::open(key, nonce, aad, sealed, tag.data(), out.data()));
    CHECK(std::all_of(out.begin(), out.end(), [](unsigned char b) { return b == 0; }));
  }

  TEST_CASE("a context libcrypto fails to clear is freed and made again, and keeps serving") {
    const Context context;
    if (aead::implementation() != std::string_view("openssl")) {
      MESSAGE("pages are sealed by libsodium alone here: no libcrypto context to clear");
      return;
    }
    std::array<unsigned char, 32> key{};
    std::array<unsigned char, 24> nonce{};
    key[0] = 7;
    std::vector<unsigned char> plain(kUsableBytes, 0x5a);
    std::vector<unsigned char> sealed(plain.size());
    std::array<unsigned char, 16> tag{};
    aead::seal(key, nonce, {}, plain, sealed.data(), tag.data());
    REQUIRE(aead::testing::contextsHoldingMessage() == 1);

    const FailLibcrypto stop(0);
    aead::testing::failLibcrypto(1);
    aead::forgetMessages();
    CHECK(aead::testing::replacedContexts() == 1);
    CHECK(aead::testing::contextsHoldingMessage() == 0);

    // The new context seals libsodium's bytes, through libcrypto.
    const auto before = aead::testing::libcryptoMessages();
    std::vector<unsigned char> again(plain.size());
    std::array<unsigned char, 16> againTag{};
    aead::seal(key, nonce, {}, plain, again.data(), againTag.data());
    CHECK(aead::testing::libcryptoMessages() == before + 1);
    CHECK(again == sealed);
    CHECK(againTag == tag);
    std::vector<unsigned char> out(plain.size());
    CHECK(aead::open(key, nonce, {}, again, againTag.data(), out.data()));
    CHECK(out == plain);
    CHECK(aead::testing::libcryptoMessages() == before + 2);
  }

  TEST_CASE("the page cipher gives libsodium's bytes at every length and refuses any change") {
    const Context context;
    // Once as built, once with every libcrypto step failing (libsodium's path).
    for (const bool fallback : {false, true}) {
      CAPTURE(fallback);
      const FailLibcrypto failing(fallback ? 1 << 30 : 0);
      std::mt19937 rng(20261130);
      const auto fill = [&](auto& bytes) {
        for (auto& b : bytes) {
          b = static_cast<unsigned char>(rng());
        }
      };
      std::vector<std::size_t> sizes;
      for (std::size_t n = 0; n <= 200; ++n) {
        sizes.push_back(n);
      }
      for (const std::size_t n : {1023U, 1024U, 1025U, 4039U, 4040U, 4041U, 65539U}) {
        sizes.push_back(n);
      }
      int changes = 0;
      for (const std::size_t n : sizes) {
        CAPTURE(n);
        std::array<unsigned char, 32> key{};
        std::array<unsigned char, 24> nonce{};
        std::vector<unsigned char> aad(rng() % 49);
        std::vector<unsigned char> plain(n);
        fill(key);
        fill(nonce);
        fill(aad);
        fill(plain);
        std::vector<unsigned char> expected(n + 1);
        std::array<unsigned char, 16> expectedTag{};
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            expected.data(), expectedTag.data(), nullptr, plain.data(), n, aad.data(), aad.size(),
            nullptr, nonce.data(), key.data());
        std::vector<unsigned char> sealed(n + 1);
        std::array<unsigned char, 16> tag{};
        aead::seal(key, nonce, aad, plain, sealed.data(), tag.data());
        REQUIRE(std::equal(expected.begin(), expected.begin() + static_cast<std::ptrdiff_t>(n),
                           sealed.begin()));
        REQUIRE(tag == expectedTag);

        std::vector<unsigned char> out(n + 1, 0xee);
        REQUIRE(aead::open(key, nonce, aad, std::span(sealed.data(), n), tag.data(), out.data()));
        CHECK(std::equal(plain.begin(), plain.end(), out.begin()));

        // One flipped bit anywhere: in the ciphertext, the tag, the associated data,
        // the nonce or the key.
        const auto refused = [&](auto&& change) {
          auto c = sealed;
          auto t = tag;
          auto a = aad;
          auto k = key;
          auto v = nonce;
          change(c, t, a, k, v);
          std::fill(out.begin(), out.end(), 0xee);
          const bool opened = aead::open(k, v, a, std::span(c.data(), n), t.data(), out.data());
          ++changes;
          return !opened && std::all_of(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n),
                                        [](unsigned char b) { return b == 0; });
        };
        if (n > 0) {
          CHECK(refused([&](auto& c, auto&, auto&, auto&, auto&) { c[rng() % n] ^= 1; }));
        }
        CHECK(refused([&](auto&, auto& t, auto&, auto&, auto&) { t[rng() % 16] ^= 0x80; }));
        if (!aad.empty()) {
          CHECK(refused([&](auto&, auto&, auto& a, auto&, auto&) { a[rng() % a.size()] ^= 4; }));
        }
        CHECK(refused([&](auto&, auto&, auto&, auto& k, auto&) { k[rng() % 32] ^= 2; }));
        CHECK(refused([&](auto&, auto&, auto&, auto&, auto& v) { v[rng() % 24] ^= 8; }));
      }
      const std::string mode = fallback ? "libsodium's path" : "as built";
      MESSAGE(mode << ": " << sizes.size() << " lengths, " << changes
                   << " changed messages refused");
    }
  }

  TEST_CASE("threads seal and open pages at the same time") {
    const Context context;
    const PageKeys keys = testKeys();
    // Each thread's first use of the cipher is an open, of a page sealed here.
    std::vector<unsigned char> firstPlain(kPageSize, 0);
    std::fill_n(firstPlain.begin(), kUsableBytes, 0x77);
    std::vector<unsigned char> firstSealed(kPageSize);
    const PageAad firstAad(keys.databaseId, FileRole::database, 999);
    NonceSource mainNonces;
    sealPage(keys.database, firstAad, mainNonces.next(), firstPlain, firstSealed);
    std::vector<std::thread> threads;
    std::vector<int> mismatches(4, 0);
    for (std::size_t t = 0; t < mismatches.size(); ++t) {
      threads.emplace_back([&, t] {
        std::vector<unsigned char> first(kPageSize);
        if (!openPage(keys.database, firstAad, firstSealed, first) || first != firstPlain) {
          ++mismatches[t];
        }
        NonceSource nonces;
        std::vector<unsigned char> plain(kPageSize, 0);
        std::vector<unsigned char> sealed(kPageSize);
        std::vector<unsigned char> out(kPageSize);
        std::vector<unsigned char> expected(kUsableBytes);
        std::array<unsigned char, 16> expectedTag{};
        for (int i = 0; i < 300; ++i) {
          std::fill_n(plain.begin(), kUsableBytes,
                      static_cast<unsigned char>(t * 64 + static_cast<std::size_t>(i)));
          const PageAad aad(keys.databaseId, FileRole::database, static_cast<std::uint64_t>(i));
          const Nonce nonce = nonces.next();
          sealPage(keys.database, aad, nonce, plain, sealed);
          crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
              expected.data(), expectedTag.data(), nullptr, plain.data(), kUsableBytes,
              aad.bytes().data(), aad.bytes().size(), nullptr, nonce.data(), keys.database.data());
          const bool same =
              std::equal(expected.begin(), expected.end(), sealed.begin()) &&
              std::equal(expectedTag.begin(), expectedTag.end(),
                         sealed.begin() + static_cast<std::ptrdiff_t>(kUsableBytes + kNonceBytes));
          if (!same || !openPage(keys.database, aad, sealed, out) || out != plain) {
            ++mismatches[t];
          }
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
    CHECK(mismatches == std::vector<int>(4, 0));
  }

  TEST_CASE("a sealed page opens only with the same key, database id, role and position") {
    const Context context;
    const PageKeys keys = testKeys();
    std::vector<unsigned char> plain(kPageSize, 0);
    for (std::size_t i = 0; i < kUsableBytes; ++i) {
      plain[i] = static_cast<unsigned char>(i * 7);
    }
    NonceSource nonces;
    std::vector<unsigned char> sealed(kPageSize);
    std::vector<unsigned char> out(kPageSize);
    const PageAad aad(keys.databaseId, FileRole::database, 5);
    sealPage(keys.database, aad, nonces.next(), plain, sealed);
    CHECK(openPage(keys.database, aad, sealed, out));
    CHECK(out == plain);

    CHECK_FALSE(
        openPage(keys.database, PageAad(keys.databaseId, FileRole::database, 6), sealed, out));
    CHECK_FALSE(
        openPage(keys.database, PageAad(keys.databaseId, FileRole::journal, 5), sealed, out));
    DatabaseId other = keys.databaseId;
    other[15] ^= 1;
    CHECK_FALSE(openPage(keys.database, PageAad(other, FileRole::database, 5), sealed, out));
    CHECK_FALSE(openPage(keys.journal, aad, sealed, out));
    CHECK(std::all_of(out.begin(), out.end(), [](unsigned char b) { return b == 0; }));

    for (const std::size_t at :
         {std::size_t{0}, kUsableBytes - 1, kUsableBytes, kUsableBytes + 30}) {
      auto bad = sealed;
      bad[at] ^= 1;
      CHECK_FALSE(openPage(keys.database, aad, bad, out));
    }
  }

  TEST_CASE("nonces never repeat within a source and differ between sources") {
    const Context context;
    NonceSource a;
    NonceSource b;
    std::set<Nonce> seen;
    for (int i = 0; i < 10000; ++i) {
      seen.insert(a.next());
    }
    CHECK(seen.size() == 10000);
    CHECK_FALSE(seen.contains(b.next()));
  }

  TEST_CASE("a WAL frame binds page, header and position, and hides the checksums") {
    const Context context;
    const PageKeys keys = testKeys();
    std::array<unsigned char, kFrameHeaderBytes> header{};
    header[3] = 9;  // page 9
    header[7] = 12; // commit: database of 12 pages
    for (std::size_t i = 8; i < 24; ++i) {
      header[i] = static_cast<unsigned char>(0xa0 + i);
    }
    std::vector<unsigned char> page(kPageSize, 0x5a);
    std::fill(page.begin() + kUsableBytes, page.end(), 0);
    NonceSource nonces;
    std::vector<unsigned char> stored(kFrameBytes);
    std::vector<unsigned char> out(kFrameBytes);
    sealFrame(keys, 3, header, page, nonces.next(), stored);
    CHECK_FALSE(std::equal(header.begin() + 16, header.end(), stored.begin() + 16));
    REQUIRE(openFrame(keys, 3, stored, out));
    CHECK(std::equal(header.begin(), header.end(), out.begin()));
    CHECK(std::equal(page.begin(), page.end(), out.begin() + kFrameHeaderBytes));
    CHECK_FALSE(openFrame(keys, 4, stored, out)); // moved
    for (std::size_t at = 0; at < kFrameBytes; at += 97) {
      auto bad = stored;
      bad[at] ^= 0x10;
      CHECK_FALSE(openFrame(keys, 3, bad, out));
    }
    // The sealed page is exactly what the database file would hold for page 9.
    std::vector<unsigned char> dbPage(kPageSize);
    std::copy_n(stored.begin() + kFrameHeaderBytes, kPageSize, dbPage.begin());
    std::fill(dbPage.end() - kFrameMacBytes, dbPage.end(), 0);
    std::vector<unsigned char> plain(kPageSize);
    CHECK(openPage(keys.database, PageAad(keys.databaseId, FileRole::database, 9), dbPage, plain));
  }

  TEST_CASE("SQLite's WAL checksum matches a known value") {
    // Two words 1,2 then 3,4 little-endian: s1=1+0=1, s2=2+1=3; s1=3+3+1=7, s2=4+7+3=14.
    const std::array<unsigned char, 16> data = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0};
    std::uint32_t s1 = 0;
    std::uint32_t s2 = 0;
    walChecksum(false, data, s1, s2);
    CHECK(s1 == 7);
    CHECK(s2 == 14);
  }
}
