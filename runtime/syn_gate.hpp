#pragma once
// The SYN gate's share: the fraction of new connections' SYNs the listener lets through while it
// is open. The gate closes when weir pauses accepting at its request limit and opens when weir
// has room and the listen queue is empty; but weir closes it only at its next accept round, and
// under load (or a CPU cap) that round comes tens of milliseconds later: fully open, the gate
// lets SYNs in at the whole offered rate (with the clients' retransmissions, which come in waves
// a second apart) meanwhile, and hundreds of connections are left waiting in the listen queue,
// where the latency target is spent before weir sees them.
// So each cycle (open, then a pause at the limit) corrects the share by what it let through:
// `passed` connections (accepted since the gate opened, and those found queued at the pause)
// where weir could take what it accepted plus a short queue (`syn_gate_wanted_queue`). The
// share is scaled by (accepted + wanted queue) / passed, by half to double per cycle at most: a
// long queue at the pause lowers it, an empty one raises it, and it holds where the queue the
// pause finds is the short one wanted. Weir not reaching its limit for `idle_ms` means it is not
// overloaded: the share doubles, once per `idle_ms`, back to 1 (the filter comes off).
// A pure policy: the accept stage and the event loop sample, decide and apply (a socket filter).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace weir::runtime {

struct syn_gate_settings {
  double min_share = 1.0 / 64;
  double queue_share = 0.25;  // of the request limit: the longest listen queue wanted...
  double wait_share = 0.25;   // ...and of the latency target: the longest wait in it wanted
  std::int64_t idle_ms = 100;
};

struct syn_gate_state {
  double share = 1;         // of SYNs let through while the gate is open
  bool cycle_open = false;  // opened since the last pause at the limit
  std::int64_t limit_ms = std::numeric_limits<std::int64_t>::min() / 2;   // the last pause
  std::int64_t raised_ms = std::numeric_limits<std::int64_t>::min() / 2;  // the last idle raise
  std::uint64_t cuts = 0, raises = 0;
};

/// The gate opened (weir has room, the listen queue is empty).
inline void syn_gate_opened(syn_gate_state& st) {
  st.cycle_open = true;
}

/// The listen queue wanted, in connections, when `queued` wait in it, the oldest of them for
/// `head_wait_ms` (negative: not known), under the request limit `limit` and the latency target
/// `target_ms`: a `queue_share` of the limit (with the limit at 0.75 x answered/s x target, a
/// fifth of the target's wait), and no more than the queue whose head would have waited a
/// `wait_share` of the target, scaled from this one (a wait grows with the queue ahead of it).
/// The wait is what tells from the start: the limit starts high and is cut only once admitted
/// requests have gone over the target, while the kernel's queue fills at the excess rate.
inline double syn_gate_wanted_queue(const syn_gate_settings& s, std::size_t queued,
                                    std::int64_t head_wait_ms, std::size_t limit,
                                    std::int64_t target_ms) {
  double wanted = s.queue_share * static_cast<double>(limit);
  if (head_wait_ms >= 0 && target_ms > 0) {
    const double waited = std::max(1.0, static_cast<double>(head_wait_ms));
    wanted = std::min(wanted, static_cast<double>(queued) * s.wait_share *
                                  static_cast<double>(target_ms) / waited);
  }
  return std::max(1.0, wanted);
}

/// After an accept round that left `queued` connections in the listen queue: more than the
/// queue wanted (`syn_gate_wanted_queue`; never under one connection) closes the gate.
inline bool syn_gate_queue_too_long(std::size_t queued, double wanted) {
  return static_cast<double>(queued) > wanted;
}

/// A listen queue of at most half the one wanted: a gate closed on a long queue may open.
inline bool syn_gate_queue_short(std::size_t queued, double wanted) {
  return static_cast<double>(queued) <= wanted / 2;
}

/// The gate closes at `now_ms` (weir paused accepting at its request limit, or the listen queue
/// is too long), weir having accepted `accepted` connections since the gate last opened, with
/// `queued` more in the listen queue where `wanted` (at least one) were wanted. Returns the share
/// to open with next time.
inline double syn_gate_closing(const syn_gate_settings& s, syn_gate_state& st, std::size_t accepted,
                               std::size_t queued, double wanted, std::int64_t now_ms) {
  st.limit_ms = now_ms;
  if (!st.cycle_open) return st.share;  // closed since the last pause: nothing passed through it
  st.cycle_open = false;
  const double took = static_cast<double>(accepted);
  const double passed = took + static_cast<double>(queued);
  const double ratio = passed <= 0 ? 2.0 : std::clamp((took + wanted) / passed, 0.5, 2.0);
  const double share = std::clamp(st.share * ratio, s.min_share, 1.0);
  if (share < st.share) ++st.cuts;
  st.share = share;
  return st.share;
}

/// The event loop's tick at `now_ms`: a share under 1 with no pause at the limit for `idle_ms`
/// doubles. Returns the share to let through now.
inline double syn_gate_tick(const syn_gate_settings& s, syn_gate_state& st, std::int64_t now_ms) {
  if (st.share < 1 && now_ms - st.limit_ms >= s.idle_ms && now_ms - st.raised_ms >= s.idle_ms) {
    st.share = std::min(1.0, st.share * 2);
    st.raised_ms = now_ms;
    ++st.raises;
  }
  return st.share;
}

}  // namespace weir::runtime
