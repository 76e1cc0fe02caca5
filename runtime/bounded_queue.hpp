#pragma once

#include <atomic>
#include <cstddef>
#include <type_traits>

#include <boost/lockfree/queue.hpp>

namespace weir::runtime {

/// A bounded multi-producer multi-consumer queue of pointers. `try_push` never allocates and
/// fails when the queue holds `capacity()` items: a full queue is a signal to the caller
/// (backpressure or shedding), never a reason to grow.
template <class T>
class bounded_queue {
 public:
  explicit bounded_queue(std::size_t capacity) : queue_(capacity), capacity_(capacity) {}

  bounded_queue(const bounded_queue&) = delete;
  bounded_queue& operator=(const bounded_queue&) = delete;

  /// False when full: all `capacity()` slots were taken (pushed, not yet popped) at the moment of
  /// the check. A slot is reserved (depth raised) only while one is free, so depth() never exceeds
  /// capacity and a refused push leaves no trace that could refuse another one.
  bool try_push(T* item) {
    std::ptrdiff_t depth = depth_.load(std::memory_order_relaxed);
    do {
      if (depth >= capacity_) return false;
    } while (!depth_.compare_exchange_weak(depth, depth + 1, std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
    // The node pool holds `capacity` nodes; the reservation above guarantees one is free unless
    // a concurrent pop has not yet returned its node, so retry rather than fail.
    while (!queue_.bounded_push(item)) {
    }
    return true;
  }

  T* try_pop() {
    T* item = nullptr;
    if (!queue_.pop(item)) return nullptr;
    depth_.fetch_sub(1, std::memory_order_seq_cst);
    return item;
  }

  /// Items pushed and not yet popped, at most capacity() (exact when quiescent; under concurrency
  /// a push counts from its reservation, a pop until just after it took its item).
  std::size_t depth() const {
    return static_cast<std::size_t>(depth_.load(std::memory_order_seq_cst));
  }
  std::size_t capacity() const { return capacity_; }

 private:
  static_assert(std::is_trivially_copyable_v<T*>);
  boost::lockfree::queue<T*> queue_;
  std::atomic<std::ptrdiff_t> depth_{0};
  const std::ptrdiff_t capacity_;
};

}  // namespace weir::runtime
