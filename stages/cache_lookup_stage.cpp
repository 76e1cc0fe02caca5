#include "stages/context.hpp"
#include "stages/stages.hpp"

namespace weir {

runtime::stage_index cache_lookup_stage::handle(runtime::task& t) {
  auto& c = static_cast<connection&>(t);
  exchange& x = c.ex();
  std::shared_ptr<const file_entry> e = ctx_.cache.find(x.path);
  if (!e) {
    // A miss takes a place in the disk's budget, or is refused: never the hits'.
    if (!ctx_.admit_to_disk(c)) return ctx_.refuse(c, shed_class::miss, shed_reason::limit);
    return stage_disk_io;
  }
  // Due for revalidation: the first request to notice takes it to disk_io to stat the file;
  // requests racing with it are served the entry as it is (at most one stat per interval).
  // The request's start is now enough for an interval of seconds, and costs no clock read.
  const std::int64_t now = c.request_start_ms != 0 ? c.request_start_ms : server_context::now_ms();
  std::int64_t checked = e->checked_ms.load(std::memory_order_relaxed);
  if (now - checked >= ctx_.live.cache_revalidate().count() &&
      e->checked_ms.compare_exchange_strong(checked, now, std::memory_order_relaxed)) {
    x.entry = std::move(e);
    // The disk at its limit: serve the entry as it is, checked again next interval.
    if (ctx_.admit_to_disk(c)) return stage_disk_io;
    prepare_file_response(c, *x.entry);
    return stage_send;
  }
  x.entry = std::move(e);
  prepare_file_response(c, *x.entry);
  return stage_send;
}

}  // namespace weir
