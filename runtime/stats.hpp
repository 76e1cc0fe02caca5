#pragma once
// Recording without contention: each thread writes its own block of counters (single writer,
// relaxed atomics, so a write is a plain load and store), and a reader folds every block into a
// snapshot when it asks (a Prometheus scrape, a controller's sample). Blocks of threads that
// have exited go back to a free list with their counts and are reused, so the number of blocks
// is bounded by the most threads ever alive at once, not by how many were ever started.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <tbb/cache_aligned_allocator.h>

namespace weir::runtime {

/// A counter written by one thread and read by any: increments are a relaxed load and store (no
/// locked instruction), reads are relaxed loads.
class local_counter {
 public:
  void add(std::uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// Upper bounds (inclusive, nanoseconds) of the latency histograms' buckets: 1-2.5-5 steps from
/// 10 us to 10 s. A last, implicit bucket holds everything larger (+Inf).
inline constexpr std::array<std::uint64_t, 19> latency_bounds_ns = {
    10'000,        25'000,        50'000,        100'000,       250'000,
    500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
    25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr std::size_t latency_buckets = latency_bounds_ns.size() + 1;

/// The index of the bucket that holds `ns`.
inline std::size_t latency_bucket(std::uint64_t ns) {
  std::size_t i = 0;
  while (i < latency_bounds_ns.size() && ns > latency_bounds_ns[i]) ++i;
  return i;
}

/// A folded histogram: per-bucket counts (not cumulative; the last is +Inf) and the sum.
struct histogram_snapshot {
  std::array<std::uint64_t, latency_buckets> counts{};
  std::uint64_t sum_ns = 0;

  std::uint64_t count() const {
    std::uint64_t n = 0;
    for (std::uint64_t c : counts) n += c;
    return n;
  }
  histogram_snapshot& operator+=(const histogram_snapshot& o) {
    for (std::size_t i = 0; i < latency_buckets; ++i) counts[i] += o.counts[i];
    sum_ns += o.sum_ns;
    return *this;
  }
  /// What was recorded since `earlier` (a snapshot of the same histogram taken before).
  histogram_snapshot since(const histogram_snapshot& earlier) const {
    histogram_snapshot d;
    for (std::size_t i = 0; i < latency_buckets; ++i)
      d.counts[i] = counts[i] >= earlier.counts[i] ? counts[i] - earlier.counts[i] : 0;
    d.sum_ns = sum_ns >= earlier.sum_ns ? sum_ns - earlier.sum_ns : 0;
    return d;
  }
  /// The q-quantile (0..1) in nanoseconds, interpolated linearly inside its bucket as Prometheus'
  /// histogram_quantile does (the +Inf bucket reports the last bound); 0 when empty.
  std::uint64_t quantile_ns(double q) const {
    const std::uint64_t n = count();
    if (n == 0) return 0;
    const double rank = q * static_cast<double>(n);
    std::uint64_t below = 0;
    for (std::size_t i = 0; i < latency_buckets; ++i) {
      if (counts[i] == 0 || static_cast<double>(below + counts[i]) < rank) {
        below += counts[i];
        continue;
      }
      if (i == latency_bounds_ns.size()) return latency_bounds_ns.back();
      const double lo = i == 0 ? 0.0 : static_cast<double>(latency_bounds_ns[i - 1]);
      const double hi = static_cast<double>(latency_bounds_ns[i]);
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
      return static_cast<std::uint64_t>(lo + (hi - lo) * within);
    }
    return latency_bounds_ns.back();
  }
};

/// One thread's latency histogram (single writer).
class local_histogram {
 public:
  void observe(std::uint64_t ns) {
    counts_[latency_bucket(ns)].add();
    sum_ns_.add(ns);
  }
  void fold_into(histogram_snapshot& out) const {
    for (std::size_t i = 0; i < latency_buckets; ++i) out.counts[i] += counts_[i].get();
    out.sum_ns += sum_ns_.get();
  }

 private:
  std::array<local_counter, latency_buckets> counts_{};
  local_counter sum_ns_;
};

/// Why a stage turned an event away.
enum class reject_reason : std::uint8_t {
  queue_full,  // the stage's queue was full (answered 503 by the overload handler)
  admission,   // an admission controller refused it (the controller issue)
  timeout,     // it waited too long (header read, send stall)
  count
};
inline constexpr const char* reject_reason_names[] = {"queue_full", "admission", "timeout"};
inline constexpr std::size_t reject_reasons = static_cast<std::size_t>(reject_reason::count);

/// A stage as a scrape or a controller sees it.
struct stage_snapshot {
  std::string name;
  std::string group;                                // the group it runs in now
  std::size_t queue_depth = 0, queue_capacity = 0;  // of that group's queue
  std::size_t threads = 0, busy_threads = 0;        // of that group's pool
  std::uint64_t processed = 0;
  std::array<std::uint64_t, reject_reasons> rejected{};
  histogram_snapshot queue_wait;  // dispatch to the start of the stage (hops only, not fused calls)
  histogram_snapshot service;     // time inside the stage's handler
};

/// A group as a scrape or a controller sees it.
struct group_snapshot {
  std::string name;
  std::size_t queue_depth = 0, queue_capacity = 0;
  std::size_t threads = 0, busy_threads = 0;
  std::uint64_t wakeups = 0;  // a parked worker was woken
};

/// One `Block` per recording thread, reused after the thread exits; see the top of this file.
/// `local()` is wait-free after a thread's first call on an instance (a thread-local cache
/// lookup); the first call takes a mutex. `for_each` visits every block under that mutex.
/// Blocks come from oneTBB's cache_aligned_allocator: each starts on a line of its own and no
/// other allocation shares its lines, so two threads' blocks never falsely share. Blocks from
/// operator new (16-byte aligned) did when they were allocated back to back: two threads
/// writing the first and last counters of neighbouring 296-byte blocks took 3.6-4.4 ns per
/// write pair against 0.9-1.0 ns (bench/tbb_bench, adjacent_blocks).
template <class Block, class Alloc = tbb::cache_aligned_allocator<Block>>
class per_thread {
 public:
  per_thread() : pool_(std::make_shared<pool>()) {}
  per_thread(const per_thread&) = delete;
  per_thread& operator=(const per_thread&) = delete;

  Block& local() {
    cache_entry& e = cache()[pool_->id % cache_ways];
    if (e.id == pool_->id) return *static_cast<Block*>(e.block);
    return claim(e);
  }

  template <class F>
  void for_each(F&& f) const {
    std::lock_guard lock(pool_->mu);
    for (const auto& b : pool_->blocks) f(static_cast<const Block&>(*b));
  }

  /// Blocks ever allocated (live threads plus free ones); for tests.
  std::size_t blocks() const {
    std::lock_guard lock(pool_->mu);
    return pool_->blocks.size();
  }

 private:
  using alloc_traits = std::allocator_traits<Alloc>;

  struct pool {
    pool() : id(next_id().fetch_add(1, std::memory_order_relaxed)) {}
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;
    ~pool() {
      for (Block* b : blocks) {
        alloc_traits::destroy(alloc, b);
        alloc_traits::deallocate(alloc, b, 1);
      }
    }
    // A new block, value-initialised (its counters at zero), owned by `blocks`.
    Block* make() {
      blocks.reserve(blocks.size() + 1);  // so the push below cannot throw
      Block* b = alloc_traits::allocate(alloc, 1);
      try {
        alloc_traits::construct(alloc, b);
      } catch (...) {
        alloc_traits::deallocate(alloc, b, 1);
        throw;
      }
      blocks.push_back(b);
      return b;
    }
    const std::uint64_t id;  // never reused, so a stale cache entry cannot match a new instance
    mutable std::mutex mu;
    Alloc alloc;
    std::vector<Block*> blocks;
    std::vector<Block*> free;
  };

  // A thread's claims, returned to their pools when the thread exits. Holding the pool keeps it
  // alive past the per_thread instance if the thread outlives it.
  struct claim_list {
    std::vector<std::pair<std::shared_ptr<pool>, Block*>> held;
    ~claim_list() {
      for (auto& [p, b] : held) {
        std::lock_guard lock(p->mu);
        p->free.push_back(b);
      }
    }
  };

  struct cache_entry {
    std::uint64_t id = 0;  // ids start at 1
    void* block = nullptr;
  };
  static constexpr std::size_t cache_ways = 8;

  static std::atomic<std::uint64_t>& next_id() {
    static std::atomic<std::uint64_t> id{1};
    return id;
  }
  static std::array<cache_entry, cache_ways>& cache() {
    thread_local std::array<cache_entry, cache_ways> c;
    return c;
  }

  Block& claim(cache_entry& e) {
    thread_local claim_list claims;
    Block* b = nullptr;
    for (auto& [p, held] : claims.held) {  // claimed before, evicted from the cache since
      if (p == pool_) b = held;
    }
    if (b == nullptr) {
      // Drop claims on instances that are gone (only this list still holds their pool).
      std::erase_if(claims.held, [](const auto& h) { return h.first.use_count() == 1; });
      std::lock_guard lock(pool_->mu);
      if (!pool_->free.empty()) {
        b = pool_->free.back();
        pool_->free.pop_back();
      } else {
        b = pool_->make();
      }
      claims.held.emplace_back(pool_, b);
    }
    e.id = pool_->id;
    e.block = b;
    return *b;
  }

  std::shared_ptr<pool> pool_;
};

}  // namespace weir::runtime
