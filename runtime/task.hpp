#pragma once

#include <cstdint>

namespace weir::runtime {

using stage_index = std::uint8_t;

/// Returned by a stage handler when the task has left the pipeline (parked on epoll, closed).
inline constexpr stage_index stage_done = 0xff;
inline constexpr stage_index max_stages = 16;

/// What queues carry: a pointer to a task. The stage to run next travels inside the task, so
/// the worker of whichever group pops it can run it; this is what lets a controller regroup
/// stages at run time without losing or re-routing queued work.
struct task {
  stage_index next_stage = 0;
  /// When the task entered its current queue (steady clock, ns; 0: not timed). Set by whoever
  /// submits it, read by the worker that pops it.
  std::int64_t enqueued_ns = 0;
};

}  // namespace weir::runtime
