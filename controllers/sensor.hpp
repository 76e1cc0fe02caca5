#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controllers/sample.hpp"
#include "runtime/pipeline.hpp"

namespace weir::controllers {

/// The cores this process may run on (sched_getaffinity), at least 1.
unsigned usable_cores();

/// Takes samples of a pipeline: per group, what its stages did since the previous sample
/// (counter and histogram deltas) and its pool and queue now. Reads only what the runtime keeps
/// for /metrics (per-thread blocks, atomics); no lock of the request path.
class pipeline_sensor {
 public:
  /// `blocking`: names of the stages that block (their groups may grow past the cores).
  pipeline_sensor(const runtime::pipeline& pipe, std::vector<std::string> blocking,
                  unsigned cores = usable_cores());

  /// A sample at `now_ms`; the first one covers the time since construction.
  sample take(std::int64_t now_ms);

 private:
  struct stage_totals {
    std::uint64_t processed = 0;
    runtime::histogram_snapshot queue_wait, service;
  };

  const runtime::pipeline& pipe_;
  std::vector<std::string> blocking_;
  unsigned cores_;
  std::vector<stage_totals> previous_;
  std::map<std::string, std::uint64_t> previous_wakeups_;  // by group name
  std::int64_t previous_ms_ = -1;
};

}  // namespace weir::controllers
