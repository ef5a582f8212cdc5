#include "runnel/autoscaler/autoscaler.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "runnel/autoscaler/policy.hpp"
#include "runnel/broker/group_lease.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/protocol_errors.hpp"
#include "runnel/kafka/admin.hpp"

namespace runnel::autoscaler {
namespace {

using Clock = std::chrono::steady_clock;

// Rates and service time are exponentially weighted over about this long: long enough that a
// steady load reads steady, short enough to follow a change within a few seconds. (Bursts do not
// wait for it: the backlog term reacts to what is queued now.)
constexpr double kRateTimeConstantS = 2.0;

double Ewma(double old, double sample, double dt_s) {
  const double alpha = 1.0 - std::exp(-dt_s / kRateTimeConstantS);
  return old + alpha * (sample - old);
}

std::int64_t NowEpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class Autoscaler::Loop {
 public:
  explicit Loop(Options o) : opt_(std::move(o)), log_(log::kAutoscaler.Logger()) {
    if (opt_.backend == nullptr) throw ConfigError("autoscaler: no worker backend");
    if (!opt_.protocol_errors) opt_.protocol_errors = std::make_shared<ProtocolErrors>();
    admin_ = std::make_unique<kafka::Admin>(opt_.kafka);
  }
  ~Loop() { Stop(); }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  struct Fn {
    FunctionSpec spec;
    std::string endpoint;
    std::function<broker::DispatcherStats()> stats_fn;
    std::atomic<bool> waiting{false};  // set by the dispatcher's thread
    // Measurements.
    broker::DispatcherStats stats;
    std::vector<kafka::PartitionOffsets> offsets;
    Clock::time_point next_lag{};
    Clock::time_point last_sample{};
    std::int64_t last_received = -1, last_results = 0, last_service_us = 0;
    double arrival = 0, completion = 0, service_s = 0;
    Backlog backlog;
    // Decisions.
    DesireWindow window;
    Clock::time_point last_active{};
    bool ever_active = false;
    int desired = 0;
    Decision decision;
    std::int64_t changes = 0;  // times the desired count changed
    std::optional<std::int64_t> received_at_decision;
  };

  Waker Add(const FunctionSpec& spec) {
    auto& f = fns_.emplace_back(std::make_unique<Fn>());
    f->spec = spec;
    f->desired = 0;
    Fn* raw = f.get();
    const EventNotifier* wake = &wake_;
    return [raw, wake] {
      if (!raw->waiting.exchange(true)) wake->Notify();
    };
  }

  void Connect(const std::string& name, std::string endpoint,
               std::function<broker::DispatcherStats()> stats) {
    for (auto& f : fns_) {
      if (f->spec.name == name) {
        f->endpoint = std::move(endpoint);
        f->stats_fn = std::move(stats);
        return;
      }
    }
    throw ConfigError(fmt::format("autoscaler: no function '{}'", name));
  }

  void Start() {
    running_.store(true);
    thread_ = std::thread([this] {
      // No end of this thread goes unnoticed: without it no worker starts or restarts and status
      // ages, so a fault is the stack's to handle (runnel up exits).
      std::string failure;
      try {
        Run();
        if (!stop_.load()) failure = "its loop ended without being asked to stop";
      } catch (const std::exception& e) {
        failure = e.what();
      } catch (...) {
        failure = "an unknown exception";
      }
      running_.store(false);
      if (failure.empty()) return;
      log_->critical("autoscaler stopped by an error: {}", failure);
      if (opt_.on_failure) opt_.on_failure(failure);
    });
  }

  void Stop() {
    if (!thread_.joinable()) return;
    stop_.store(true);
    wake_.Notify();
    thread_.join();
  }

  nlohmann::json Status() const {
    std::unique_lock lock(status_mu_);
    return StatusAsOf(lock, false);
  }

  nlohmann::json FreshStatus(std::chrono::milliseconds within) {
    std::unique_lock lock(status_mu_);
    if (!running_.load() || stop_.load()) return StatusAsOf(lock, false);
    const std::uint64_t asked_at = status_version_;
    status_wanted_.store(true);
    wake_.Notify();
    const bool fresh = status_cv_.wait_for(lock, within, [&] { return status_version_ != asked_at; });
    return StatusAsOf(lock, fresh);
  }

 private:
  void Run() {
    for (auto& f : fns_) {
      if (!f->endpoint.empty()) opt_.backend->Prepare(f->spec.name, f->endpoint);
    }
    auto next_tick = Clock::now();
    while (!stop_.load()) {
      failpoint::Hit("autoscaler.loop");
      const auto now = Clock::now();
      const auto wait = std::max(std::chrono::milliseconds(0),
                                 std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now));
      std::vector<zmq::pollitem_t> items = {{nullptr, wake_.Fd(), ZMQ_POLLIN, 0}};
      zmq::poll(items.data(), items.size(), wait);
      if (stop_.load()) break;
      bool woken = false;
      if (items[0].revents & ZMQ_POLLIN) {
        wake_.Drain();
        woken = true;
      }
      const auto t = Clock::now();
      if (woken) {
        // Only the functions whose dispatcher asked; the others wait for the tick.
        for (auto& f : fns_) {
          if (f->waiting.load()) Scale(*f, t, false);
        }
      }
      const bool tick = t >= next_tick;
      if (tick) {
        opt_.backend->Tick();
        for (auto& f : fns_) Scale(*f, t, true);
        next_tick = t + opt_.tick;
      }
      // Every tick, and at once for a FreshStatus waiting on one (one publish serves both).
      if (status_wanted_.exchange(false) || tick) PublishStatus();
    }
  }

  void Measure(Fn& f, Clock::time_point now) {
    if (!f.stats_fn) return;
    f.stats = f.stats_fn();
    if (now >= f.next_lag) {
      try {
        const auto t0 = Clock::now();
        f.offsets = admin_->Offsets(f.spec.topic, f.spec.Group(), std::chrono::seconds(2));
        log_->debug("function {}: reading the lag took {:.1f} ms", f.spec.name,
                    std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      } catch (const Error& e) {
        log_->debug("function {}: could not read the lag: {}", f.spec.name, e.what());
      }
      f.next_lag = now + opt_.lag_interval;
    }
    const double dt = std::chrono::duration<double>(now - f.last_sample).count();
    if (f.last_received < 0) {
      f.last_received = f.stats.received;
      f.last_results = f.stats.results;
      f.last_service_us = f.stats.service_us;
      f.last_sample = now;
      return;
    }
    if (dt < 0.02) return;  // too short to be a rate
    const auto received = f.stats.received - f.last_received;
    const auto results = f.stats.results - f.last_results;
    const auto service_us = f.stats.service_us - f.last_service_us;
    f.arrival = Ewma(f.arrival, static_cast<double>(received) / dt, dt);
    f.completion = Ewma(f.completion, static_cast<double>(results) / dt, dt);
    if (results > 0) {
      const double sample = static_cast<double>(service_us) / 1e6 / static_cast<double>(results);
      f.service_s = f.service_s == 0 ? sample : Ewma(f.service_s, sample, dt);
    }
    f.last_received = f.stats.received;
    f.last_results = f.stats.results;
    f.last_service_us = f.stats.service_us;
    f.last_sample = now;
  }

  void Scale(Fn& f, Clock::time_point now, bool measure) {
    if (f.endpoint.empty()) return;
    const bool waiting = f.waiting.exchange(false);
    if (measure || f.last_received < 0) Measure(f, now);
    // Events arrived for a function without workers: what the dispatcher has consumed is known now,
    // but a larger backlog may still sit in Kafka. Read the lag at the next tick, not up to a lag
    // interval later, so the count for the whole backlog is reached within one tick.
    if (waiting) f.next_lag = now;
    if (f.stats.shared) {
      // Other stacks serve the rest of a shared function's partitions: only this stack's count here.
      std::vector<kafka::PartitionOffsets> owned;
      for (const auto& p : f.offsets) {
        if (std::find(f.stats.owned.begin(), f.stats.owned.end(), p.partition) != f.stats.owned.end())
          owned.push_back(p);
      }
      f.backlog = MeasureBacklog(owned, f.stats.positions, static_cast<std::int64_t>(f.stats.queued));
    } else {
      f.backlog = MeasureBacklog(f.offsets, f.stats.positions, static_cast<std::int64_t>(f.stats.queued));
    }
    PolicyInput in;
    in.spec = f.spec.scaling;
    in.load.backlog = f.backlog.waiting;
    in.load.in_flight = static_cast<std::int64_t>(f.stats.in_flight);
    in.load.arrival_per_s = f.arrival;
    in.load.service_s = f.service_s;
    in.load.concurrency = f.spec.concurrency;
    // Arriving: the dispatcher said so, or it consumed events since the previous decision.
    in.load.arriving = waiting || (f.received_at_decision && *f.received_at_decision != f.stats.received);
    f.received_at_decision = f.stats.received;
    if (waiting && in.load.backlog == 0) in.load.backlog = 1;  // its stats have not caught up yet
    if (in.load.backlog > 0 || in.load.in_flight > 0 || in.load.arriving || f.stats.pending > 0) {
      f.last_active = now;
      f.ever_active = true;
    }
    in.current = f.desired;
    in.ever_active = f.ever_active;
    in.idle_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - f.last_active);
    in.window_max = f.window.Max(now, f.spec.scaling.stabilization);
    const Decision d = Decide(in);
    f.window.Add(now, d.wanted);
    if (d.desired != f.desired) {
      ++f.changes;
      log_->info("function {}: {} -> {} worker(s): {}", f.spec.name, f.desired, d.desired, d.reason);
    }
    f.desired = d.desired;
    f.decision = d;
    Act(f);
  }

  void Act(Fn& f) {
    auto list = opt_.backend->List(f.spec.name);
    std::vector<WorkerInfo> alive;
    for (auto& w : list) {
      if (w.state != WorkerState::kStopping) alive.push_back(std::move(w));
    }
    const int have = static_cast<int>(alive.size());
    for (int n = have; n < f.desired; ++n) {
      try {
        opt_.backend->Start(f.spec.name, f.endpoint);
      } catch (const Error& e) {
        log_->error("function {}: cannot start a worker: {}", f.spec.name, e.what());
        return;
      }
    }
    if (have <= f.desired) return;
    // Stop first what is not running (backoff, crash loop), then the least busy.
    auto busy = [&](const WorkerInfo& w) -> std::int64_t {
      if (w.pid <= 0) return -1;
      auto it = f.stats.workers.find(w.id);
      return it == f.stats.workers.end() ? 0 : it->second.in_flight;
    };
    std::stable_sort(alive.begin(), alive.end(),
                     [&](const auto& a, const auto& b) { return busy(a) < busy(b); });
    const auto grace = f.spec.timeout + std::chrono::seconds(2);
    for (int n = 0; n < have - f.desired; ++n) {
      log_->info("function {}: stopping worker {} (pid {}), it drains first", f.spec.name, alive[n].id,
                 alive[n].pid);
      opt_.backend->Stop(alive[n].id, grace);
    }
  }

  // The status as of now, for Status() and FreshStatus() (which may be waiting for it).
  void PublishStatus() {
    auto status = StatusJson();
    {
      std::lock_guard lock(status_mu_);
      status_ = std::move(status);
      status_at_ = Clock::now();
      ++status_version_;
    }
    status_cv_.notify_all();
  }

  // The last status published, with what is read at the moment of asking; age 0 when `fresh` (it
  // was made for this request).
  nlohmann::json StatusAsOf(std::unique_lock<std::mutex>& lock, bool fresh) const {
    nlohmann::json out = status_;
    const auto at = status_at_;
    lock.unlock();
    out["age_ms"] =
        fresh ? 0 : std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - at).count();
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& c : opt_.protocol_errors->Snapshot()) {
      errors.push_back({{"socket", c.socket}, {"reason", c.reason}, {"count", c.count}});
    }
    out["protocol_errors"] = std::move(errors);
    if (opt_.components) out["components"] = opt_.components();
    if (opt_.security) out["security"] = opt_.security();
    return out;
  }

  // The loop's part of the status (docs/protocol.md §4.4): every function; StatusAsOf adds the
  // rest.
  nlohmann::json StatusJson() const {
    const auto now_ms = NowEpochMs();
    nlohmann::json functions = nlohmann::json::array();
    for (const auto& fp : fns_) functions.push_back(FunctionJson(*fp, now_ms));
    return {{"functions", std::move(functions)}};
  }

  // What the backend lists of a function's workers, joined with what its dispatcher knows of them.
  struct WorkersJson {
    nlohmann::json list = nlohmann::json::array();
    int restarts = 0;
    bool crash_loop = false;
    int running = 0;
  };
  WorkersJson WorkersOf(const Fn& f) const {
    const auto& st = f.stats;
    WorkersJson out;
    const auto listed = opt_.backend->List(f.spec.name);
    // An orchestrator's entries (pid 0) are replicas asked for, not workers the dispatcher can
    // name: as many of them count as joined as there are joined workers no entry names.
    std::size_t unnamed_joined = st.workers.size();
    for (const auto& w : listed) {
      if (st.workers.count(w.id) != 0 && unnamed_joined > 0) --unnamed_joined;
    }
    for (const auto& w : listed) {
      out.restarts += w.restarts;
      std::string state(WorkerStateName(w.state));
      nlohmann::json j = {{"id", w.id},
                          {"pid", w.pid},
                          {"restarts", w.restarts},
                          {"last_exit", w.last_exit},
                          {"log", w.log_file},
                          {"in_flight", 0},
                          {"cpu_s", w.cpu_s},
                          {"wall_s", w.wall_s},
                          {"rss_kb", w.rss_kb},
                          {"peak_rss_kb", w.peak_rss_kb},
                          {"start", w.from_standby ? "standby" : "exec"}};
      auto it = st.workers.find(w.id);
      if (w.state == WorkerState::kCrashLoop) out.crash_loop = true;
      if (w.state != WorkerState::kStopping) ++out.running;
      if (it != st.workers.end()) {
        j["in_flight"] = it->second.in_flight;
        j["completed"] = it->second.completed;
        if (w.rss_kb == 0) j["rss_kb"] = it->second.rss_kb;  // the backend could not measure it
        if (it->second.draining) state = "draining";
      } else if (w.state == WorkerState::kRunning && w.pid == 0 && unnamed_joined > 0) {
        --unnamed_joined;  // a replica whose worker joined under its own id (host-pid)
      } else if (w.state == WorkerState::kRunning) {
        state = "starting";  // its process runs but it has not joined the dispatcher yet
      }
      j["state"] = state;
      out.list.push_back(std::move(j));
    }
    return out;
  }

  // Who last committed each partition of the function's group, from the leases in the commits'
  // metadata (broker/group_lease.hpp): this stack, and other stacks serving the same function
  // against the same Kafka (live while their lease is fresh and they did not stop).
  nlohmann::json StacksOf(const Fn& f, std::int64_t now_ms) const {
    std::vector<std::pair<std::int32_t, std::string>> committed;
    for (const auto& p : f.offsets) {
      if (p.committed) committed.emplace_back(p.partition, p.committed_metadata);
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& h : broker::LeaseHolders(committed)) {
      const bool self = h.lease.stack == opt_.stack_id;
      out.push_back({{"stack", h.lease.stack},
                     {"self", self},
                     {"host", h.lease.host},
                     {"pid", h.lease.pid},
                     {"shared", h.lease.shared},
                     {"live", self || broker::LiveOtherStack(h.lease, opt_.stack_id, now_ms)},
                     {"stopped", h.lease.stopped},
                     {"age_ms", std::max<std::int64_t>(0, now_ms - h.lease.at_ms)},
                     {"partitions", h.partitions}});
    }
    return out;
  }

  // One function's entry of the status: lag, rates, counts, usage, scaling, workers, standby.
  nlohmann::json FunctionJson(const Fn& f, std::int64_t now_ms) const {
    const auto& st = f.stats;
    std::int64_t lag = 0;
    for (const auto& p : f.offsets) lag += p.Lag();
    WorkersJson workers = WorkersOf(f);
    const auto& sc = f.spec.scaling;
    const Usage usage = opt_.backend->UsageOf(f.spec.name);
    nlohmann::json out = {
        {"name", f.spec.name},
        {"topic", f.spec.topic},
        {"partitions", f.offsets.size()},
        {"lag", lag},
        {"backlog", f.backlog.waiting},
        {"oldest_age_ms",
         st.oldest_pending_ms >= 0 ? std::max<std::int64_t>(0, now_ms - st.oldest_pending_ms) : 0},
        {"arrival_per_s", f.arrival},
        {"completion_per_s", f.completion},
        {"service_ms", f.service_s * 1000},
        {"queued", st.queued},
        {"in_flight", st.in_flight},
        {"desired", f.desired},
        {"running", workers.running},
        {"joined", st.workers.size()},
        {"reason", f.decision.reason},
        {"scale_changes", f.changes},
        {"crash_loop", workers.crash_loop},
        {"restarts", workers.restarts},
        {"received", st.received},
        {"succeeded", st.succeeded},
        {"errors", st.errors},
        {"dead_lettered", st.dead_lettered},
        {"retries", st.retries},
        {"attempts", st.attempts},
        {"redispatched", st.redispatched},
        {"workers_lost", st.workers_lost},
        {"blocked", st.blocked},
        {"blocked_reason", st.blocked_reason},
        {"records_refused", st.records_refused},
        {"filtered", st.filtered},
        {"traceparent_invalid", st.traceparent_invalid},
        // scaling.shared: the partitions the group gives this stack now (all of them otherwise).
        {"shared", st.shared},
        {"partitions_owned", st.shared ? nlohmann::json(st.owned) : nlohmann::json(nullptr)},
        {"rebalances", st.rebalances},
        {"handed_off", st.handed_off},
        {"stacks", StacksOf(f, now_ms)},
        {"usage",
         {{"invocations", st.attempts},
          {"worker_seconds", usage.wall_s},
          {"cpu_seconds", usage.cpu_s},
          {"peak_rss_kb", usage.peak_rss_kb},
          {"workers_started", usage.workers_started},
          {"restarts", usage.restarts}}},
        {"retention_lost", std::max(st.retention_lost, f.backlog.lost)},
        {"scaling",
         {{"min", sc.min},
          {"max", sc.max},
          {"warm", sc.warm},
          {"target_drain_ms", sc.target_drain.count()},
          {"idle_to_zero_ms", sc.idle_to_zero.count()},
          {"stabilization_ms", sc.stabilization.count()}}},
        {"workers", std::move(workers.list)},
    };
    if (const auto standby = opt_.backend->StandbyOf(f.spec.name)) {
      out["standby"] = {{"state", standby->state},
                        {"pid", standby->pid},
                        {"rss_kb", standby->rss_kb},
                        {"used", standby->used},
                        {"exec_starts", standby->exec_starts},
                        {"ended", standby->ended},
                        {"last_exit", standby->last_exit}};
    }
    if (const auto o = opt_.backend->OrchestratorOf(f.spec.name)) {
      out["orchestrator"] = {{"kind", o->kind},
                             {"target", o->target},
                             {"replicas_set", o->replicas_set},
                             {"spec_replicas", o->spec_replicas},
                             {"replicas", o->replicas},
                             {"applied", o->applied},
                             {"error", o->error},
                             {"failures", o->failures}};
    }
    return out;
  }

  Options opt_;
  std::shared_ptr<spdlog::logger> log_;
  EventNotifier wake_{"autoscaler"};
  std::unique_ptr<kafka::Admin> admin_;
  std::deque<std::unique_ptr<Fn>> fns_;
  mutable std::mutex status_mu_;
  nlohmann::json status_ = {{"functions", nlohmann::json::array()}};
  Clock::time_point status_at_ = Clock::now();
  std::uint64_t status_version_ = 0;  // how many statuses were published
  std::condition_variable status_cv_;
  std::atomic<bool> status_wanted_{false};  // FreshStatus waits for one
  std::atomic<bool> running_{false};        // the loop's thread runs (FreshStatus may wait for it)
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

Autoscaler::Autoscaler(Options options) : loop_(std::make_unique<Loop>(std::move(options))) {}
Autoscaler::~Autoscaler() = default;
Autoscaler::Waker Autoscaler::Add(const FunctionSpec& spec) { return loop_->Add(spec); }
void Autoscaler::Connect(const std::string& function, std::string endpoint,
                         std::function<broker::DispatcherStats()> stats) {
  loop_->Connect(function, std::move(endpoint), std::move(stats));
}
nlohmann::json Autoscaler::Status() const { return loop_->Status(); }
nlohmann::json Autoscaler::FreshStatus(std::chrono::milliseconds within) {
  return loop_->FreshStatus(within);
}
void Autoscaler::Start() { loop_->Start(); }
void Autoscaler::Stop() { loop_->Stop(); }

}  // namespace runnel::autoscaler
