#pragma once
// Grace periods for group pointers (quiescent-state reclamation). A thread holds pointers to
// groups (read from the pipeline's stage map, or queued as deferred wake-ups) only inside a
// section: a worker's batch, a reactor round, a dispatch. When the map changes, `advance()`
// opens a new epoch; once `passed(e)` holds, no thread can still hold a pointer it read before,
// so a group that no stage maps to any more receives nothing new and may stop.
//
// A section costs one store to the thread's own cache line on entry and one on exit; nothing
// is shared between threads on that path.

#include <cstdint>

namespace weir::runtime::epoch {

/// Marks this thread as inside a section (not nested: the caller counts nesting).
void enter();
void leave();

/// Starts a new epoch, after the change it protects has been published; returns it.
std::uint64_t advance();
/// True when every thread now inside a section entered it at epoch `e` or later.
bool passed(std::uint64_t e);

}  // namespace weir::runtime::epoch
