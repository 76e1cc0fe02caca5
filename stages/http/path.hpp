#pragma once

#include <string>
#include <string_view>

namespace weir::http {

/// Turns a raw (percent-encoded) origin-form path into the normalised path weir looks up:
/// percent-decoded once, `.` and `..` segments removed (RFC 3986 5.2.4), runs of '/' merged. The
/// result always starts with '/' and never contains a NUL byte or a segment that leaves the root.
/// Returns 0 on success, or the HTTP status to answer with: 400 for a bad %-escape, a decoded NUL,
/// a path that does not start with '/', or one whose `..` would climb above the root.
/// `out` keeps its capacity between calls (no allocation once warm).
int normalize_path(std::string_view raw, std::string& out);

}  // namespace weir::http
