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
