#include "stages/cache/byte_cache.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace weir::cache {
namespace {

using string_cache = byte_cache<std::string>;

std::shared_ptr<const std::string> val(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

bool has(string_cache& c, std::string_view key) {
  return c.find(key) != nullptr;
}

// The cached value, or "<miss>", so a wrong answer fails the test instead of crashing it.
std::string value_of(string_cache& c, std::string_view key) {
  auto v = c.find(key);
  return v ? *v : "<miss>";
}

// The keys present, out of `keys`. Probing with find counts as a use, so tests call this last.
std::vector<std::string> present(string_cache& c, const std::vector<std::string>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys)
    if (has(c, k)) out.push_back(k);
  return out;
}

// The shard index the cache documents; used to pick keys that share or avoid a shard.
std::size_t shard_of(std::string_view key, std::size_t shards) {
  return std::hash<std::string_view>{}(key) & (shards - 1);
}

TEST(ByteCache, AccessorsAndShardRounding) {
  string_cache c(1000, policy::lfu, 5);
  EXPECT_EQ(c.max_bytes(), 1000u);
  EXPECT_EQ(c.replacement(), policy::lfu);
  EXPECT_EQ(c.shards(), 8u);
  EXPECT_EQ(string_cache(10, policy::lru, 0).shards(), 1u);
  EXPECT_EQ(string_cache(10, policy::lru, 1).shards(), 1u);
  EXPECT_EQ(string_cache(10, policy::lru, 16).shards(), 16u);
  EXPECT_EQ(string_cache(10, policy::lru, 17).shards(), 32u);
  EXPECT_EQ(string_cache(10, policy::lru).shards(), 16u);
}

TEST(ByteCache, FindReturnsInsertedValue) {
  string_cache c(100, policy::lru, 1);
  EXPECT_EQ(c.find("a"), nullptr);
  ASSERT_TRUE(c.insert("a", val("alpha"), 5));
  auto v = c.find("a");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, "alpha");
  // A string_view that is not null-terminated and points into a larger buffer.
  std::string buf = "xaz";
  EXPECT_NE(c.find(std::string_view(buf).substr(1, 1)), nullptr);
}

TEST(ByteCacheLru, HitProtectsFromEviction) {
  string_cache c(2, policy::lru, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  ASSERT_TRUE(has(c, "A"));
  c.insert("C", val("c"), 1);
  EXPECT_EQ(present(c, {"A", "B", "C"}), (std::vector<std::string>{"A", "C"}));
}

TEST(ByteCacheLru, WithoutHitsEvictsOldestInsert) {
  string_cache c(2, policy::lru, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  c.insert("C", val("c"), 1);
  EXPECT_EQ(present(c, {"A", "B", "C"}), (std::vector<std::string>{"B", "C"}));
}

TEST(ByteCacheLru, ExactEvictionOrder) {
  string_cache c(3, policy::lru, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  c.insert("C", val("c"), 1);
  c.find("A");                 // recency, oldest first: B C A
  c.find("B");                 // C A B
  c.insert("D", val("d"), 1);  // evicts C -> A B D
  EXPECT_EQ(c.find("C"), nullptr);
  c.insert("E", val("e"), 1);  // evicts A -> B D E
  EXPECT_EQ(c.find("A"), nullptr);
  c.find("B");                 // D E B
  c.insert("F", val("f"), 1);  // evicts D -> E B F
  EXPECT_EQ(c.find("D"), nullptr);
  EXPECT_EQ(present(c, {"A", "B", "C", "D", "E", "F"}), (std::vector<std::string>{"B", "E", "F"}));
  EXPECT_EQ(c.snapshot().evictions, 3u);
}

TEST(ByteCacheLru, ReplaceCountsAsUse) {
  string_cache c(2, policy::lru, 1);
  c.insert("A", val("a1"), 1);
  c.insert("B", val("b"), 1);
  c.insert("A", val("a2"), 1);  // A becomes most recent
  c.insert("C", val("c"), 1);
  EXPECT_EQ(present(c, {"A", "B", "C"}), (std::vector<std::string>{"A", "C"}));
  EXPECT_EQ(value_of(c, "A"), "a2");
}

TEST(ByteCacheLfu, EvictsFewestUses) {
  string_cache c(2, policy::lfu, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  c.find("A");  // A:2 B:1
  c.insert("C", val("c"), 1);
  EXPECT_EQ(c.find("B"), nullptr);
  EXPECT_NE(c.find("A"), nullptr);  // A:3
  EXPECT_NE(c.find("C"), nullptr);  // C:2
  c.find("C");                      // C:3, more recent than A
  c.find("C");                      // C:4
  c.insert("D", val("d"), 1);       // evicts A: 3 uses against C's 4
  EXPECT_EQ(present(c, {"A", "C", "D"}), (std::vector<std::string>{"C", "D"}));
}

TEST(ByteCacheLfu, TiesGoToLeastRecentlyUsed) {
  string_cache c(3, policy::lfu, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  c.insert("C", val("c"), 1);
  c.find("C");
  c.find("A");
  c.find("B");                 // all at 2 uses; recency oldest first: C A B
  c.insert("D", val("d"), 1);  // evicts C, the oldest 2; D (1 use) is kept as new
  EXPECT_EQ(c.snapshot().evictions, 1u);
  c.find("D");                 // D:2, now the most recent: A B D
  c.insert("E", val("e"), 1);  // evicts A
  c.find("E");                 // E:2: B D E
  c.insert("F", val("f"), 1);  // evicts B
  EXPECT_EQ(present(c, {"A", "B", "C", "D", "E", "F"}), (std::vector<std::string>{"D", "E", "F"}));
}

TEST(ByteCacheLfu, TiesAmongSingleUseGoToOldestInsert) {
  string_cache c(3, policy::lfu, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  c.insert("C", val("c"), 1);
  c.insert("D", val("d"), 1);
  EXPECT_EQ(present(c, {"A", "B", "C", "D"}), (std::vector<std::string>{"B", "C", "D"}));
}

TEST(ByteCacheLfu, NeverEvictsTheEntryJustInserted) {
  string_cache c(3, policy::lfu, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  c.insert("C", val("c"), 1);
  for (int i = 0; i < 5; ++i) c.find("A");
  for (int i = 0; i < 3; ++i) c.find("B");
  for (int i = 0; i < 4; ++i) c.find("C");
  // D has 1 use, fewer than anyone, yet it stays; B (4 uses) is the runner-up.
  ASSERT_TRUE(c.insert("D", val("d"), 1));
  EXPECT_EQ(present(c, {"A", "B", "C", "D"}), (std::vector<std::string>{"A", "C", "D"}));
}

TEST(ByteCacheLfu, ReplaceKeepsUseCountPlusOne) {
  string_cache c(3, policy::lfu, 1);
  c.insert("A", val("a1"), 1);
  c.find("A");
  c.find("A");  // A:3
  c.insert("B", val("b"), 1);
  c.find("B");
  c.find("B");                  // B:3, more recent than A
  c.insert("A", val("a2"), 1);  // A:4 (a reset would make it 1)
  c.insert("C", val("c"), 1);   // C:1
  c.insert("D", val("d"), 1);   // over budget: C is the only 1 not just inserted
  EXPECT_EQ(c.find("C"), nullptr);
  c.insert("E", val("e"), 1);  // D:1 goes
  EXPECT_EQ(c.find("D"), nullptr);
  c.find("E");
  c.find("E");
  c.find("E");                 // E:4, most recent; B:3 is now the fewest
  c.insert("F", val("f"), 1);  // evicts B, not A
  EXPECT_EQ(present(c, {"A", "B", "E", "F"}), (std::vector<std::string>{"A", "E", "F"}));
  EXPECT_EQ(value_of(c, "A"), "a2");
}

TEST(ByteCacheLfu, EraseKeepsHeapOrder) {
  string_cache c(4, policy::lfu, 1);
  for (std::string k : {"A", "B", "C", "D"}) c.insert(k, val(k), 1);
  for (int i = 0; i < 3; ++i) c.find("A");
  for (int i = 0; i < 1; ++i) c.find("C");
  for (int i = 0; i < 2; ++i) c.find("D");
  // uses: A4 B1 C2 D3; erase the minimum and one from the middle.
  c.erase("B");
  c.erase("D");
  c.insert("E", val("e"), 1);
  c.insert("F", val("f"), 1);  // A4 C2 E1 F1: full, nothing evicted yet
  EXPECT_EQ(c.snapshot().evictions, 0u);
  c.insert("G", val("g"), 1);  // evicts E (1 use, older than F)
  EXPECT_EQ(c.find("E"), nullptr);
  c.insert("H", val("h"), 1);  // evicts F (1 use, older than G)
  EXPECT_EQ(c.find("F"), nullptr);
  c.insert("I", val("i"), 1);  // evicts G
  EXPECT_EQ(present(c, {"A", "C", "E", "F", "G", "H", "I"}),
            (std::vector<std::string>{"A", "C", "H", "I"}));
}

TEST(ByteCache, ByteAccountingWithMixedSizes) {
  string_cache c(100, policy::lru, 1);
  c.insert("a", val("a"), 10);
  c.insert("b", val("b"), 30);
  c.insert("c", val("c"), 60);
  auto st = c.snapshot();
  EXPECT_EQ(st.bytes, 100u);
  EXPECT_EQ(st.entries, 3u);
  EXPECT_EQ(st.evictions, 0u);

  c.insert("d", val("d"), 1);  // evicts a (10) only
  st = c.snapshot();
  EXPECT_EQ(st.bytes, 91u);
  EXPECT_EQ(st.entries, 3u);
  EXPECT_EQ(st.evictions, 1u);

  c.insert("e", val("e"), 50);  // 141: evicts b (30) then c (60) -> d + e = 51
  st = c.snapshot();
  EXPECT_EQ(st.bytes, 51u);
  EXPECT_EQ(st.entries, 2u);
  EXPECT_EQ(st.evictions, 3u);
  EXPECT_EQ(present(c, {"a", "b", "c", "d", "e"}), (std::vector<std::string>{"d", "e"}));
}

TEST(ByteCache, ZeroChargeIsAccepted) {
  string_cache c(1, policy::lru, 1);
  EXPECT_TRUE(c.insert("a", val("a"), 0));
  EXPECT_TRUE(c.insert("b", val("b"), 1));
  auto st = c.snapshot();
  EXPECT_EQ(st.bytes, 1u);
  EXPECT_EQ(st.entries, 2u);
  EXPECT_EQ(st.evictions, 0u);
}

TEST(ByteCache, ReplaceUpdatesValueAndCharge) {
  for (policy p : {policy::lru, policy::lfu}) {
    SCOPED_TRACE(p == policy::lru ? "lru" : "lfu");
    string_cache c(100, p, 1);
    c.insert("a", val("a1"), 40);
    c.insert("b", val("b"), 30);
    c.insert("a", val("a2"), 20);
    auto st = c.snapshot();
    EXPECT_EQ(st.bytes, 50u);
    EXPECT_EQ(st.entries, 2u);
    EXPECT_EQ(st.insertions, 3u);
    EXPECT_EQ(value_of(c, "a"), "a2");

    c.insert("a", val("a3"), 80);  // 110: b goes, a stays although it was just inserted
    st = c.snapshot();
    EXPECT_EQ(st.bytes, 80u);
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.evictions, 1u);
    EXPECT_EQ(c.find("b"), nullptr);
    EXPECT_EQ(value_of(c, "a"), "a3");
  }
}

TEST(ByteCache, OversizedEntryIsRejectedWithoutEvicting) {
  string_cache c(100, policy::lru, 1);
  c.insert("a", val("a"), 60);
  c.insert("b", val("b"), 40);
  EXPECT_FALSE(c.insert("big", val("big"), 101));
  auto st = c.snapshot();
  EXPECT_EQ(st.bytes, 100u);
  EXPECT_EQ(st.entries, 2u);
  EXPECT_EQ(st.insertions, 2u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_EQ(c.find("big"), nullptr);

  // Exactly the shard budget fits, and pushes out everything else.
  EXPECT_TRUE(c.insert("full", val("full"), 100));
  st = c.snapshot();
  EXPECT_EQ(st.bytes, 100u);
  EXPECT_EQ(st.entries, 1u);
  EXPECT_EQ(st.evictions, 2u);
}

TEST(ByteCache, OversizedReplacementDropsTheStaleValue) {
  string_cache c(100, policy::lfu, 1);
  c.insert("a", val("old"), 10);
  c.insert("b", val("b"), 10);
  EXPECT_FALSE(c.insert("a", val("new"), 101));
  EXPECT_EQ(c.find("a"), nullptr);
  EXPECT_NE(c.find("b"), nullptr);
  auto st = c.snapshot();
  EXPECT_EQ(st.bytes, 10u);
  EXPECT_EQ(st.entries, 1u);
  EXPECT_EQ(st.evictions, 0u);
}

TEST(ByteCache, NullValueIsRejected) {
  string_cache c(100, policy::lru, 1);
  EXPECT_FALSE(c.insert("a", nullptr, 1));
  EXPECT_EQ(c.snapshot().entries, 0u);
}

TEST(ByteCache, EraseRemovesAndKeepsOrder) {
  string_cache c(3, policy::lru, 1);
  c.insert("A", val("a"), 1);
  c.insert("B", val("b"), 1);
  c.insert("C", val("c"), 1);
  c.erase("B");
  c.erase("missing");
  auto st = c.snapshot();
  EXPECT_EQ(st.bytes, 2u);
  EXPECT_EQ(st.entries, 2u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_EQ(c.find("B"), nullptr);

  c.insert("D", val("d"), 1);  // fits, no eviction
  c.insert("E", val("e"), 1);  // evicts A, the oldest left
  EXPECT_EQ(c.find("A"), nullptr);
  EXPECT_TRUE(c.insert("B", val("b2"), 1));  // an erased key can come back; evicts C
  EXPECT_EQ(present(c, {"A", "B", "C", "D", "E"}), (std::vector<std::string>{"B", "D", "E"}));
  EXPECT_EQ(value_of(c, "B"), "b2");
}

TEST(ByteCache, StatsCountHitsMissesInsertionsEvictions) {
  string_cache c(2, policy::lru, 1);
  c.find("x");
  c.insert("a", val("a"), 1);
  c.insert("b", val("b"), 1);
  c.find("a");
  c.find("a");
  c.find("b");
  c.insert("c", val("c"), 1);  // evicts a, whose last hit came before b's
  c.find("a");
  c.insert("c", val("c2"), 1);  // replacement counts as an insertion
  c.insert("big", val("big"), 3);
  c.erase("b");
  auto st = c.snapshot();
  EXPECT_EQ(st.hits, 3u);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.insertions, 4u);
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_EQ(st.bytes, 1u);
  EXPECT_EQ(st.entries, 1u);
}

TEST(ByteCache, ValueSurvivesEviction) {
  string_cache c(1, policy::lru, 1);
  c.insert("a", val(std::string(1000, 'x')), 1);
  std::shared_ptr<const std::string> held = c.find("a");
  std::weak_ptr<const std::string> watch = held;
  c.insert("b", val("b"), 1);  // evicts a
  ASSERT_EQ(c.find("a"), nullptr);
  ASSERT_FALSE(watch.expired());
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(*held, std::string(1000, 'x'));
  held.reset();
  EXPECT_TRUE(watch.expired());  // the cache let go of it
}

TEST(ByteCache, ValueSurvivesEraseAndReplace) {
  string_cache c(10, policy::lfu, 1);
  c.insert("a", val("one"), 1);
  auto first = c.find("a");
  c.insert("a", val("two"), 1);
  auto second = c.find("a");
  c.erase("a");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*first, "one");
  EXPECT_EQ(*second, "two");
  EXPECT_EQ(first.use_count(), 1);
  EXPECT_EQ(second.use_count(), 1);
}

TEST(ByteCache, EachShardHasItsOwnBudget) {
  // 4 shards of 100 bytes. A 101-byte entry fits the total but no shard.
  string_cache c(400, policy::lru, 4);
  EXPECT_FALSE(c.insert("k", val("k"), 101));
  EXPECT_TRUE(c.insert("k", val("k"), 100));

  // 60-byte entries: one per shard at most, so never more than 4 live (one budget of 400 would
  // hold 6), and with 64 keys every shard ends up holding one.
  string_cache d(400, policy::lru, 4);
  for (int i = 0; i < 64; ++i) d.insert("key" + std::to_string(i), val("v"), 60);
  auto st = d.snapshot();
  EXPECT_EQ(st.entries, 4u);
  EXPECT_EQ(st.bytes, 240u);
  EXPECT_EQ(st.evictions, 60u);
}

TEST(ByteCache, KeysInDifferentShardsDoNotEvictEachOther) {
  constexpr std::size_t shards = 4;
  // One key per shard, plus a second key for shard 0.
  std::vector<std::string> by_shard(shards);
  std::string extra;
  auto incomplete = [&] {
    for (const auto& k : by_shard)
      if (k.empty()) return true;
    return extra.empty();
  };
  for (int i = 0; incomplete(); ++i) {
    std::string k = "/file/" + std::to_string(i);
    std::string& slot = by_shard[shard_of(k, shards)];
    if (slot.empty()) {
      slot = k;
    } else if (shard_of(k, shards) == 0 && extra.empty()) {
      extra = k;
    }
  }
  string_cache c(400, policy::lru, shards);
  for (const auto& k : by_shard) ASSERT_TRUE(c.insert(k, val(k), 100));
  EXPECT_EQ(c.snapshot().bytes, 400u);
  EXPECT_EQ(c.snapshot().evictions, 0u);
  EXPECT_EQ(present(c, by_shard).size(), shards);

  ASSERT_TRUE(c.insert(extra, val(extra), 1));  // shard 0 is full: only its key goes
  EXPECT_EQ(c.find(by_shard[0]), nullptr);
  for (std::size_t i = 1; i < shards; ++i) EXPECT_NE(c.find(by_shard[i]), nullptr);
  EXPECT_EQ(c.snapshot().evictions, 1u);
}

// A direct model of the policies, for comparison on random operations (one shard).
class model {
 public:
  model(std::size_t budget, policy p) : budget_(budget), p_(p) {}

  const std::string* find(const std::string& k) {
    auto it = items_.find(k);
    if (it == items_.end()) return nullptr;
    use(it->second);
    return &it->second.value;
  }

  void insert(const std::string& k, const std::string& v, std::size_t charge) {
    if (charge > budget_) {
      erase(k);
      return;
    }
    auto [it, added] = items_.try_emplace(k);
    if (!added) bytes_ -= it->second.charge;
    it->second.value = v;
    it->second.charge = charge;
    if (added) it->second.uses = 0;
    use(it->second);
    bytes_ += charge;
    while (bytes_ > budget_) {
      auto victim = items_.end();
      for (auto j = items_.begin(); j != items_.end(); ++j) {
        if (j == it) continue;
        if (victim == items_.end() || rank(j->second) < rank(victim->second)) victim = j;
      }
      bytes_ -= victim->second.charge;
      items_.erase(victim);
    }
  }

  void erase(const std::string& k) {
    auto it = items_.find(k);
    if (it == items_.end()) return;
    bytes_ -= it->second.charge;
    items_.erase(it);
  }

  std::size_t bytes() const { return bytes_; }
  std::size_t size() const { return items_.size(); }

 private:
  struct item {
    std::string value;
    std::size_t charge = 0;
    std::uint64_t uses = 0, last = 0;
  };
  void use(item& i) {
    ++i.uses;
    i.last = ++clock_;
  }
  std::pair<std::uint64_t, std::uint64_t> rank(const item& i) const {
    return {p_ == policy::lru ? 0 : i.uses, i.last};
  }

  std::size_t budget_;
  policy p_;
  std::size_t bytes_ = 0;
  std::uint64_t clock_ = 0;
  std::map<std::string, item> items_;
};

std::string policy_name(const ::testing::TestParamInfo<policy>& p) {
  return p.param == policy::lru ? "lru" : "lfu";
}

class ByteCacheModel : public ::testing::TestWithParam<policy> {};

TEST_P(ByteCacheModel, MatchesReferenceOnRandomOperations) {
  constexpr std::size_t budget = 200;
  string_cache c(budget, GetParam(), 1);
  model m(budget, GetParam());
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> op(0, 9), key(0, 39), charge(0, 60), pct(0, 99);
  for (int step = 0; step < 20000; ++step) {
    std::string k = "k" + std::to_string(key(rng));
    int o = op(rng);
    if (o < 6) {
      auto got = c.find(k);
      const std::string* want = m.find(k);
      ASSERT_EQ(got != nullptr, want != nullptr) << "step " << step << " key " << k;
      if (want != nullptr) {
        ASSERT_EQ(*got, *want) << "step " << step;
      }
    } else if (o < 9) {
      std::size_t ch = pct(rng) < 3 ? budget + 1 : static_cast<std::size_t>(charge(rng));
      std::string v = k + "/" + std::to_string(step);
      c.insert(k, val(v), ch);
      m.insert(k, v, ch);
    } else {
      c.erase(k);
      m.erase(k);
    }
    auto st = c.snapshot();
    ASSERT_EQ(st.bytes, m.bytes()) << "step " << step;
    ASSERT_EQ(st.entries, m.size()) << "step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, ByteCacheModel, ::testing::Values(policy::lru, policy::lfu),
                         policy_name);

// --- Live changes (SIGHUP): the bound and the policy --------------------------------------------

TEST(ByteCacheLive, ShrinkEvictsDownToTheNewBoundLeastRecentFirst) {
  string_cache c(10, policy::lru, 1);
  for (const char* k : {"A", "B", "C", "D", "E"}) ASSERT_TRUE(c.insert(k, val(k), 2));
  ASSERT_TRUE(has(c, "A"));  // A is now the most recent: B, C go first
  EXPECT_EQ(c.set_max_bytes(6), 2u);
  EXPECT_EQ(c.max_bytes(), 6u);
  auto st = c.snapshot();
  EXPECT_EQ(st.bytes, 6u);
  EXPECT_EQ(st.evictions, 2u);
  EXPECT_EQ(present(c, {"A", "B", "C", "D", "E"}), (std::vector<std::string>{"A", "D", "E"}));
  // The new budget holds for inserts from now on, and growing again takes more.
  EXPECT_FALSE(c.insert("big", val("big"), 7));
  EXPECT_EQ(c.set_max_bytes(20), 0u);
  EXPECT_TRUE(c.insert("big", val("big"), 7));
  EXPECT_EQ(c.snapshot().bytes, 13u);
}

TEST(ByteCacheLive, ShrinkUnderLfuEvictsTheFewestUses) {
  string_cache c(8, policy::lfu, 1);
  for (const char* k : {"A", "B", "C", "D"}) ASSERT_TRUE(c.insert(k, val(k), 2));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(has(c, "A"));
  ASSERT_TRUE(has(c, "C"));
  c.set_max_bytes(4);
  EXPECT_EQ(present(c, {"A", "B", "C", "D"}), (std::vector<std::string>{"A", "C"}));
}

TEST(ByteCacheLive, ShrinkBoundsEveryShardAndAManyEntryShardInBatches) {
  // More victims in one shard than one batch of released values: the loop must go on.
  string_cache c(64 * 16, policy::lru, 16);
  for (int i = 0; i < 1000; ++i) c.insert("/f/" + std::to_string(i), val("v"), 1);
  c.set_max_bytes(16);  // one byte per shard
  auto st = c.snapshot();
  EXPECT_LE(st.bytes, 16u);
  EXPECT_LE(st.entries, 16u);
  for (int i = 0; i < 1000; ++i) {
    const std::string k = "/f/" + std::to_string(i);
    if (auto v = c.find(k)) {
      EXPECT_EQ(*v, "v");
    }
  }
  // Zero: caching off; every insert refused, and an old value under the key is not served.
  c.set_max_bytes(0);
  EXPECT_EQ(c.snapshot().entries, 0u);
  EXPECT_FALSE(c.insert("x", val("x"), 1));
  EXPECT_EQ(c.snapshot().entries, 0u);
}

TEST(ByteCacheLive, LruToLfuKeepsEveryEntryAndEvictsTheLeastRecentFirst) {
  string_cache c(8, policy::lru, 1);
  for (const char* k : {"A", "B", "C", "D"}) ASSERT_TRUE(c.insert(k, val(std::string(k) + "!"), 2));
  ASSERT_TRUE(has(c, "A"));  // recency now B, C, D, A (oldest first)
  c.set_policy(policy::lfu);
  EXPECT_EQ(c.replacement(), policy::lfu);
  // One use each: the tie goes to the least recently used, B.
  ASSERT_TRUE(c.insert("E", val("E!"), 2));
  EXPECT_FALSE(has(c, "B"));
  for (const char* k : {"A", "C", "D", "E"}) EXPECT_EQ(value_of(c, k), std::string(k) + "!");
  // Now uses count: A, C, D and E have two; C a third. F evicts the fewest, oldest: A.
  ASSERT_TRUE(has(c, "C"));
  ASSERT_TRUE(c.insert("F", val("F!"), 2));
  EXPECT_EQ(present(c, {"A", "B", "C", "D", "E", "F"}),
            (std::vector<std::string>{"C", "D", "E", "F"}));
  EXPECT_EQ(c.snapshot().bytes, 8u);
}

TEST(ByteCacheLive, LfuToLruOrdersByLastUse) {
  string_cache c(8, policy::lfu, 1);
  for (const char* k : {"A", "B", "C", "D"}) ASSERT_TRUE(c.insert(k, val(k), 2));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(has(c, "A"));  // many uses, but the oldest last use
  ASSERT_TRUE(has(c, "D"));
  ASSERT_TRUE(has(c, "B"));
  ASSERT_TRUE(has(c, "C"));
  ASSERT_TRUE(has(c, "A"));  // last uses: D, B, C, A
  c.set_policy(policy::lru);
  ASSERT_TRUE(c.insert("E", val("E"), 2));  // evicts D, the least recently used
  ASSERT_TRUE(c.insert("F", val("F"), 2));  // then B
  EXPECT_EQ(present(c, {"A", "B", "C", "D", "E", "F"}),
            (std::vector<std::string>{"A", "C", "E", "F"}));
  // And back again: erase and replace keep working under the switched structure.
  c.set_policy(policy::lfu);
  c.erase("C");
  ASSERT_TRUE(c.insert("A", val("A2"), 3));
  EXPECT_EQ(value_of(c, "A"), "A2");
  EXPECT_EQ(c.snapshot().bytes, 7u);
  c.set_policy(policy::lfu);  // the same policy: nothing changes
  EXPECT_EQ(present(c, {"A", "E", "F"}), (std::vector<std::string>{"A", "E", "F"}));
}

struct tagged {
  std::string key;
  std::size_t charge;
};

// Finds and inserts on 8 threads while another switches the policy and moves the bound: each
// key's value stays its own, the bytes add up, and once the last shrink returns every shard is
// within it.
TEST(ByteCacheLive, PolicyAndBoundChangesUnderConcurrentUse) {
  constexpr std::size_t shards = 4, keys = 256;
  byte_cache<tagged> c(4096, policy::lru, shards);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 11u);
      std::uniform_int_distribution<std::size_t> key(0, keys - 1), charge(1, 200);
      std::uint64_t my_bad = 0;
      for (int i = 0; !stop.load(std::memory_order_relaxed) || i < 2000; ++i) {
        const std::string k = "/k/" + std::to_string(key(rng));
        if (i % 3 == 0) {
          const std::size_t ch = charge(rng);
          c.insert(k, std::make_shared<const tagged>(tagged{k, ch}), ch);
        } else if (auto v = c.find(k); v && v->key != k) {
          ++my_bad;
        }
      }
      bad += my_bad;
    });
  }
  for (int round = 0; round < 200; ++round) {
    c.set_policy(round % 2 == 0 ? policy::lfu : policy::lru);
    c.set_max_bytes(round % 3 == 0 ? 1024 : 4096);
  }
  stop = true;
  for (auto& th : pool) th.join();
  EXPECT_EQ(bad.load(), 0u);
  c.set_max_bytes(800);
  const auto st = c.snapshot();
  EXPECT_LE(st.bytes, 800u);
  std::vector<std::size_t> shard_bytes(shards, 0);
  std::size_t found = 0, sum = 0;
  for (std::size_t i = 0; i < keys; ++i) {
    const std::string k = "/k/" + std::to_string(i);
    if (auto v = c.find(k)) {
      ++found;
      sum += v->charge;
      shard_bytes[shard_of(k, shards)] += v->charge;
    }
  }
  EXPECT_EQ(found, st.entries);
  EXPECT_EQ(sum, st.bytes);
  for (std::size_t b : shard_bytes) EXPECT_LE(b, 800u / shards);
}

class ByteCacheConcurrent : public ::testing::TestWithParam<policy> {};

TEST_P(ByteCacheConcurrent, RandomOperationsKeepInvariants) {
  constexpr std::size_t max_bytes = 4096, shards = 4, budget = max_bytes / shards;
  constexpr int threads = 8, ops = 20000, keys = 256;
  byte_cache<tagged> c(max_bytes, GetParam(), shards);
  std::atomic<std::uint64_t> finds{0}, accepted{0}, bad_values{0};

  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      std::uniform_int_distribution<int> op(0, 9), key(0, keys - 1), charge(1, 300);
      std::uint64_t my_finds = 0, my_accepted = 0, my_bad = 0;
      for (int i = 0; i < ops; ++i) {
        std::string k = "/k/" + std::to_string(key(rng));
        int o = op(rng);
        if (o < 6) {
          ++my_finds;
          if (auto v = c.find(k); v && v->key != k) ++my_bad;
        } else if (o < 9) {
          std::size_t ch = static_cast<std::size_t>(charge(rng));
          bool ok = c.insert(k, std::make_shared<const tagged>(tagged{k, ch}), ch);
          if (ok != (ch <= budget)) ++my_bad;
          my_accepted += ok;
        } else {
          c.erase(k);
        }
      }
      finds += my_finds;
      accepted += my_accepted;
      bad_values += my_bad;
    });
  }
  for (auto& th : pool) th.join();

  EXPECT_EQ(bad_values.load(), 0u);
  auto st = c.snapshot();
  EXPECT_LE(st.bytes, max_bytes);
  EXPECT_EQ(st.hits + st.misses, finds.load());
  EXPECT_EQ(st.insertions, accepted.load());
  EXPECT_GT(st.evictions, 0u);

  // Every entry reachable by key, and their charges add up to the byte count, shard by shard.
  std::vector<std::size_t> shard_bytes(shards, 0);
  std::size_t found = 0, sum = 0;
  for (int i = 0; i < keys; ++i) {
    std::string k = "/k/" + std::to_string(i);
    if (auto v = c.find(k)) {
      ++found;
      sum += v->charge;
      shard_bytes[shard_of(k, shards)] += v->charge;
    }
  }
  EXPECT_EQ(found, st.entries);
  EXPECT_EQ(sum, st.bytes);
  for (std::size_t b : shard_bytes) EXPECT_LE(b, budget);
}

INSTANTIATE_TEST_SUITE_P(Policies, ByteCacheConcurrent, ::testing::Values(policy::lru, policy::lfu),
                         policy_name);

}  // namespace
}  // namespace weir::cache
