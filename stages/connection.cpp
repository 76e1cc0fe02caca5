#include "stages/connection.hpp"

#include "stages/response.hpp"

namespace weir {

void connection::reset() {
  fd = -1;
  in.reset();
  in_cap = in_start = in_end = 0;
  discard = 0;
  request_start_ms = request_start_ns = 0;
  in_request = false;
  req_method = 3;
  req = {};
  head_len = 0;
  path.clear();
  keep_alive = close_after = lingering = false;
  entry.reset();
  out_head.clear();
  out_head_sent = 0;
  body = nullptr;
  body_left = 0;
  file_fd = -1;
  file_off = 0;
  file_left = 0;
  status = 0;
  bytes_sent = 0;
  requests = 0;
  timed_out.store(false, std::memory_order_relaxed);
  ready.store(0, std::memory_order_relaxed);
}

connection_table::connection_table(std::size_t capacity)
    : capacity_(capacity), slots_(std::make_unique<std::unique_ptr<connection>[]>(capacity)) {
  free_.reserve(capacity);
  for (std::size_t i = capacity; i > 0; --i) free_.push_back(static_cast<std::uint32_t>(i - 1));
}

connection* connection_table::acquire() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) return nullptr;
  const std::uint32_t slot = free_.back();
  free_.pop_back();
  if (!slots_[slot]) {
    // LIFO reuse means a never-used slot is always the next one: [0, allocated) stays dense.
    slots_[slot] = std::make_unique<connection>();
    slots_[slot]->slot = slot;
    allocated_.store(slot + 1, std::memory_order_release);
  }
  connection* c = slots_[slot].get();
  in_use_.fetch_add(1, std::memory_order_relaxed);
  c->state.store(conn_state::active, std::memory_order_relaxed);
  return c;
}

void connection_table::release(connection& c) {
  c.reset();
  c.generation.fetch_add(1, std::memory_order_relaxed);
  c.state.store(conn_state::free, std::memory_order_release);
  std::lock_guard lock(mutex_);
  free_.push_back(c.slot);
  in_use_.fetch_sub(1, std::memory_order_relaxed);
}

connection* connection_table::find(std::uint64_t handle) {
  const auto slot = static_cast<std::uint32_t>(handle);
  if (slot >= allocated()) return nullptr;
  connection* c = slots_[slot].get();
  if (c->generation.load(std::memory_order_acquire) != static_cast<std::uint32_t>(handle >> 32))
    return nullptr;
  return c;
}

}  // namespace weir
