#pragma once
// The pool controller's policy: a pure function of a sample, its own state, its settings and the
// sample's `now`. It sizes each group's pool; applying (or, in dry-run, only logging) is the
// actuator's business.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controllers/sample.hpp"
#include "controllers/settings.hpp"

namespace weir::controllers {

/// One change to one pool, and why (the numbers it was based on).
struct pool_decision {
  std::string group;
  std::size_t from = 0, to = 0;
  std::string why;
};

/// What the policy remembers between samples, per group (by name: groups come and go as the
/// grouping controller fuses and splits).
struct pool_state {
  struct group_state {
    int pressure_runs = 0;
    std::int64_t idle_since_ms = -1;  // -1: not idle
  };
  std::map<std::string, group_state> groups;
};

std::vector<pool_decision> decide_pools(const sample& s, pool_state& state,
                                        const pool_settings& settings);

}  // namespace weir::controllers
