#pragma once

#include <string_view>

namespace weir::http {

/// Content-Type for a file name by its extension (case-insensitive); "application/octet-stream"
/// when unknown. Text types carry "; charset=utf-8".
std::string_view content_type_for(std::string_view file_name);

}  // namespace weir::http
