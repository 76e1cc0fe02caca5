# Private warning and sanitizer flags, on an INTERFACE target so they never leak to consumers.
add_library(weir_build_flags INTERFACE)
target_compile_options(weir_build_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                       -Wnon-virtual-dtor -Wno-missing-field-initializers)

set(WEIR_SANITIZE "" CACHE STRING "Sanitizers: '', 'address;undefined' or 'thread'")
if(WEIR_SANITIZE)
  list(JOIN WEIR_SANITIZE "," _weir_san)
  add_compile_options(-fsanitize=${_weir_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_weir_san})
endif()

# The fuzz preset: coverage instrumentation everywhere, so libFuzzer sees inside the libraries the
# targets call (tests/fuzz). clang only.
option(WEIR_FUZZ "Build the libFuzzer targets (clang)" OFF)
if(WEIR_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "WEIR_FUZZ needs clang (cmake --preset fuzz), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
