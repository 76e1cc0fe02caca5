#pragma once

#include <string_view>

namespace weir {

// Kept by hand in step with project(VERSION) in the top-level CMakeLists.txt.
inline constexpr std::string_view weir_version = "0.1.0";

}  // namespace weir
