#include "runtime/admission.hpp"

namespace weir::runtime {

admission_gate::admission_gate() = default;

admission_snapshot admission_gate::fold(bool restart_peaks) const {
  admission_snapshot out;
  out.target_ns = target_ns();
  out.backlog = backlog();
  counters_.for_each([&](const block& b) {
    out.accept_pauses += b.accept_pauses.get();
    for (std::size_t i = 0; i < admission_classes; ++i) {
      admission_class_snapshot& o = out.classes[i];
      o.admitted += b.c[i].admitted.get();
      o.refused += b.c[i].refused.get();
      o.completed += b.c[i].completed.get() + b.stale[i].completed.get();
      o.over_target += b.c[i].over_target.get() + b.stale[i].over_target.get();
      b.c[i].latency.fold_into(o.latency);
      b.stale[i].latency.fold_into(o.latency);
      o.stale_completed += b.stale[i].completed.get();
      o.stale_over_target += b.stale[i].over_target.get();
      b.stale[i].latency.fold_into(o.stale_latency);
    }
  });
  for (std::size_t i = 0; i < admission_classes; ++i) {
    slot& s = slots_[i];
    admission_class_snapshot& o = out.classes[i];
    o.limit = s.limit.load(std::memory_order_relaxed);
    o.in_flight = s.in_flight.load(std::memory_order_relaxed);
    // The peak since the last take, and a new window starting from what is in flight now.
    o.peak_in_flight = restart_peaks ? s.peak.exchange(o.in_flight, std::memory_order_relaxed)
                                     : s.peak.load(std::memory_order_relaxed);
    if (o.peak_in_flight < o.in_flight) o.peak_in_flight = o.in_flight;
  }
  return out;
}

}  // namespace weir::runtime
