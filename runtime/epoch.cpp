#include "runtime/epoch.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

namespace weir::runtime::epoch {
namespace {

// 0 in a slot means "outside"; epochs start at 1.
std::atomic<std::uint64_t> current{1};

struct alignas(64) slot {
  std::atomic<std::uint64_t> entered{0};
};

struct registry {
  std::mutex mutex;
  std::vector<slot*> slots;
};

registry& threads() {
  static registry* r = new registry;  // never destroyed: threads may exit after main returns
  return *r;
}

// This thread's slot, registered on first use and removed when the thread exits.
struct registration {
  slot* s = new slot;
  registration() {
    registry& r = threads();
    std::lock_guard lock(r.mutex);
    r.slots.push_back(s);
  }
  ~registration() {
    registry& r = threads();
    std::lock_guard lock(r.mutex);
    std::erase(r.slots, s);
    delete s;
  }
};

slot& mine() {
  thread_local registration reg;
  return *reg.s;
}

}  // namespace

void enter() {
  // seq_cst: a pointer read after this store is either one `passed` waits for, or the new one.
  mine().entered.store(current.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
}

void leave() {
  mine().entered.store(0, std::memory_order_release);
}

std::uint64_t advance() {
  return current.fetch_add(1, std::memory_order_seq_cst) + 1;
}

bool passed(std::uint64_t e) {
  registry& r = threads();
  std::lock_guard lock(r.mutex);
  return std::all_of(r.slots.begin(), r.slots.end(), [e](const slot* s) {
    const std::uint64_t v = s->entered.load(std::memory_order_seq_cst);
    return v == 0 || v >= e;
  });
}

}  // namespace weir::runtime::epoch
