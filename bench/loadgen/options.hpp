#pragma once
// The command line: every flag, its accepted values, and the one-line message for a bad one.

#include <stdexcept>
#include <string>
#include <vector>

#include "bench/loadgen/client.hpp"
#include "bench/loadgen/report.hpp"

namespace weir::loadgen {

/// A bad flag: the message names it and what it accepts (the caller prints it, exits 2).
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct options {
  run_config config;
  run_description description;
  std::string json_file;  // empty: no JSON
  bool help = false;
};

/// Parses argv (without argv[0]); reads the mix file. Throws usage_error.
/// `fd_limit` is the most file descriptors the run may have open.
options parse_options(const std::vector<std::string>& args, long fd_limit);

extern const char* const usage_text;

}  // namespace weir::loadgen
