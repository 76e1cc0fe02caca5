#include "controllers/admission_policy.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace weir::controllers {
namespace {

// One slow request is never a trend: a cut needs at least this many over the target.
constexpr std::uint64_t min_over_target = 2;
// Past the in-flight level of the last cut a raise adds this share of the limit (at least 1),
// and once the limit is this many times that level the cut is forgotten.
constexpr double careful_step = 1.0 / 16;
constexpr double cut_forgotten_at = 1.5;

std::string describe(const admission_class_sample& c, double percentile) {
  return fmt::format(
      "p{:g} {:.1f} ms, {} of {} admitted over target, {} refused, in flight at "
      "most {}",
      percentile * 100, static_cast<double>(c.percentile_ns) / 1e6, c.over_target, c.completed,
      c.refused, c.peak_in_flight);
}

bool over_target(const admission_class_sample& c, const admission_settings& cfg) {
  const double allowed = (1.0 - cfg.percentile) * static_cast<double>(c.completed);
  return c.completed >= cfg.min_samples && c.over_target >= min_over_target &&
         static_cast<double>(c.over_target) > allowed;
}

double answered_per_s(const admission_class_sample& c, std::int64_t window_ms) {
  return window_ms > 0 ? static_cast<double>(c.answered) * 1000.0 / static_cast<double>(window_ms)
                       : 0.0;
}

// A queue building up before its answers show it: what is in flight at the window's end would
// take more than two targets to drain at the rate the class answered (Little's law, looking
// ahead). Fast answers from before the queue then do not hide the wait of the requests behind
// them. (Not the window's peak: a burst of a few in a quiet window is no queue.)
bool queue_building(const admission_class_sample& c, std::int64_t window_ms,
                    const admission_settings& cfg) {
  const double rate = answered_per_s(c, window_ms);
  const std::size_t now = std::min(c.in_flight, c.limit);
  return c.completed >= cfg.min_samples && rate > 0 &&
         static_cast<double>(now) > 2 * rate * static_cast<double>(cfg.target.count()) / 1000.0;
}

}  // namespace

std::uint64_t raise_samples(const admission_settings& cfg) {
  const double tail = 1.0 - cfg.percentile;
  const auto enough = tail > 0 ? static_cast<std::uint64_t>(std::ceil(1.0 / tail - 1e-9)) : 0;
  return std::max(cfg.min_samples, enough);
}

bool admission_window_done(const admission_class_sample& c, const admission_settings& cfg) {
  return over_target(c, cfg) || c.completed >= raise_samples(cfg) ||
         queue_building(c, c.window_ms, cfg);
}

admission_sample admission_window(const runtime::admission_snapshot& now,
                                  const runtime::admission_snapshot& before, std::int64_t now_ms,
                                  std::int64_t window_ms, double percentile) {
  admission_sample s;
  s.now_ms = now_ms;
  s.window_ms = window_ms;
  const auto diff = [](std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : 0; };
  for (std::size_t i = 0; i < runtime::admission_classes; ++i) {
    const runtime::admission_class_snapshot& a = now.classes[i];
    const runtime::admission_class_snapshot& b = before.classes[i];
    admission_class_sample& c = s.classes[i];
    c.answered = diff(a.completed, b.completed);
    c.completed = diff(c.answered, diff(a.stale_completed, b.stale_completed));
    c.over_target =
        diff(diff(a.over_target, b.over_target), diff(a.stale_over_target, b.stale_over_target));
    c.refused = diff(a.refused, b.refused);
    c.percentile_ns = a.latency.since(b.latency)
                          .since(a.stale_latency.since(b.stale_latency))
                          .quantile_ns(percentile);
    c.limit = a.limit;
    c.peak_in_flight = a.peak_in_flight;
    c.in_flight = a.in_flight;
    c.window_ms = window_ms;
  }
  s.accept_pauses = diff(now.accept_pauses, before.accept_pauses);
  s.backlog = now.backlog;
  return s;
}

std::vector<admission_decision> decide_admission(const admission_sample& s, admission_state& state,
                                                 const admission_settings& cfg) {
  std::vector<admission_decision> out;
  for (std::size_t i = 0; i < runtime::admission_classes; ++i) {
    const auto cls = static_cast<runtime::admission_class>(i);
    const admission_class_sample& c = s.classes[i];
    if (!cfg.enabled) {
      state.settle_until_ms[i] = -1;
      state.cut_at[i] = 0;
      if (c.limit != runtime::admission_gate::unlimited)
        out.push_back({cls, c.limit, runtime::admission_gate::unlimited, "admission control off"});
      continue;
    }
    if (c.partial) continue;  // its window goes on
    const std::size_t limit = std::clamp(c.limit, cfg.min_limit, cfg.max_limit);
    std::size_t to = limit;
    std::string why;
    const double allowed = (1.0 - cfg.percentile) * static_cast<double>(c.completed);
    const bool settling = state.settle_until_ms[i] >= 0 && s.now_ms < state.settle_until_ms[i];
    if (!settling) state.settle_until_ms[i] = -1;
    const std::int64_t window_ms = c.window_ms > 0 ? c.window_ms : s.window_ms;
    const bool building = queue_building(c, window_ms, cfg);
    const bool over = over_target(c, cfg) || building;
    // The limit holds the load back: it refused, or what was in flight came near it.
    const bool binding = c.refused > 0 || c.peak_in_flight * 10 >= limit * 9;
    // Refusals let a window with few answers raise, but never one with none: nothing says the
    // target is met while nothing completes (a limit must not creep up under timeouts).
    const bool under = (c.completed >= raise_samples(cfg) || (c.refused > 0 && c.completed > 0)) &&
                       static_cast<double>(c.over_target) <= allowed / 2;
    const double rate = answered_per_s(c, window_ms);
    const double allows =
        rate * static_cast<double>(cfg.target.count()) / 1000.0 * cut_share_of_target;
    // Over the target with no more in flight than Little's law allows at the rate answered:
    // the mean time inside weir was within the target's share, so the time over it was spent
    // where the limit does not reach (the listen queue, in a new connection's first request).
    // Cutting would only lower the throughput (and with it the next window's allowance: a
    // spiral down to min_limit); the SYN gate bounds that queue.
    const bool outside = !building && static_cast<double>(c.peak_in_flight) <= allows;
    if (over && !settling && !outside) {
      // Little's law: in flight = throughput x latency. Over target the class answers at its
      // capacity, so what meets the target is that rate times (a share of) the target; within
      // a clamp of what was in flight, so a small excess does not halve it and one odd window
      // cannot take it to nothing. (The percentile sizes nothing: its buckets are 2-2.5x wide.)
      const std::size_t base = std::clamp<std::size_t>(c.peak_in_flight, 1, limit);
      // Most of the window over the target is no outlier but a standing queue: then nothing
      // but Little's law bounds the cut from below (a limit far above the load comes down in
      // one step instead of halving window after window).
      const bool most_over = c.over_target * 2 > c.completed || building;
      const double floor = most_over ? 0.0 : static_cast<double>(base) * cfg.decrease_min;
      const double wanted = std::clamp(allows, floor, static_cast<double>(base) * cfg.decrease_max);
      to = std::max(cfg.min_limit, static_cast<std::size_t>(std::floor(wanted)));
      why = (building && !over_target(c, cfg)
                 ? fmt::format("a queue building: {} in flight take over twice the {} ms target "
                               "to answer at {:.0f}/s: ",
                               c.in_flight, cfg.target.count(), rate)
                 : fmt::format("over the {} ms target: ", cfg.target.count())) +
            describe(c, cfg.percentile) +
            fmt::format("; {:.0f} answered/s x {} ms x {:g} allows {:.0f}", rate,
                        cfg.target.count(), cut_share_of_target, allows);
      if (to < limit) {
        state.settle_until_ms[i] = s.now_ms + cfg.target.count();
        state.cut_at[i] = base;
      }
    } else if (under && binding && !settling) {
      std::size_t want =
          std::max(limit + 1,
                   static_cast<std::size_t>(std::ceil(static_cast<double>(limit) * cfg.increase)));
      const std::size_t cut_at = state.cut_at[i];
      if (cut_at > 0 && limit + 1 < cut_at) {
        want = std::min(want, cut_at - 1);  // quickly back to just under the last trouble
      } else if (cut_at > 0) {
        want = limit + std::max<std::size_t>(
                           1, static_cast<std::size_t>(static_cast<double>(limit) * careful_step));
        if (static_cast<double>(want) >= static_cast<double>(cut_at) * cut_forgotten_at)
          state.cut_at[i] = 0;  // well past it: the load or the server changed
      }
      to = std::min(cfg.max_limit, want);
      why = fmt::format("under the {} ms target and held back by the limit: ", cfg.target.count()) +
            describe(c, cfg.percentile);
    } else if (limit != c.limit) {
      why = fmt::format("into the bounds [{}, {}]", cfg.min_limit, cfg.max_limit);
    }
    if (to == c.limit) continue;
    out.push_back({cls, c.limit, to, std::move(why)});
  }
  return out;
}

std::optional<backlog_decision> decide_backlog(const admission_sample& s, admission_state& state,
                                               const admission_settings& cfg) {
  // A second without pressure before the queue grows back: one calm window is not the end.
  constexpr std::int64_t calm_ms = 1000;
  constexpr double smoothing = 0.5;  // weight of the newest window in the answered rate
  const admission_class_sample& r = s.classes[0];
  if (s.window_ms > 0) {
    const double rate = answered_per_s(r, s.window_ms);
    state.answered_per_s = state.answered_per_s == 0
                               ? rate
                               : smoothing * rate + (1 - smoothing) * state.answered_per_s;
  }
  const std::size_t current = s.backlog == 0 ? cfg.backlog_max : s.backlog;
  const bool pressed = cfg.enabled && (r.refused > 0 || s.accept_pauses > 0);
  std::size_t want = current;
  std::string why;
  if (!cfg.enabled || cfg.backlog_share <= 0) {
    state.calm_since_ms = -1;
    want = cfg.backlog_max;
    why = !cfg.enabled ? "admission control off" : "backlog_share is 0";
  } else if (pressed) {
    state.calm_since_ms = -1;
    const double allows =
        state.answered_per_s * static_cast<double>(cfg.target.count()) / 1000.0 * cfg.backlog_share;
    want =
        std::clamp(static_cast<std::size_t>(std::ceil(allows)), cfg.backlog_min, cfg.backlog_max);
    why = fmt::format(
        "load held back ({} refused, {} accept pauses): {:.0f} answered/s x {} ms x {:g}",
        r.refused, s.accept_pauses, state.answered_per_s, cfg.target.count(), cfg.backlog_share);
  } else {
    if (state.calm_since_ms < 0) state.calm_since_ms = s.now_ms;
    if (s.now_ms - state.calm_since_ms >= calm_ms) {
      want = cfg.backlog_max;
      why = fmt::format("no load held back for {} ms", s.now_ms - state.calm_since_ms);
    }
  }
  const std::size_t change = want > current ? want - current : current - want;
  // The first request always applies (the listener opened with backlog_max); after that only a
  // change of a quarter or more, or one to a bound.
  const bool bound = want != current && (want == cfg.backlog_min || want == cfg.backlog_max);
  if (s.backlog != 0 && change * 4 < current && !bound) return std::nullopt;
  if (s.backlog != 0 && want == current) return std::nullopt;
  if (s.backlog == 0 && want == cfg.backlog_max) return std::nullopt;  // as opened
  return backlog_decision{s.backlog, want, std::move(why)};
}

}  // namespace weir::controllers
