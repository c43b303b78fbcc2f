# Every dependency is a Debian 12 package (tools/install-deps.sh installs them).

find_package(PkgConfig REQUIRED)
find_package(SQLite3 3.40 REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(CapnProto 0.9 CONFIG REQUIRED)
find_package(doctest CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(nlohmann_json 3.10 CONFIG REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(sodium REQUIRED IMPORTED_TARGET libsodium>=1.0.18)
pkg_check_modules(zstd REQUIRED IMPORTED_TARGET libzstd>=1.4)

# The vault's page cipher (XChaCha20-Poly1305) runs its ChaCha20-Poly1305 step in
# OpenSSL's libcrypto, whose vectorised code takes about 30 % less time per 4 KiB
# page than libsodium 1.0.18's (`outpost-bench cipher`); libsodium alone gives the
# same bytes (sdk/src/vault/page_aead.hpp). OFF builds with libsodium only.
option(OUTPOST_OPENSSL "Seal vault pages with OpenSSL's ChaCha20-Poly1305" ON)
if(OUTPOST_OPENSSL)
  find_package(OpenSSL 3.0 COMPONENTS Crypto)
  if(NOT OpenSSL_FOUND)
    message(FATAL_ERROR "OpenSSL 3 (libcrypto) not found: install libssl-dev "
                        "(tools/install-deps.sh does), or configure with -DOUTPOST_OPENSSL=OFF "
                        "to seal vault pages with libsodium alone")
  endif()
endif()
