# Every third-party dependency is found here, and only from Debian packages
# (scripts/bootstrap.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)            # Boost.Lockfree (header-only)
find_package(TBB REQUIRED)                   # oneTBB
find_package(prometheus-cpp REQUIRED)        # metrics exposition
find_package(yaml-cpp REQUIRED)              # config file
find_package(spdlog REQUIRED)                # error log
find_package(nlohmann_json 3 REQUIRED)       # admin API's JSON (header-only)
find_package(PkgConfig REQUIRED)
pkg_check_modules(FUSE3 REQUIRED IMPORTED_TARGET fuse3)  # bench/slowfs (libfuse3-dev)
if(WEIR_BUILD_TESTS OR NOT DEFINED WEIR_BUILD_TESTS)
  find_package(GTest REQUIRED)
  # The differential fuzzer's independent parser (libhttp-parser-dev); tests only.
  find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
  find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)
endif()
find_package(benchmark QUIET)                # micro-benchmarks (optional)
