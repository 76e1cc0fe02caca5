#include "stages/connection.hpp"

#include "stages/response.hpp"

namespace weir {

namespace {

// The input buffer an exchange starts with; one grown past it for a large head is not kept.
constexpr std::uint32_t exchange_buffer = 4096;
// Spares per thread: the requests a thread has in hand at once, in the steady state. More are
// freed, so memory follows the requests in flight, not the connections that were ever busy.
constexpr std::size_t spares_per_thread = 32;

struct spare_exchanges {
  exchange* items[spares_per_thread];
  std::size_t count = 0;
  ~spare_exchanges() {
    while (count > 0) delete items[--count];
  }
};
thread_local spare_exchanges spares;

}  // namespace

exchange* exchange::take() {
  if (spares.count > 0) return spares.items[--spares.count];
  auto* x = new exchange;
  x->in_cap = exchange_buffer;
  x->in = std::make_unique<char[]>(exchange_buffer);
  return x;
}

void exchange::give(exchange* x) {
  if (spares.count == spares_per_thread || x->in_cap != exchange_buffer) {
    delete x;
    return;
  }
  x->req = {};
  x->path.clear();
  x->out_head.clear();
  x->entry.reset();
  spares.items[spares.count++] = x;
}

const exchange& exchange::none() {
  static const exchange empty;
  return empty;
}

void connection::reset() {
  fd = -1;
  drop_exchange();
  in_start = in_end = 0;
  discard = 0;
  request_start_ms = request_start_ns = 0;
  idle_since_ms = linger_until_ms = 0;
  in_request = false;
  req_method = 3;
  head_len = 0;
  keep_alive = close_after = lingering = false;
  out_head_sent = 0;
  body = nullptr;
  body_left = 0;
  file_fd = -1;
  file_off = 0;
  file_left = 0;
  status = 0;
  bytes_sent = 0;
  requests = 0;
  first_bytes_realtime_ns = 0;
}

bool connection::park(conn_state parked, std::uint8_t wanted, std::int64_t deadline) {
  deadline_ms.store(deadline, std::memory_order_relaxed);
  conn_word w = load_word(std::memory_order_relaxed);
  for (;;) {
    if ((w.ready() & wanted) != 0) return true;
    // Release: whoever takes it next (the event loop, on the same word) sees all we wrote.
    // The compare-exchange fails only when the loop recorded readiness meanwhile: look again.
    if (word.compare_exchange_weak(w.bits, w.with_state(parked).next_park().bits,
                                   std::memory_order_acq_rel, std::memory_order_relaxed))
      return false;
  }
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
  // Same generation as while it was free, no readiness: events still queued for the previous
  // connection carry an older generation and are dropped by deliver().
  c->word.store(conn_word::make(c->load_word().generation(), conn_state::active).bits,
                std::memory_order_relaxed);
  return c;
}

void connection_table::release(connection& c) {
  c.reset();
  // A new generation: from here every event, scan or handle for the old connection misses.
  c.word.store(conn_word::make(c.load_word().generation() + 1, conn_state::free).bits,
               std::memory_order_release);
  std::lock_guard lock(mutex_);
  free_.push_back(c.slot);
  in_use_.fetch_sub(1, std::memory_order_relaxed);
}

event_outcome connection_table::deliver(std::uint64_t handle, std::uint8_t bits) {
  const auto slot = static_cast<std::uint32_t>(handle);
  const auto generation = static_cast<std::uint32_t>(handle >> 32);
  if (slot >= allocated()) return {};
  connection& c = *slots_[slot];
  conn_word w = c.load_word();
  for (;;) {
    const conn_state st = w.state();
    if (w.generation() != generation || st == conn_state::free) return {};  // closed since
    const bool wanted = (st == conn_state::parked_read && (bits & wakes_reader)) ||
                        (st == conn_state::parked_write && (bits & wakes_writer));
    conn_word next = w.with_ready(bits);
    if (wanted) next = next.with_state(conn_state::active);
    if (next == w) return {};  // already recorded, and nobody waits for it
    if (c.word.compare_exchange_weak(w.bits, next.bits, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      if (!wanted) return {};  // its owner will see the bits, or it waits for the other direction
      return {&c, st};
    }
  }
}

}  // namespace weir
