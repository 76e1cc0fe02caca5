#pragma once

#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "stages/stats.hpp"

namespace weir::metrics {

/// The weir_* families for one scrape, built from `s` alone (no state, no clock, no I/O). Every
/// series exists whatever the values, zeros included, so a dashboard sees it from the first
/// scrape. Labels of a series are sorted by name, as prometheus-cpp's own families print them.
/// Latency histograms are exposed in seconds with cumulative buckets (the last one +Inf).
std::vector<prometheus::MetricFamily> collect(const server_snapshot& s, std::string_view version);

}  // namespace weir::metrics
