# System dependencies, all from Debian 12 packages (scripts/install-deps installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(GTest REQUIRED)
# Debian's hiredis CMake config points at a missing static library: use pkg-config.
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(LIBYAML REQUIRED IMPORTED_TARGET yaml-0.1)
# https:// datasets (libcurl with OpenSSL).
pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)
# libpq (libpq-dev): the data_retrieval executor's PostgreSQL source.
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
