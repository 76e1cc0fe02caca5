#include "controllers/control_loop.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace weir::controllers {
namespace {

constexpr std::int64_t dry_run_repeat_ms = 1000;
constexpr std::size_t max_threads = 256;  // as config's stages.*.threads

std::int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

/// One line of what a sample holds, for `--log-level trace`: each group's utilisation, tasks,
/// wake-ups per task and queue wait p90, and each stage's mean service time.
std::string describe(const sample& s) {
  std::string out = fmt::format("sample over {} ms, {} cores:", s.window_ms, s.cores);
  for (const group_sample& g : s.groups) {
    out += fmt::format(" [{} x{} util {:.2f} tasks {} wake/task {:.2f} wait p90 {:.3f} ms]", g.name,
                       g.threads, utilisation(g, s.window_ms), g.tasks,
                       g.tasks == 0 ? 0.0 : static_cast<double>(g.wakeups) / g.tasks,
                       static_cast<double>(g.queue_wait.quantile_ns(0.9)) / 1e6);
  }
  for (const stage_sample& st : s.stages) {
    const std::uint64_t n = st.service.count();
    out += fmt::format(" {} {:.2f} us", st.name,
                       n == 0 ? 0.0 : static_cast<double>(st.service.sum_ns) / n / 1e3);
  }
  return out;
}

}  // namespace

control_loop::control_loop(runtime::pipeline& pipe, options opts)
    : pipe_(pipe),
      blocking_stages_(opts.blocking_stages),
      flow_(std::move(opts.flow)),
      cores_(opts.cores),
      pool_sensor_(pipe, opts.blocking_stages, opts.cores),
      grouping_sensor_(pipe, opts.blocking_stages, opts.cores),
      history_(opts.history),
      pool_settings_(opts.pool),
      grouping_settings_(opts.grouping),
      admission_settings_(opts.admission),
      gate_(opts.gate) {
  if (gate_ != nullptr) {
    // Start open, at the bound: only latency over the target brings a limit down.
    apply_to_gate(opts.admission);
    for (std::size_t i = 0; i < runtime::admission_classes; ++i)
      gate_->set_limit(
          static_cast<runtime::admission_class>(i),
          opts.admission.enabled ? opts.admission.max_limit : runtime::admission_gate::unlimited);
  }
  for (const auto& [controller, action] : {std::pair{"pool", "grow"},
                                           {"pool", "shrink"},
                                           {"grouping", "fuse"},
                                           {"grouping", "split"},
                                           {"admission", "lower"},
                                           {"admission", "raise"},
                                           {"admission", "backlog"},
                                           {"admin", "resize"},
                                           {"admin", "fuse"},
                                           {"admin", "split"},
                                           {"admin", "regroup"}})
    counts_[{controller, action}] = 0;
}

control_loop::~control_loop() {
  stop();
}

void control_loop::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "weir-control");
    std::unique_lock lock(wake_mutex_);
    while (!stopping_) {
      auto period = std::min(pool().period, grouping().period);
      if (gate_ != nullptr) period = std::min(period, admission().period);
      wake_.wait_for(lock, period, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      run_once(steady_ms());
      lock.lock();
    }
  });
}

void control_loop::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void control_loop::run_once(std::int64_t now_ms) {
  pipe_.reap();
  pool_settings pool;
  grouping_settings grouping;
  admission_settings admission;
  {
    std::lock_guard lock(mutex_);
    pool = pool_settings_;
    grouping = grouping_settings_;
    admission = admission_settings_;
    last_ms_ = now_ms;
  }
  // A controller is due once its period has passed; a round that comes a little early (the
  // thread wakes at the shorter period) counts, so periods do not drift by one round each time.
  const auto due = [now_ms](std::int64_t& next, std::chrono::milliseconds period) {
    const std::int64_t slack = std::max<std::int64_t>(1, period.count() / 10);
    if (next >= 0 && now_ms + slack < next) return false;
    next = now_ms + period.count();
    return true;
  };
  const bool pool_first = next_pool_ms_ < 0, grouping_first = next_grouping_ms_ < 0;
  if (due(next_pool_ms_, pool.period)) {
    if (pool_first) {
      pool_sensor_.take(now_ms);  // the baseline
    } else {
      run_pool(now_ms);
    }
  }
  if (due(next_grouping_ms_, grouping.period)) {
    if (grouping_first) {
      grouping_sensor_.take(now_ms);
    } else {
      run_grouping(now_ms);
    }
  }
  const bool admission_first = next_admission_ms_ < 0;
  if (gate_ != nullptr && due(next_admission_ms_, admission.period)) {
    if (admission_first) {
      gate_before_ = gate_->take_window();
      gate_before_ms_ = now_ms;
      class_since_ms_.fill(now_ms);
      class_peak_.fill(0);
    } else {
      run_admission(now_ms);
    }
  }
}

void control_loop::run_admission(std::int64_t now_ms) {
  const runtime::admission_snapshot now = gate_->take_window();
  if (now_ms <= gate_before_ms_) return;
  std::vector<admission_decision> decisions;
  std::optional<backlog_decision> backlog;
  admission_settings settings;
  {
    std::lock_guard lock(mutex_);
    settings = admission_settings_;
    // One sample, each class over its own window (its start kept in gate_before_), the accept
    // pauses over this period.
    const std::int64_t request_window =
        now_ms - class_since_ms_[static_cast<std::size_t>(runtime::admission_class::request)];
    admission_sample s =
        admission_window(now, gate_before_, now_ms, request_window, settings.percentile);
    for (std::size_t i = 0; i < runtime::admission_classes; ++i) {
      admission_class_sample& c = s.classes[i];
      class_peak_[i] = std::max(class_peak_[i], now.classes[i].peak_in_flight);
      c.peak_in_flight = class_peak_[i];
      c.window_ms = now_ms - class_since_ms_[i];
      // Too few answers to say anything: the window goes on, up to max_window_periods.
      c.partial = settings.enabled && !admission_window_done(c, settings) &&
                  now_ms - class_since_ms_[i] < max_window_periods * settings.period.count();
    }
    decisions = decide_admission(s, admission_state_, settings);
    backlog = decide_backlog(s, admission_state_, settings);
    for (std::size_t i = 0; i < runtime::admission_classes; ++i) {
      const admission_class_sample& c = s.classes[i];
      // A window goes on while short of answers, but not across idle time: a class with
      // nothing answered, refused or in flight starts afresh, or its first busy window would
      // count the idle periods in its rate (Little's law would then cut far too deep).
      const bool idle = c.answered == 0 && c.refused == 0 && c.in_flight == 0;
      if (c.partial && !idle) continue;
      gate_before_.classes[i] = now.classes[i];
      class_since_ms_[i] = now_ms;
      class_peak_[i] = now.classes[i].in_flight;
    }
  }
  gate_before_.accept_pauses = now.accept_pauses;
  gate_before_.backlog = now.backlog;
  gate_before_.target_ns = now.target_ns;
  gate_before_ms_ = now_ms;
  const auto shown = [](std::size_t limit) {
    return limit == runtime::admission_gate::unlimited ? std::size_t{0} : limit;
  };
  for (admission_decision& d : decisions) {
    const char* action = d.to < d.from ? "lower" : "raise";
    const std::string cls = runtime::admission_class_names[static_cast<std::size_t>(d.cls)];
    if (settings.dry_run) {
      last_dry_run& last = dry_runs_["admission:" + cls];
      if (last.from == d.from && last.to == d.to && now_ms - last.at_ms < dry_run_repeat_ms)
        continue;
      last = {d.from, d.to, now_ms};
    }
    // Dry run decides from the limit in force, which it never changes: it shows what the
    // controller would do first, not where it would settle.
    if (!settings.dry_run) gate_->set_limit(d.cls, d.to);
    count("admission", action);
    // Many per second under overload: the counts and /decisions tell the story; the log only at
    // debug level.
    spdlog::debug("controller admission: {} {} limit {} -> {}{}: {}", action, cls, shown(d.from),
                  shown(d.to), settings.dry_run ? " (dry run, not applied)" : "", d.why);
    record({.at_ms = now_ms,
            .controller = "admission",
            .action = action,
            .group = cls,
            .from = shown(d.from),
            .to = shown(d.to),
            .why = std::move(d.why),
            .applied = !settings.dry_run});
  }
  if (backlog && settings.dry_run) {
    last_dry_run& last = dry_runs_["admission:backlog"];
    if (last.from == backlog->from && last.to == backlog->to &&
        now_ms - last.at_ms < dry_run_repeat_ms) {
      backlog.reset();
    } else {
      last = {backlog->from, backlog->to, now_ms};
    }
  }
  if (backlog) {
    if (!settings.dry_run) gate_->set_backlog(backlog->to);
    count("admission", "backlog");
    spdlog::debug("controller admission: listen backlog {} -> {}{}: {}", backlog->from, backlog->to,
                  settings.dry_run ? " (dry run, not applied)" : "", backlog->why);
    record({.at_ms = now_ms,
            .controller = "admission",
            .action = "backlog",
            .group = "listen",
            .from = backlog->from,
            .to = backlog->to,
            .why = std::move(backlog->why),
            .applied = !settings.dry_run});
  }
}

void control_loop::run_pool(std::int64_t now_ms) {
  const sample s = pool_sensor_.take(now_ms);
  if (s.window_ms <= 0) return;
  std::vector<pool_decision> decisions;
  pool_settings settings;
  {
    std::lock_guard lock(mutex_);
    settings = pool_settings_;
    decisions = decide_pools(s, pool_state_, settings);
  }
  for (pool_decision& d : decisions) {
    const bool grow = d.to > d.from;
    if (settings.dry_run) {
      last_dry_run& last = dry_runs_["pool:" + d.group];
      if (last.from == d.from && last.to == d.to && now_ms - last.at_ms < dry_run_repeat_ms)
        continue;
      last = {d.from, d.to, now_ms};
    }
    bool applied = false;
    if (!settings.dry_run) {
      std::lock_guard act(actuator_mutex_);
      for (const auto& g : pipe_.groups()) {
        if (g->name() != d.group) continue;
        g->resize(d.to);
        applied = true;
      }
    }
    count("pool", grow ? "grow" : "shrink");
    spdlog::info("controller pool: {} {} {} -> {} threads{}: {}", grow ? "grow" : "shrink", d.group,
                 d.from, d.to, settings.dry_run ? " (dry run, not applied)" : "", d.why);
    record({.at_ms = now_ms,
            .controller = "pool",
            .action = grow ? "grow" : "shrink",
            .group = std::move(d.group),
            .from = d.from,
            .to = d.to,
            .why = std::move(d.why),
            .applied = applied});
  }
}

void control_loop::run_grouping(std::int64_t now_ms) {
  const sample s = grouping_sensor_.take(now_ms);
  if (s.window_ms <= 0) return;
  if (spdlog::should_log(spdlog::level::trace))
    spdlog::trace("controller grouping: {}", describe(s));
  std::vector<grouping_decision> decisions;
  grouping_settings settings;
  {
    std::lock_guard lock(mutex_);
    settings = grouping_settings_;
    decisions = decide_grouping(s, grouping_state_, settings, flow_);
  }
  for (grouping_decision& d : decisions) {
    const bool fuse = d.action == grouping_decision::kind::fuse;
    const char* action = fuse ? "fuse" : "split";
    std::vector<runtime::stage_index> members;
    for (const std::string& name : d.stages) {
      if (auto i = stage_named(name)) members.push_back(*i);
    }
    std::string subject;
    for (const std::string& name : d.stages) subject += (subject.empty() ? "" : "+") + name;
    if (settings.dry_run) {
      last_dry_run& last = dry_runs_[std::string("grouping:") + action + ":" + subject];
      if (now_ms - last.at_ms < dry_run_repeat_ms && last.at_ms != 0) continue;
      last = {0, 0, now_ms};
    }
    const std::size_t before = pipe_.groups().size();
    std::string refused;
    if (!settings.dry_run) {
      std::lock_guard act(actuator_mutex_);
      if (members.size() != d.stages.size() || members.empty()) {
        refused = "names a stage the pipeline does not have";
      } else {
        refused = fuse ? apply_fuse(members) : apply_split(members.front());
      }
    }
    const bool applied = !settings.dry_run && refused.empty();
    const std::size_t after = applied ? pipe_.groups().size() : before;
    count("grouping", action);
    spdlog::info("controller grouping: {} {}{}{}: {}", action, fuse ? subject : subject + " out",
                 settings.dry_run ? " (dry run, not applied)" : "",
                 refused.empty() ? "" : " (not applied: " + refused + ")", d.why);
    record({.at_ms = now_ms,
            .controller = "grouping",
            .action = action,
            .group = subject,
            .from = before,
            .to = after,
            .why = std::move(d.why),
            .applied = applied});
  }
}

// --- the actuator -----------------------------------------------------------------------------

std::optional<runtime::stage_index> control_loop::stage_named(std::string_view name) const {
  for (std::size_t i = 0; i < pipe_.stage_count(); ++i) {
    if (pipe_.stage_name(static_cast<runtime::stage_index>(i)) == name)
      return static_cast<runtime::stage_index>(i);
  }
  return std::nullopt;
}

bool control_loop::blocking(runtime::stage_index s) const {
  return std::find(blocking_stages_.begin(), blocking_stages_.end(), pipe_.stage_name(s)) !=
         blocking_stages_.end();
}

bool control_loop::neighbours(runtime::stage_index a, runtime::stage_index b) const {
  const std::string &na = pipe_.stage_name(a), &nb = pipe_.stage_name(b);
  return std::any_of(flow_.begin(), flow_.end(), [&](const auto& e) {
    return (e.first == na && e.second == nb) || (e.first == nb && e.second == na);
  });
}

runtime::group* control_loop::regroup(const std::vector<runtime::stage_index>& members,
                                      std::size_t threads, std::size_t capacity) {
  std::string name;
  bool blocks = false;
  for (runtime::stage_index m : members) {
    name += (name.empty() ? "" : "+") + pipe_.stage_name(m);
    blocks = blocks || blocking(m);
  }
  // A group whose tasks block wakes a worker per task (see group::options::tasks_per_wake).
  return pipe_.regroup(members, {.name = name,
                                 .capacity = capacity,
                                 .threads = std::clamp<std::size_t>(threads, 1, max_threads),
                                 .tasks_per_wake = blocks ? 1u : 0u});
}

std::string control_loop::apply_fuse(const std::vector<runtime::stage_index>& stages) {
  // Everything the stages' groups run moves into one group.
  std::vector<runtime::group*> from;
  for (runtime::stage_index s : stages) {
    runtime::group* g = &pipe_.group_of(s);
    if (std::find(from.begin(), from.end(), g) == from.end()) from.push_back(g);
  }
  if (from.size() < 2) return "already in one group";
  std::vector<runtime::stage_index> members;
  std::size_t threads = 0, widest = 0, capacity = 0;
  bool blocks = false;
  for (runtime::group* g : from) {
    for (runtime::stage_index s : pipe_.stages_of(*g)) members.push_back(s);
    threads += g->threads();
    widest = std::max(widest, g->threads());
    capacity = std::max(capacity, g->capacity());
  }
  std::sort(members.begin(), members.end());
  for (runtime::stage_index s : members) blocks = blocks || blocking(s);
  // CPU-bound stages together want about one thread per core; a blocking stage keeps its pool.
  if (!blocks) threads = std::min(threads, std::max<std::size_t>(widest, cores_));
  return regroup(members, threads, capacity) != nullptr ? "" : "the pipeline is stopping";
}

std::string control_loop::apply_split(runtime::stage_index stage) {
  runtime::group& g = pipe_.group_of(stage);
  std::vector<runtime::stage_index> rest = pipe_.stages_of(g);
  std::erase(rest, stage);
  if (rest.empty()) return "it already runs alone";
  const std::size_t threads = g.threads(), capacity = g.capacity();
  // The leaving stage takes half the pool (all of it if it blocks: the pool was grown for it).
  const std::size_t leaving = blocking(stage) ? threads : std::max<std::size_t>(1, threads / 2);
  const std::size_t staying = blocking(stage) ? 1 : std::max<std::size_t>(1, threads - leaving);
  if (regroup({stage}, leaving, capacity) == nullptr) return "the pipeline is stopping";
  // What stays together must still be connected in the flow; each connected part gets a group.
  while (!rest.empty()) {
    std::vector<runtime::stage_index> part{rest.front()};
    rest.erase(rest.begin());
    for (std::size_t i = 0; i < part.size(); ++i) {
      for (auto it = rest.begin(); it != rest.end();) {
        if (neighbours(part[i], *it)) {
          part.push_back(*it);
          it = rest.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::sort(part.begin(), part.end());
    if (regroup(part, staying, capacity) == nullptr) return "the pipeline is stopping";
  }
  return "";
}

std::string control_loop::resize(std::string_view group, std::size_t threads) {
  if (threads < 1 || threads > max_threads)
    return fmt::format("threads: {} is out of range 1..{}", threads, max_threads);
  std::lock_guard act(actuator_mutex_);
  for (const auto& g : pipe_.groups()) {
    if (g->name() != group) continue;
    const std::size_t from = g->threads();
    g->resize(threads);
    count("admin", "resize");
    spdlog::info("admin: resize {} {} -> {} threads", group, from, threads);
    std::int64_t now;
    {
      std::lock_guard lock(mutex_);
      now = last_ms_;
    }
    record({.at_ms = now,
            .controller = "admin",
            .action = "resize",
            .group = std::string(group),
            .from = from,
            .to = threads,
            .why = "manual",
            .applied = true});
    return "";
  }
  std::vector<std::string> all;
  for (const auto& g : pipe_.groups()) all.push_back(g->name());
  std::sort(all.begin(), all.end());
  std::string names;
  for (const std::string& n : all) names += (names.empty() ? "" : ", ") + n;
  return fmt::format("group \"{}\" does not exist (groups now: {})", group, names);
}

std::string control_loop::fuse(std::string_view stage_a, std::string_view stage_b) {
  const auto a = stage_named(stage_a), b = stage_named(stage_b);
  if (!a || !b) return fmt::format("no stage named \"{}\"", !a ? stage_a : stage_b);
  std::lock_guard act(actuator_mutex_);
  if (&pipe_.group_of(*a) == &pipe_.group_of(*b))
    return fmt::format("{} and {} already share a group", stage_a, stage_b);
  // Neighbours: some stage of a's group hands tasks to some stage of b's (or back).
  const auto in_a = pipe_.stages_of(pipe_.group_of(*a));
  const auto in_b = pipe_.stages_of(pipe_.group_of(*b));
  const bool adjacent = std::any_of(in_a.begin(), in_a.end(), [&](runtime::stage_index x) {
    return std::any_of(in_b.begin(), in_b.end(),
                       [&](runtime::stage_index y) { return neighbours(x, y); });
  });
  if (!adjacent)
    return fmt::format(
        "{} and {} are not neighbours in the flow (their groups hand no tasks to each other)",
        stage_a, stage_b);
  return manual("fuse", fmt::format("{}+{}", stage_a, stage_b), [&] {
    return apply_fuse({*a, *b});
  });
}

std::string control_loop::split(std::string_view stage) {
  const auto s = stage_named(stage);
  if (!s) return fmt::format("no stage named \"{}\"", stage);
  std::lock_guard act(actuator_mutex_);
  return manual("split", std::string(stage), [&] { return apply_split(*s); });
}

std::string control_loop::manual(const char* action, std::string subject,
                                 const std::function<std::string()>& apply) {
  const std::size_t before = pipe_.groups().size();
  std::string refused = apply();
  if (!refused.empty()) return refused;
  const std::size_t after = pipe_.groups().size();
  spdlog::info("admin: {} {}: {} -> {} groups", action, subject, before, after);
  record_regroup(action, std::move(subject), before, after, "manual");
  return "";
}

void control_loop::record_regroup(std::string action, std::string group, std::size_t before,
                                  std::size_t after, std::string why) {
  count("admin", action);
  std::int64_t now;
  {
    std::lock_guard lock(mutex_);
    now = last_ms_;
    grouping_state_.last_change_ms = now;  // the grouping controller's cooldown counts it
  }
  record({.at_ms = now,
          .controller = "admin",
          .action = std::move(action),
          .group = std::move(group),
          .from = before,
          .to = after,
          .why = std::move(why),
          .applied = true});
}

std::string control_loop::apply_layout(
    const std::vector<std::pair<std::vector<runtime::stage_index>, runtime::group::options>>&
        layout) {
  std::vector<int> seen(pipe_.stage_count(), 0);
  for (const auto& [members, opts] : layout) {
    if (members.empty()) return fmt::format("group \"{}\" has no stages", opts.name);
    for (runtime::stage_index s : members) {
      if (s >= pipe_.stage_count()) return fmt::format("no stage number {}", s);
      if (seen[s]++ > 0) return fmt::format("{} is in two groups", pipe_.stage_name(s));
    }
  }
  for (std::size_t s = 0; s < seen.size(); ++s) {
    if (seen[s] == 0)
      return fmt::format("{} is in no group",
                         pipe_.stage_name(static_cast<runtime::stage_index>(s)));
  }
  std::lock_guard act(actuator_mutex_);
  for (const auto& [members, opts] : layout) {
    runtime::group& now = pipe_.group_of(members.front());
    if (pipe_.stages_of(now) == members && now.name() == opts.name &&
        now.capacity() == opts.capacity)
      continue;
    const std::size_t before = pipe_.groups().size();
    if (pipe_.regroup(members, opts) == nullptr) return "the pipeline is stopping";
    const std::size_t after = pipe_.groups().size();
    std::string stages;
    for (runtime::stage_index s : members)
      stages += (stages.empty() ? "" : "+") + pipe_.stage_name(s);
    spdlog::info("reload: group {} runs {} (threads {}, queue {}): {} -> {} groups", opts.name,
                 stages, opts.threads, opts.capacity, before, after);
    record_regroup("regroup", opts.name, before, after, "reload");
  }
  return "";
}

// --- settings, history, counts ----------------------------------------------------------------

pool_settings control_loop::pool() const {
  std::lock_guard lock(mutex_);
  return pool_settings_;
}

void control_loop::set_pool(const pool_settings& s) {
  {
    std::lock_guard lock(mutex_);
    pool_settings_ = s;
  }
  wake_.notify_all();  // a new period takes effect now
}

grouping_settings control_loop::grouping() const {
  std::lock_guard lock(mutex_);
  return grouping_settings_;
}

void control_loop::set_grouping(const grouping_settings& s) {
  {
    std::lock_guard lock(mutex_);
    grouping_settings_ = s;
  }
  wake_.notify_all();
}

admission_settings control_loop::admission() const {
  std::lock_guard lock(mutex_);
  return admission_settings_;
}

void control_loop::set_admission(const admission_settings& s) {
  {
    std::lock_guard lock(mutex_);
    admission_settings_ = s;
  }
  if (gate_ != nullptr) apply_to_gate(s);
  wake_.notify_all();
}

void control_loop::apply_to_gate(const admission_settings& s) {
  using std::chrono::nanoseconds;
  const auto ns = [](auto d) { return std::chrono::duration_cast<nanoseconds>(d).count(); };
  gate_->set_target_ns(static_cast<std::uint64_t>(ns(s.target)));
  // Per request, so dry run cannot log each refusal it would make: it refuses none.
  const bool refusing = s.enabled && !s.dry_run;
  gate_->set_queue_delay(refusing ? ns(s.queue_delay) : 0, ns(s.queue_interval));
}

std::vector<decision_record> control_loop::recent() const {
  std::lock_guard lock(mutex_);
  return {recent_.begin(), recent_.end()};
}

std::vector<action_count> control_loop::actions() const {
  std::lock_guard lock(mutex_);
  std::vector<action_count> out;
  for (const auto& [key, n] : counts_) out.push_back({key.first, key.second, n});
  return out;
}

std::uint64_t control_loop::pool_actions(bool grow) const {
  std::lock_guard lock(mutex_);
  return counts_.at({"pool", grow ? "grow" : "shrink"});
}

void control_loop::record(decision_record d) {
  std::lock_guard lock(mutex_);
  recent_.push_back(std::move(d));
  while (recent_.size() > history_) recent_.pop_front();
}

void control_loop::count(const std::string& controller, const std::string& action) {
  std::lock_guard lock(mutex_);
  ++counts_[{controller, action}];
}

}  // namespace weir::controllers
