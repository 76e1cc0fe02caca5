#pragma once

#include <string>

namespace weir {

/// Writes the sample site compiled into the binary (a few pages, a stylesheet, a nested
/// directory) into a fresh private temporary directory and returns its path. `weir` serves it
/// when no document root is given, so the first run shows something real.
/// Throws std::system_error when the directory cannot be created.
std::string materialize_sample_site();

}  // namespace weir
