#pragma once
// What a run prints: a one-screen summary for people and a JSON document (summary plus the
// series, a slot per --series-ms) for scripts.

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/loadgen/client.hpp"

namespace weir::loadgen {

/// The flags that shaped the run, echoed into the report.
struct run_description {
  std::string target, model, arrival, mix;
};

void print_summary(std::ostream& out, const run_config& config, const run_description& what,
                   const run_result& result);

nlohmann::json to_json(const run_config& config, const run_description& what,
                       const run_result& result);

}  // namespace weir::loadgen
