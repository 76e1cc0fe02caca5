#pragma once
// The grouping controller's policy: a pure function of a sample, its own state, its settings, the
// pipeline's flow and the sample's `now`. It decides which neighbouring stages share a group
// (fused: one queue, one pool, direct calls) and which run apart; the actuator regroups.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "controllers/sample.hpp"
#include "controllers/settings.hpp"

namespace weir::controllers {

/// Which stage hands tasks to which: an edge (from, to) by stage name. Neighbours in the flow
/// (not only in the list) may fuse: cache_lookup -> send is the hit path, send -> read_parse the
/// keep-alive loop.
using flow_edges = std::vector<std::pair<std::string, std::string>>;

/// The flow of weir's five stages.
flow_edges weir_flow();

struct grouping_decision {
  enum class kind { fuse, split };
  kind action = kind::fuse;
  /// fuse: the stages of the new group (the two groups' stages together, in pipeline order).
  /// split: the one stage that leaves its group (the rest stay together).
  std::vector<std::string> stages;
  std::string why;  // the numbers it was based on, for the log line
};

/// What the policy remembers between samples.
struct grouping_state {
  std::int64_t last_change_ms = -1;  // -1: never
  // Consecutive samples a candidate held, by a key naming the candidate (e.g. "fuse:a+b").
  std::vector<std::pair<std::string, int>> runs;
  /// A stage's cost from the last window with enough runs to measure it: a fuse that would put a
  /// slow stage back with fast ones is refused even while traffic is too light to measure it
  /// again.
  struct stage_cost {
    std::string stage;
    double mean_ns = 0;  // mean service time of a run
    double busy = 0;     // its runs' time over the window (0.1: a tenth of one thread)
  };
  std::vector<stage_cost> costs;
};

/// At most one decision per call (one regroup per period: the next sample shows its effect).
/// Splits a group that is saturated and queueing, or whose slowest stage dwarfs the others;
/// fuses two groups joined by a flow edge that are both lightly loaded, whose hop wakes a worker
/// often, and whose fused group would meet neither split rule. Each after its run of samples in
/// a row, and never within `cooldown` of the last regroup.
std::vector<grouping_decision> decide_grouping(const sample& s, grouping_state& state,
                                               const grouping_settings& settings,
                                               const flow_edges& flow);

}  // namespace weir::controllers
