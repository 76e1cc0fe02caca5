#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weir::cache {

enum class policy { lru, lfu };

/// A thread-safe map from string keys to shared immutable values, bounded in bytes (each entry
/// is charged what the caller says it costs). Sharded by key hash; each shard has its own lock
/// and 1/shards of the budget. When a shard is over budget it evicts by policy:
///   lru: the least recently used entry (find or insert counts as a use);
///   lfu: the entry with the fewest uses (insert counts 1, each find +1); ties go to the least
///        recently used.
/// A value handed out by `find` stays valid after eviction (shared ownership).
///
/// Details:
/// - The shard of a key is std::hash<std::string_view>(key) & (shards() - 1); shards() is the
///   requested count clamped to [1, 65536] and rounded up to a power of two. Each shard's budget
///   is max_bytes / shards().
/// - Replacing a key is a use: lru moves it to most recent; lfu keeps its count and adds 1.
///   `insertions` counts every accepted insert, replacements included.
/// - An insert that is refused (charge over the shard budget, or a null value) still removes an
///   older value under that key, so `find` never returns what the caller meant to replace. That
///   removal is not counted as an eviction, and nothing else is evicted.
/// - Entries charged 0 are accepted and never force an eviction.
/// - snapshot() visits the shards one at a time, so under concurrent use it is not atomic.
/// - set_max_bytes() and set_policy() change the bound and the policy while the cache is in use
///   (SIGHUP), one shard at a time under its lock; each shard is always under exactly one policy.
template <class V>
class byte_cache {
 public:
  struct stats {
    std::uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0;
    std::size_t bytes = 0, entries = 0;
  };

  byte_cache(std::size_t max_bytes, policy p, std::size_t shards = 16)
      : max_bytes_(max_bytes),
        policy_(p),
        shard_count_(std::bit_ceil(std::clamp<std::size_t>(shards, 1, max_shards))),
        budget_(max_bytes / shard_count_),
        shards_(std::make_unique<shard[]>(shard_count_)) {
    for (std::size_t i = 0; i < shard_count_; ++i) shards_[i].replacement = p;
  }

  std::shared_ptr<const V> find(std::string_view key) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) {
      ++s.misses;
      return nullptr;
    }
    ++s.hits;
    touch(s, it->second);
    return it->second.value;
  }

  /// Inserts or replaces. Returns false (and caches nothing) when `charge` exceeds one shard's
  /// budget. Never allocates while holding a lock longer than the map insertion needs.
  bool insert(std::string_view key, std::shared_ptr<const V> value, std::size_t charge) {
    if (!value || charge > budget_.load(std::memory_order_relaxed)) {
      erase(key);
      return false;
    }
    shard& s = shard_for(key);
    std::string owned(key);  // allocate the key before taking the lock
    release_later released;  // declared before the lock, so it runs after the unlock
    std::lock_guard lock(s.mu);
    // Read again under the lock: set_max_bytes may have shrunk it since the check above.
    const std::size_t budget = budget_.load(std::memory_order_relaxed);
    if (charge > budget) {
      if (auto it = s.map.find(key); it != s.map.end()) {
        released.keep(std::move(it->second.value));
        remove(s, it->second);
      }
      return false;
    }
    if (s.replacement == policy::lfu && s.heap.size() == s.heap.capacity()) {
      // Grow before touching the map so a bad_alloc leaves the shard consistent.
      s.heap.reserve(std::max<std::size_t>(16, 2 * s.heap.capacity()));
    }
    auto [it, added] = s.map.try_emplace(std::move(owned));
    entry& e = it->second;
    if (added) {
      e.key = it->first;
      track(s, e);
    } else {
      released.keep(std::move(e.value));
      s.bytes -= e.charge;
      touch(s, e);
    }
    e.value = std::move(value);
    e.charge = charge;
    s.bytes += charge;
    ++s.insertions;
    while (s.bytes > budget) {
      entry* v = victim(s, &e);
      if (v == nullptr) break;  // unreachable: e alone fits the budget
      released.keep(std::move(v->value));
      remove(s, *v);
      ++s.evictions;
    }
    return true;
  }

  void erase(std::string_view key) {
    shard& s = shard_for(key);
    std::shared_ptr<const V> doomed;  // dropped after the unlock
    std::lock_guard lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return;
    doomed = std::move(it->second.value);
    remove(s, it->second);
  }

  stats snapshot() const {
    stats out;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      out.hits += s.hits;
      out.misses += s.misses;
      out.insertions += s.insertions;
      out.evictions += s.evictions;
      out.bytes += s.bytes;
      out.entries += s.map.size();
    }
    return out;
  }

  /// Changes the bound while the cache is in use: each shard's budget becomes
  /// max_bytes / shards(), and a shard over it evicts by its policy until it fits (values are
  /// released off the lock, a few at a time). Once this returns, every shard is within the new
  /// budget. Returns the entries evicted (counted in `evictions` too).
  std::size_t set_max_bytes(std::size_t max_bytes) {
    max_bytes_.store(max_bytes, std::memory_order_relaxed);
    const std::size_t budget = max_bytes / shard_count_;
    budget_.store(budget, std::memory_order_relaxed);
    std::size_t evicted = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shard& s = shards_[i];
      for (bool done = false; !done;) {
        release_later released;
        std::lock_guard lock(s.mu);
        for (std::size_t n = 0; n < release_later::size && s.bytes > budget; ++n) {
          entry* v = victim(s, nullptr);
          released.keep(std::move(v->value));
          remove(s, *v);
          ++s.evictions;
          ++evicted;
        }
        done = s.bytes <= budget;
      }
    }
    return evicted;
  }

  /// Switches the replacement policy while the cache is in use, shard by shard, keeping every
  /// entry: to lfu, each entry starts at one use, ties ordered by recency (so the next victim is
  /// the least recently used); to lru, entries are ordered by their last use. Nothing is
  /// evicted. May throw std::bad_alloc (switching to lfu), leaving a shard under its old policy.
  void set_policy(policy p) {
    policy_.store(p, std::memory_order_relaxed);
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      if (s.replacement == p) continue;
      if (p == policy::lfu) {
        s.heap.clear();
        s.heap.reserve(s.map.size());
        // Least recent first: ascending (1, last_use) in array order is already a min-heap.
        for (link* l = s.lru.prev; l != &s.lru; l = l->prev) {
          auto* e = static_cast<entry*>(l);
          e->uses = 1;
          e->last_use = ++s.clock;
          e->heap_pos = s.heap.size();
          s.heap.push_back(e);
        }
        s.lru.prev = s.lru.next = &s.lru;  // the entries' links are dead until the next switch
      } else {
        std::sort(s.heap.begin(), s.heap.end(),
                  [](const entry* a, const entry* b) { return a->last_use < b->last_use; });
        for (entry* e : s.heap) push_front(s, *e);  // the last used ends up most recent
        s.heap.clear();
      }
      s.replacement = p;
    }
  }

  std::size_t max_bytes() const { return max_bytes_.load(std::memory_order_relaxed); }
  policy replacement() const { return policy_.load(std::memory_order_relaxed); }
  std::size_t shards() const { return shard_count_; }

 private:
  static constexpr std::size_t max_shards = std::size_t{1} << 16;

  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const noexcept {
      return std::hash<std::string_view>{}(k);
    }
  };

  // Intrusive recency links: a hit relinks two nodes and never allocates.
  struct link {
    link* prev = this;
    link* next = this;
    link() = default;
    link(const link&) = delete;
    link& operator=(const link&) = delete;
  };

  struct entry : link {
    std::shared_ptr<const V> value;
    std::size_t charge = 0;
    std::string_view key;  // views the map's own key; map nodes never move
    std::uint64_t uses = 0, last_use = 0;
    std::size_t heap_pos = 0;
  };

  using map_type = std::unordered_map<std::string, entry, key_hash, std::equal_to<>>;

  // Aligned so that two shards' locks never share a cache line.
  struct alignas(64) shard {
    std::mutex mu;
    map_type map;
    link lru;                  // lru: lru.next is the most recent entry
    std::vector<entry*> heap;  // lfu: min-heap on (uses, last_use)
    std::uint64_t clock = 0;   // lfu: last_use stamps
    policy replacement = policy::lru;
    std::size_t bytes = 0;
    std::uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0;
  };

  // Destroying a value may free a large buffer; holding the values until the shard lock is
  // released keeps that off the lock. When full, `keep` leaves the value where it is, and it
  // is then destroyed under the lock.
  class release_later {
   public:
    static constexpr std::size_t size = 8;
    void keep(std::shared_ptr<const V>&& v) {
      if (n_ < held_.size()) held_[n_++] = std::move(v);
    }

   private:
    std::array<std::shared_ptr<const V>, size> held_;
    std::size_t n_ = 0;
  };

  shard& shard_for(std::string_view key) const {
    return shards_[key_hash{}(key) & (shard_count_ - 1)];
  }

  static void unlink(link& l) {
    l.prev->next = l.next;
    l.next->prev = l.prev;
  }

  static void push_front(shard& s, link& l) {
    l.prev = &s.lru;
    l.next = s.lru.next;
    s.lru.next->prev = &l;
    s.lru.next = &l;
  }

  static bool before(const entry* a, const entry* b) {
    return a->uses != b->uses ? a->uses < b->uses : a->last_use < b->last_use;
  }

  static void put(std::vector<entry*>& h, std::size_t i, entry* e) {
    h[i] = e;
    e->heap_pos = i;
  }

  static void sift_up(std::vector<entry*>& h, std::size_t i) {
    entry* e = h[i];
    while (i > 0 && before(e, h[(i - 1) / 2])) {
      put(h, i, h[(i - 1) / 2]);
      i = (i - 1) / 2;
    }
    put(h, i, e);
  }

  static void sift_down(std::vector<entry*>& h, std::size_t i) {
    entry* e = h[i];
    for (;;) {
      std::size_t c = 2 * i + 1;
      if (c >= h.size()) break;
      if (c + 1 < h.size() && before(h[c + 1], h[c])) ++c;
      if (!before(h[c], e)) break;
      put(h, i, h[c]);
      i = c;
    }
    put(h, i, e);
  }

  // A use only raises an entry's (uses, last_use), so it can only move down the heap.
  void touch(shard& s, entry& e) {
    if (s.replacement == policy::lru) {
      unlink(e);
      push_front(s, e);
    } else {
      ++e.uses;
      e.last_use = ++s.clock;
      sift_down(s.heap, e.heap_pos);
    }
  }

  void track(shard& s, entry& e) {
    if (s.replacement == policy::lru) {
      push_front(s, e);
    } else {
      e.uses = 1;
      e.last_use = ++s.clock;
      e.heap_pos = s.heap.size();
      s.heap.push_back(&e);  // capacity was reserved by the caller
      sift_up(s.heap, e.heap_pos);
    }
  }

  // Removes e from the recency structure, the byte count and the map (e is destroyed).
  void remove(shard& s, entry& e) {
    if (s.replacement == policy::lru) {
      unlink(e);
    } else {
      std::vector<entry*>& h = s.heap;
      std::size_t i = e.heap_pos;
      entry* last = h.back();
      h.pop_back();
      if (i < h.size()) {
        put(h, i, last);
        if (i > 0 && before(last, h[(i - 1) / 2])) {
          sift_up(h, i);
        } else {
          sift_down(h, i);
        }
      }
    }
    s.bytes -= e.charge;
    s.map.erase(s.map.find(e.key));
  }

  // The entry to evict next, never `keep`; null when `keep` is the only entry.
  entry* victim(shard& s, const entry* keep) const {
    if (s.replacement == policy::lru) {
      link* l = s.lru.prev;
      if (l == keep) l = l->prev;
      return l == &s.lru ? nullptr : static_cast<entry*>(l);
    }
    const std::vector<entry*>& h = s.heap;
    if (h.empty()) return nullptr;
    if (h[0] != keep) return h[0];
    // The runner-up of a binary heap is one of the root's children.
    if (h.size() == 1) return nullptr;
    if (h.size() == 2 || before(h[1], h[2])) return h[1];
    return h[2];
  }

  std::atomic<std::size_t> max_bytes_;
  std::atomic<policy> policy_;  // what set_policy asked for last; each shard keeps its own
  std::size_t shard_count_;
  std::atomic<std::size_t> budget_;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace weir::cache
