// weir-loadgen: flags in, one run of open-loop load, a summary (and JSON) out. The engine and
// the report live in weir_loadgen_core.
#include <signal.h>
#include <sys/resource.h>

#include <fstream>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "bench/loadgen/options.hpp"

namespace {

constexpr int exit_runtime_error = 1;
constexpr int exit_usage = 2;

// Raises the soft descriptor limit to the hard one; returns the limit in force.
long raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : static_cast<long>(rl.rlim_cur);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weir::loadgen;
  signal(SIGPIPE, SIG_IGN);
  options o;
  try {
    o = parse_options(std::vector<std::string>(argv + 1, argv + argc), raise_fd_limit());
  } catch (const usage_error& e) {
    std::cerr << "weir-loadgen: " << e.what() << "\n";
    return exit_usage;
  }
  if (o.help) {
    std::cout << usage_text;
    return 0;
  }
  try {
    const auto result = run_load(o.config);
    print_summary(std::cout, o.config, o.description, *result);
    for (const std::string& w : result->warnings)
      std::cerr << "weir-loadgen: warning: " << w << "\n";
    if (!o.json_file.empty()) {
      std::ofstream out(o.json_file);
      out << to_json(o.config, o.description, *result).dump(2) << "\n";
      if (!out) {
        std::cerr << "weir-loadgen: --json: cannot write \"" << o.json_file << "\"\n";
        return exit_runtime_error;
      }
    }
  } catch (const std::system_error& e) {
    std::cerr << "weir-loadgen: " << e.what() << "\n";
    return exit_runtime_error;
  }
  return 0;
}
