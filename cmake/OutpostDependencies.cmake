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
