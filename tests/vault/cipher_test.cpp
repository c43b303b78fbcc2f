// The vault's cipher: libsodium's XChaCha20-Poly1305 against the Wycheproof
// vectors, and the page and frame sealing built on it.

#include "vault/page_cipher.hpp"
#include "vault/wal_format.hpp"

#include <outpost/context.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <fstream>
#include <set>
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
        std::vector<unsigned char> ctIn(ct.size() + 1);
        std::copy(ct.begin(), ct.end(), ctIn.begin());
        const bool tagSizeOk = tag.size() == crypto_aead_xchacha20poly1305_ietf_ABYTES;
        const int rc = tagSizeOk ? crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                                       out.data(), nullptr, ctIn.data(), ct.size(), tag.data(),
                                       aad.data(), aad.size(), iv.data(), key.data())
                                 : -1;
        if (t["result"] == "valid") {
          ++valid;
          CHECK(rc == 0);
          CHECK(std::equal(msg.begin(), msg.end(), out.begin()));
          std::vector<unsigned char> sealed(msg.size() + 1);
          std::array<unsigned char, 16> mac{};
          crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
              sealed.data(), mac.data(), nullptr, msg.data(), msg.size(), aad.data(), aad.size(),
              nullptr, iv.data(), key.data());
          CHECK(std::equal(ct.begin(), ct.end(), sealed.begin()));
          CHECK(std::equal(tag.begin(), tag.end(), mac.begin()));
        } else {
          ++invalid;
          CHECK(rc != 0);
        }
      }
    }
    MESSAGE("Wycheproof XChaCha20-Poly1305: " << valid << " valid, " << invalid << " invalid, "
                                              << notExpressible << " not expressible");
    CHECK(valid == 246);
    CHECK(valid + invalid + notExpressible == doc["numberOfTests"].get<int>());
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
