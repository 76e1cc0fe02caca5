#pragma once
// The admission controller's policy: a pure function of a sample, its own state and its
// settings. Each class (request: before the cache; miss: at the hop into disk_io) has a
// concurrency limit. A window whose admitted requests miss the latency target at the chosen
// percentile cuts the limit at once, multiplicatively, from what was actually in flight; a window
// well under target recovers it multiplicatively, but only while the limit is what holds the load
// back (refusals, or in flight near the limit): a limit that binds nothing never creeps up.
// Rejected requests never enter the latency sample (the gate records admitted ones only), and
// the policy never lowers a limit to probe (Envoy's minRTT probes shed on purpose).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controllers/settings.hpp"
#include "runtime/admission.hpp"

namespace weir::controllers {

/// One class over one window (differences of two gate snapshots, plus its instant values).
struct admission_class_sample {
  // Admitted requests answered in the window, under the limit in force (those admitted under
  // an earlier limit are in `answered` only: they say nothing of this one).
  std::uint64_t completed = 0;
  std::uint64_t over_target = 0;    // of them, slower than the target
  std::uint64_t answered = 0;       // every admitted request answered in the window
  std::uint64_t refused = 0;        // turned away by the limit in the window
  std::uint64_t percentile_ns = 0;  // the settings' percentile of their latency (bucketed)
  std::size_t limit = 0;            // in force during the window
  std::size_t peak_in_flight = 0;   // the most at once in the window
  std::size_t in_flight = 0;        // at its end
  std::int64_t window_ms = 0;       // this class's window (longer than the sample's when extended)
  /// The window is still short of answers and goes on (the sensor's call): hold, decide nothing.
  bool partial = false;
};

/// A class's window is extended while it has fewer than min_samples answers, up to this many
/// periods (a slow class, such as misses on a slow disk, still gets decisions).
inline constexpr std::int64_t max_window_periods = 10;

/// A cut sets the limit to what Little's law allows at the rate the class answered: that rate
/// (its capacity, since it is over target) x the target x this share, so that the mean wait is
/// this share of the target and its tail has room under it.
inline constexpr double cut_share_of_target = 0.75;

struct admission_sample {
  std::int64_t now_ms = 0;
  std::int64_t window_ms = 0;
  std::array<admission_class_sample, runtime::admission_classes> classes{};
  std::uint64_t accept_pauses = 0;  // in the window: accepting paused for want of room
  std::size_t backlog = 0;          // the listen queue length asked for so far (0: none)
};

struct admission_decision {
  runtime::admission_class cls = runtime::admission_class::request;
  std::size_t from = 0, to = 0;
  std::string why;
};

/// What the policy remembers between windows.
struct admission_state {
  /// After a cut, no other cut until this (ms): the requests admitted before it are still
  /// finishing, and their latency says nothing about the new limit. -1: none pending.
  std::array<std::int64_t, runtime::admission_classes> settle_until_ms{-1, -1};
  /// What was in flight when the last cut came (0: none yet, or left far behind): raises
  /// approach it quickly and pass it carefully.
  std::array<std::size_t, runtime::admission_classes> cut_at{0, 0};
  /// Requests answered per second (request class), smoothed over windows; 0: none seen yet.
  double answered_per_s = 0;
  /// Since when no window was pressed (refusals or accept pauses); -1: pressed now.
  std::int64_t calm_since_ms = -1;
};

struct backlog_decision {
  std::size_t from = 0, to = 0;  // from 0: the listener's own length (backlog_max)
  std::string why;
};

/// How many answers a window needs before its tail can be called under the target: at least
/// `min_samples`, and enough that the percentile is one of them (1 / (1 - percentile): 100 at
/// p99). Fewer can say "over" (14 of 24 over the target is clear), never "under" (0 of 24 says
/// nothing of the 99th percentile).
std::uint64_t raise_samples(const admission_settings& settings);

/// Whether a class's window holds what a decision needs (the sensor extends it otherwise, up
/// to max_window_periods): `min_samples` answers that are over the target, or `raise_samples`.
bool admission_window_done(const admission_class_sample& c, const admission_settings& settings);

/// The window between two snapshots of the gate (`before` taken `window_ms` earlier), with the
/// settings' percentile of the admitted latency.
admission_sample admission_window(const runtime::admission_snapshot& now,
                                  const runtime::admission_snapshot& before, std::int64_t now_ms,
                                  std::int64_t window_ms, double percentile);

/// The limits to set this window: one decision per class whose limit changes. Disabled, each
/// class goes back to `unlimited` (one decision each, if it was limited).
std::vector<admission_decision> decide_admission(const admission_sample& s, admission_state& state,
                                                 const admission_settings& settings);

/// The listen queue's length to ask for this window, or nothing when it stays. While the load
/// is held back (the request limit refused, or accepting paused) connections wait there unseen,
/// so it holds what `backlog_share` of the target allows at the rate requests are answered; a
/// second without pressure gives back `backlog_max`. Changes under a quarter are not made.
std::optional<backlog_decision> decide_backlog(const admission_sample& s, admission_state& state,
                                               const admission_settings& settings);

}  // namespace weir::controllers
