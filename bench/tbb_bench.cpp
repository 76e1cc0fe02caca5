// What two oneTBB pieces would buy on weir's request path, each against what it would replace:
//  - per-thread counter blocks allocated with tbb::cache_aligned_allocator instead of
//    std::allocator (operator new: 16-byte aligned, so two threads' blocks may share a line at
//    their edges);
//  - the cache index's hit as tbb::concurrent_hash_map (a per-element reader lock, no shard
//    mutex; recency would have to become approximate) against byte_cache::find (the shard mutex,
//    an exact LRU relink), both returning the shared_ptr a cache_lookup hit takes.
// Run with --benchmark_min_time=1 and compare the per-item times of the pairs; the threads
// variants are what matters (a lone thread never contends).
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <tbb/cache_aligned_allocator.h>
#include <tbb/concurrent_hash_map.h>

#include "runtime/stats.hpp"
#include "stages/cache/byte_cache.hpp"

namespace {

using weir::runtime::local_counter;
using weir::runtime::per_thread;

// 37 counters (296 bytes): not a multiple of a cache line, so with std::allocator a block's
// last counter and the next allocation's first bytes can share a line, as weir's do.
struct block {
  std::array<local_counter, 37> c{};
};

// Each thread writes the first and the last counter of its own block, as a request writes a
// response counter at the front of server_stats_block and the request histogram further on.
template <class Alloc>
void per_thread_edges(benchmark::State& state) {
  static per_thread<block, Alloc>* p = nullptr;
  if (state.thread_index() == 0) p = new per_thread<block, Alloc>();
  // Google Benchmark starts the threads' loops together, after every thread's setup.
  for (auto _ : state) {
    block& b = p->local();
    b.c.front().add();
    b.c.back().add();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // The other threads have left their loops; their claims stay valid (the pool outlives the
    // instance through the claim lists).
    delete p;
    p = nullptr;
  }
}
BENCHMARK(per_thread_edges<std::allocator<block>>)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(per_thread_edges<tbb::cache_aligned_allocator<block>>)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// Blocks allocated back to back by one thread (the worst layout std::allocator can give):
// the two threads then write lines that may be shared.
template <class Alloc>
void adjacent_blocks(benchmark::State& state) {
  static std::vector<block*>* blocks = nullptr;
  static Alloc alloc;
  if (state.thread_index() == 0) {
    blocks = new std::vector<block*>();
    for (int i = 0; i < state.threads(); ++i) {
      block* b = std::allocator_traits<Alloc>::allocate(alloc, 1);
      std::allocator_traits<Alloc>::construct(alloc, b);
      blocks->push_back(b);
    }
  }
  for (auto _ : state) {
    block& b = *(*blocks)[static_cast<std::size_t>(state.thread_index())];
    b.c.front().add();
    b.c.back().add();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    for (block* b : *blocks) {
      std::allocator_traits<Alloc>::destroy(alloc, b);
      std::allocator_traits<Alloc>::deallocate(alloc, b, 1);
    }
    delete blocks;
    blocks = nullptr;
  }
}
BENCHMARK(adjacent_blocks<std::allocator<block>>)->Threads(2)->UseRealTime();
BENCHMARK(adjacent_blocks<tbb::cache_aligned_allocator<block>>)->Threads(2)->UseRealTime();

// The cache index. 200 paths as in the bench docroot; `hot` is how many of them the lookups
// cycle through (1: c0's single file, every thread on one key; 200: the mix's spread).
std::vector<std::string> paths() {
  std::vector<std::string> out;
  for (int d = 0; d < 10; ++d)
    for (int c = 0; c < 4; ++c)
      for (int f = 0; f < 5; ++f)
        out.push_back("/dir" + std::to_string(10000 + d) + "/class" + std::to_string(c) + "_" +
                      std::to_string(f));
  return out;
}

void byte_cache_find(benchmark::State& state) {
  using cache = weir::cache::byte_cache<std::string>;
  static cache* c = nullptr;
  static const std::vector<std::string> keys = paths();
  if (state.thread_index() == 0) {
    c = new cache(64 << 20, weir::cache::policy::lru);
    for (const auto& k : keys) c->insert(k, std::make_shared<const std::string>(500, 'x'), 500);
  }
  const auto hot = static_cast<std::size_t>(state.range(0));
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7;
  for (auto _ : state) {
    std::shared_ptr<const std::string> v = c->find(keys[i++ % hot]);
    benchmark::DoNotOptimize(v.get());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete c;
    c = nullptr;
  }
}
BENCHMARK(byte_cache_find)->Arg(1)->Arg(200)->Threads(1)->Threads(2)->UseRealTime();

struct string_hash {
  static std::size_t hash(const std::string& s) { return std::hash<std::string>{}(s); }
  static bool equal(const std::string& a, const std::string& b) { return a == b; }
};

void tbb_hash_map_find(benchmark::State& state) {
  using map =
      tbb::concurrent_hash_map<std::string, std::shared_ptr<const std::string>, string_hash>;
  static map* m = nullptr;
  static const std::vector<std::string> keys = paths();
  if (state.thread_index() == 0) {
    m = new map();
    for (const auto& k : keys) m->emplace(k, std::make_shared<const std::string>(500, 'x'));
  }
  const auto hot = static_cast<std::size_t>(state.range(0));
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7;
  for (auto _ : state) {
    std::shared_ptr<const std::string> v;
    {
      map::const_accessor a;
      // concurrent_hash_map's find takes the key type: a string_view lookup would allocate,
      // so the keys are prebuilt strings here (weir's path is a string already).
      if (m->find(a, keys[i++ % hot])) v = a->second;
    }
    benchmark::DoNotOptimize(v.get());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete m;
    m = nullptr;
  }
}
BENCHMARK(tbb_hash_map_find)->Arg(1)->Arg(200)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
