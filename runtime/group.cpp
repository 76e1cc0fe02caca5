#include "runtime/group.hpp"

#include <pthread.h>

#include <algorithm>

#include "runtime/epoch.hpp"

namespace weir::runtime {

group::group(options opts, runner run)
    : name_(std::move(opts.name)),
      batch_(std::max<std::size_t>(1, opts.batch)),
      tasks_per_wake_(opts.tasks_per_wake != 0 ? opts.tasks_per_wake : batch_),
      run_(std::move(run)),
      queue_(opts.capacity) {
  resize(opts.threads);
}

group::~group() {
  stop();
}

namespace {

// The wake-ups owed by this thread while a deferred_wakeups scope is open.
struct pending_wakeups {
  static constexpr std::size_t max_groups = 16;
  struct entry {
    group* target;
    std::size_t tasks;
  };
  entry entries[max_groups];
  std::size_t count = 0;
  int depth = 0;
};
thread_local pending_wakeups pending;

}  // namespace

group::deferred_wakeups::deferred_wakeups() {
  if (pending.depth++ == 0) epoch::enter();
}

group::deferred_wakeups::~deferred_wakeups() {
  if (--pending.depth > 0) return;
  flush();
  epoch::leave();  // the last group pointer this thread held was just used
}

void group::deferred_wakeups::flush() {
  // Entries are taken out first: a wake may run code that submits again (it does not today).
  while (pending.count > 0) {
    const pending_wakeups::entry e = pending.entries[--pending.count];
    e.target->wake(e.tasks);
  }
}

bool group::submit(task* t) {
  if (stopping_.load(std::memory_order_relaxed) || !queue_.try_push(t)) return false;
  // Pairs with park(): either this load sees the parked worker, or that worker's re-check of the
  // queue (after it announced itself) sees this task. Both sides are seq_cst. A deferred wake is
  // still owed to a worker seen parked here: it is only delivered later.
  if (parked_.load(std::memory_order_seq_cst) == 0) return true;
  if (pending.depth > 0) {
    for (std::size_t i = 0; i < pending.count; ++i) {
      if (pending.entries[i].target == this) {
        ++pending.entries[i].tasks;
        return true;
      }
    }
    if (pending.count < pending_wakeups::max_groups) {
      pending.entries[pending.count++] = {this, 1};
      return true;
    }
  }
  wake(1);
  return true;
}

void group::wake(std::size_t n) {
  std::lock_guard lock(mutex_);
  // One worker per `tasks_per_wake` tasks (by default a batch); at least one.
  const std::size_t workers = std::clamp<std::size_t>(
      n / tasks_per_wake_, 1, std::max<std::size_t>(1, parked_.load(std::memory_order_relaxed)));
  if (workers == 1) {
    wake_.notify_one();
  } else {
    for (std::size_t i = 0; i < workers; ++i) wake_.notify_one();
  }
}

void group::resize(std::size_t threads) {
  threads = std::max<std::size_t>(1, threads);
  std::lock_guard control(control_mutex_);
  if (stopping_.load()) return;
  std::vector<std::size_t> to_start;
  std::vector<std::thread> to_join;
  {
    std::lock_guard lock(mutex_);
    target_.store(threads, std::memory_order_relaxed);
    while (slots_.size() < threads) slots_.push_back(std::make_unique<slot>());
    for (std::size_t i = 0; i < threads; ++i) {
      if (slots_[i]->alive) continue;  // still running (perhaps about to notice a shrink undone)
      if (slots_[i]->thread.joinable()) to_join.push_back(std::move(slots_[i]->thread));
      slots_[i]->alive = true;
      live_.fetch_add(1, std::memory_order_relaxed);
      to_start.push_back(i);
    }
    wake_.notify_all();  // surplus parked workers re-check the target and leave
  }
  for (auto& t : to_join) t.join();
  for (std::size_t i : to_start) slots_[i]->thread = std::thread([this, i] { work(i); });
}

void group::request_stop() {
  std::lock_guard lock(mutex_);
  stopping_.store(true);
  wake_.notify_all();
}

void group::stop() {
  std::lock_guard control(control_mutex_);
  request_stop();
  for (auto& s : slots_) {
    if (s->thread.joinable()) s->thread.join();
  }
}

bool group::should_exit(std::size_t index) {
  if (index < target_.load(std::memory_order_relaxed) && !stopping_.load(std::memory_order_relaxed))
    return false;
  std::lock_guard lock(mutex_);
  const bool surplus = index >= target_.load(std::memory_order_relaxed);
  // On stop, leave only once the queue is drained; a surplus worker leaves at once (the others
  // keep draining).
  if (!surplus && !(stopping_.load() && queue_.depth() == 0)) return false;
  slots_[index]->alive = false;
  live_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void group::park(std::size_t index) {
  std::unique_lock lock(mutex_);
  parked_.fetch_add(1, std::memory_order_seq_cst);
  while (queue_.depth() == 0 && index < target_.load(std::memory_order_relaxed) &&
         !stopping_.load(std::memory_order_relaxed)) {
    wake_.wait(lock);
    wakeups_.fetch_add(1, std::memory_order_relaxed);
  }
  parked_.fetch_sub(1, std::memory_order_seq_cst);
}

void group::work(std::size_t index) {
  // "<group>/<n>", as `top -H` and /proc/PID/task/*/comm show it (15 bytes at most).
  const std::string thread_name = name_.substr(0, 12) + "/" + std::to_string(index);
  ::pthread_setname_np(::pthread_self(), thread_name.substr(0, 15).c_str());
  for (;;) {
    // Busy for the whole batch (counted before the first pop, so a task is never held by a
    // worker that looks idle: pipeline::stop relies on it).
    busy_.fetch_add(1, std::memory_order_seq_cst);
    std::size_t done = 0;
    {
      const deferred_wakeups batch;  // the groups this batch feeds are woken once, at its end
      while (done < batch_) {
        task* t = queue_.try_pop();
        if (t == nullptr) break;
        run_(t, *this);
        ++done;
      }
    }
    busy_.fetch_sub(1, std::memory_order_seq_cst);
    if (should_exit(index)) return;
    if (done == 0) park(index);
  }
}

}  // namespace weir::runtime
