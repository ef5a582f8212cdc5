#include "runnel/core/json.hpp"
#include "runnel/broker/dispatcher.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "dispatcher_state.hpp"
#include "runnel/broker/admin.hpp"
#include "runnel/broker/dispatch_queue.hpp"
#include "runnel/broker/offset_tracker.hpp"
#include "runnel/broker/producer.hpp"
#include "runnel/core/errc.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/wire.hpp"

namespace runnel::broker {
namespace {

constexpr std::size_t kConsumeBatch = 512;
constexpr auto kDeadlineScan = std::chrono::milliseconds(50);
constexpr auto kCommitInterval = std::chrono::milliseconds(200);
constexpr auto kRecommitInterval = std::chrono::seconds(1);
constexpr auto kStatsInterval = std::chrono::milliseconds(100);
// A buffer full for this long (workers stuck or gone) pauses the partitions, which also drops what
// librdkafka prefetched. A short spell of full buffer only stops reading: librdkafka 2.0 resumes
// fetching a resumed partition only on its broker thread's next 1 s tick, so pausing on every
// spell would stall a busy function for up to a second each time.
constexpr auto kPauseAfterFull = std::chrono::seconds(2);
// Beyond the function's timeout, how long the dispatcher lets a worker's own watchdog act first.
constexpr auto kDeadlineGrace = std::chrono::milliseconds(500);

std::string_view View(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

zmq::message_t Frame(std::string_view s) { return zmq::message_t(s.data(), s.size()); }

}  // namespace

class Dispatcher::Loop {
 public:
  explicit Loop(Options options);
  ~Loop();
  void Run();
  void RequestStop(std::chrono::milliseconds drain) {
    drain_ms_ = drain.count();
    stop_.store(true);
  }
  std::thread thread;
  std::string endpoint;
  DispatcherStats Snapshot() const {
    std::lock_guard lock(stats_mu_);
    return published_stats_;
  }

 private:
  // Kafka side.
  void ConsumeKafka(bool& more);
  void OnRecord(Message msg);
  void CheckRetentionGap(const Message& msg);
  void Commit(bool sync, bool all = false);
  void FlowControl();
  // Worker side.
  void ReceiveFromWorkers();
  void OnHello(const std::string& identity, const std::vector<zmq::message_t>& frames);
  void OnResults(Worker& w, const std::vector<zmq::message_t>& frames);
  void WorkerLost(const std::string& identity, const std::string& reason);
  void Dispatch();
  // Events per call and the wait to fill a call (the stack settles spec.batch; unset: one per call).
  BatchConfig Batch() const { return opt_.spec.batch.value_or(BatchConfig{}); }
  void Send(const std::string& identity, std::vector<zmq::message_t> frames);
  // Sends frames whose first one is the routing identity.
  void SendRouted(const std::string& identity, std::vector<zmq::message_t>& frames);
  void Heartbeats(Clock::time_point now);
  void CheckDeadlines(Clock::time_point now);
  void DueRetries(Clock::time_point now);
  // Outcomes.
  void Fail(std::uint64_t slot_id, Errc code, const std::string& message);
  void Finish(std::uint64_t slot_id, OutcomeStatus status, const std::string& kind, const std::string& error,
              std::string output = {}, std::string content_type = {}, std::string files_json = {},
              std::int64_t duration_us = 0, const std::string& worker = {},
              std::vector<wire::EmitRecord> emitted = {});
  void BuildPipeline(Slot& slot, std::vector<wire::EmitRecord> emitted);
  void ProducePipelineRecord(std::uint64_t slot_id, std::size_t index);
  void AfterPipeline(std::uint64_t slot_id);
  void ProduceDeadLetter(std::uint64_t slot_id);
  void ProduceResult(std::uint64_t slot_id);
  void HandleCompletions();
  void Complete(std::uint64_t slot_id);
  void PublishStats();
  void Completed(std::uint64_t slot_id, int stage, bool ok, std::string error, std::size_t index = 0);

  Options opt_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Consumer> consumer_;
  std::unique_ptr<Producer> producer_;  // dead letters and the results topic, acks=all
  std::vector<TopicPartitionOffset> assigned_;
  zmq::socket_t router_;
  std::optional<zmq::socket_t> pub_;
  int completion_fd_ = -1;

  OffsetTracker tracker_;
  DispatchQueue queue_;
  std::unordered_map<std::uint64_t, Slot> slots_;
  std::unordered_map<std::uint64_t, std::uint64_t> by_token_;  // dispatch token -> slot
  std::map<std::string, Worker> workers_;                      // by routing identity
  std::map<std::int32_t, std::int64_t> expected_next_;         // per partition, for gap detection
  using Due = std::pair<Clock::time_point, std::uint64_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> retries_;
  // Reused from turn to turn (cleared, capacity kept): allocations of a few KB per turn made glibc
  // consolidate its free lists each time, a tenth of this thread's time at 100,000 events/s.
  std::vector<zmq::message_t> received_;
  std::map<std::string, std::vector<zmq::message_t>> batches_;  // TASKS per worker identity
  std::uint64_t next_slot_ = 1;
  std::uint64_t next_token_ = 1;
  std::mt19937 rng_{std::random_device{}()};
  bool full_ = false;    // max_buffered events pending: not reading from the consumer
  bool paused_ = false;  // the partitions are paused (full for kPauseAfterFull, or stopping)
  Clock::time_point full_since_{};

  struct CompletionMsg {
    std::uint64_t slot;
    int stage;  // 1 dead letter, 2 results record, 3 pipeline record `index` acknowledged
    bool ok;
    std::string error;
    std::size_t index = 0;
  };
  std::mutex completions_mu_;
  std::vector<CompletionMsg> completions_;

  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> drain_ms_{10'000};
  DispatcherStats stats_;
  mutable std::mutex stats_mu_;
  DispatcherStats published_stats_;
  Clock::time_point next_heartbeat_{}, next_deadline_scan_{}, next_commit_{}, next_recommit_{}, next_stats_{};
};

Dispatcher::Loop::Loop(Options options)
    : opt_(std::move(options)), log_(log::Get("broker")), router_(*opt_.zmq, zmq::socket_type::router) {
  const FunctionSpec& spec = opt_.spec;
  if (opt_.slice_count < 1 || opt_.slice_index < 0 || opt_.slice_index >= opt_.slice_count) {
    throw ConfigError(fmt::format("dispatcher {}: slice {}/{} is not valid", spec.name, opt_.slice_index, opt_.slice_count));
  }
  Admin admin(opt_.kafka);
  for (std::int32_t p : admin.Partitions(spec.topic)) {
    if (p % opt_.slice_count == opt_.slice_index) assigned_.push_back({spec.topic, p, kOffsetStored});
  }
  consumer_ = std::make_unique<Consumer>(opt_.kafka, Consumer::Options{spec.Group(), "earliest", opt_.fetch_wait_max});
  // Where each partition resumes: gaps after it are records the broker dropped unprocessed.
  for (const auto& tp : consumer_->Committed(assigned_)) {
    if (tp.offset >= 0) expected_next_[tp.partition] = tp.offset;
  }
  consumer_->Assign(assigned_);
  producer_ = std::make_unique<Producer>(opt_.kafka);

  router_.set(zmq::sockopt::router_mandatory, 1);
  router_.set(zmq::sockopt::sndhwm, 0);  // bounded by credit, not by the socket
  router_.set(zmq::sockopt::rcvhwm, 0);
  router_.set(zmq::sockopt::linger, 0);
  router_.bind(opt_.bind);
  endpoint = router_.get(zmq::sockopt::last_endpoint);
  if (!opt_.results_endpoint.empty()) {
    pub_.emplace(*opt_.zmq, zmq::socket_type::pub);
    pub_->set(zmq::sockopt::linger, 1000);
    pub_->set(zmq::sockopt::sndhwm, 10'000);  // a burst of outcomes while the feed's proxy is descheduled
    pub_->connect(opt_.results_endpoint);
  }
  completion_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (completion_fd_ < 0) throw Error("dispatcher: cannot create an eventfd", true);
  log_->info("dispatcher {}: topic {} partitions {}, group {}, workers connect to {}", spec.name, spec.topic,
             assigned_.size(), spec.Group(), endpoint);
}

Dispatcher::Loop::~Loop() {
  if (completion_fd_ >= 0) ::close(completion_fd_);
}

void Dispatcher::Loop::Run() {
  const int kafka_fd = consumer_->WakeFd();
  bool more_kafka = true;
  std::optional<Clock::time_point> drain_until;
  for (;;) {
    const auto now = Clock::now();
    if (stop_.load() && !drain_until) {
      drain_until = now + std::chrono::milliseconds(drain_ms_.load());
      if (!paused_) consumer_->Pause(assigned_);
      paused_ = true;
      log_->info("dispatcher {}: stopping; waiting for {} event(s) at workers", opt_.spec.name, by_token_.size());
    }
    if (drain_until && (by_token_.empty() || now >= *drain_until)) break;

    // The consumer's descriptor is watched only while reading: with a full buffer its queue stays
    // readable and would spin this loop.
    const bool reading = !drain_until && !full_ && !paused_;
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, completion_fd_, ZMQ_POLLIN, 0},
                               {nullptr, kafka_fd, ZMQ_POLLIN, 0}};
    const auto timeout = (more_kafka && reading) ? std::chrono::milliseconds(0) : std::chrono::milliseconds(20);
    zmq::poll(items, reading ? 3 : 2, timeout);
    if (items[1].revents & ZMQ_POLLIN) {
      std::uint64_t ignored;
      (void)!::read(completion_fd_, &ignored, sizeof ignored);
    }
    if (reading) {
      if (items[2].revents & ZMQ_POLLIN) consumer_->DrainWakeFd();
      ConsumeKafka(more_kafka);
    }
    ReceiveFromWorkers();
    HandleCompletions();
    const auto t = Clock::now();
    DueRetries(t);
    Heartbeats(t);
    CheckDeadlines(t);
    if (!drain_until) {
      Dispatch();
      FlowControl();
    }
    if (t >= next_commit_) {
      const bool all = t >= next_recommit_;
      Commit(false, all);
      next_commit_ = t + kCommitInterval;
      if (all) next_recommit_ = t + kRecommitInterval;
    }
    if (t >= next_stats_) {
      PublishStats();
      next_stats_ = t + kStatsInterval;
    }
  }
  HandleCompletions();
  Commit(true, true);
  PublishStats();
  log_->info("dispatcher {}: stopped ({} consumed, {} ok, {} error, {} dead-letter, {} not finished)", opt_.spec.name,
             stats_.received, stats_.succeeded, stats_.failed, stats_.dead_lettered, tracker_.Pending());
}

// ---- Kafka side ----

void Dispatcher::Loop::ConsumeKafka(bool& more) {
  auto batch = consumer_->PollBatch(kConsumeBatch, std::chrono::milliseconds(0));
  more = batch.size() == kConsumeBatch;
  for (auto& msg : batch) OnRecord(std::move(msg));
}

void Dispatcher::Loop::CheckRetentionGap(const Message& msg) {
  auto it = expected_next_.find(msg.partition);
  if (it != expected_next_.end() && msg.offset > it->second) {
    // Offsets can be skipped legitimately (compaction, transaction markers): count only what the
    // broker's log start has passed.
    std::int64_t log_start = msg.offset;
    try {
      log_start = consumer_->Watermarks(msg.topic, msg.partition, std::chrono::seconds(2)).first;
    } catch (const Error& e) {
      log_->warn("dispatcher {}: could not check a gap in {}[{}]: {}", opt_.spec.name, msg.topic, msg.partition, e.what());
    }
    const std::int64_t lost = std::min(msg.offset, log_start) - it->second;
    if (lost > 0) {
      stats_.retention_lost += lost;
      log_->error("dispatcher {}: LOST {} event(s): {}[{}] offsets {}..{} were dropped by the broker (retention) "
                  "before Runnel processed them",
                  opt_.spec.name, lost, msg.topic, msg.partition, it->second, it->second + lost - 1);
    }
  }
  expected_next_[msg.partition] = std::max(msg.offset + 1, it != expected_next_.end() ? it->second : 0);
}

void Dispatcher::Loop::OnRecord(Message msg) {
  CheckRetentionGap(msg);
  if (!tracker_.Add(msg.partition, msg.offset)) return;  // a redelivery of something we hold or did
  ++stats_.received;
  const std::uint64_t slot_id = next_slot_++;
  Slot& slot = slots_[slot_id];
  slot.msg = std::move(msg);
  slot.id = fmt::format("{}-{}-{}", slot.msg.topic, slot.msg.partition, slot.msg.offset);
  try {
    slot.envelope = Envelope::Decode(slot.msg.headers);
  } catch (const EnvelopeError& e) {
    if (opt_.observer) opt_.observer->Received(slot_id, slot.id, slot.msg);
    Finish(slot_id, OutcomeStatus::kError, "malformed-envelope", e.what());
    return;
  }
  if (!slot.envelope.id.empty()) slot.id = slot.envelope.id;
  slot.attempt = slot.envelope.attempt;
  if (opt_.observer) opt_.observer->Received(slot_id, slot.id, slot.msg);
  if (slot.envelope.hop > limits::kMaxHops) {
    Finish(slot_id, OutcomeStatus::kDeadLetter, "recursion",
           fmt::format("hop count {} is over the limit of {}: a function probably triggers itself", slot.envelope.hop,
                       limits::kMaxHops));
    return;
  }
  if (slot.msg.value.size() > opt_.spec.max_payload) {
    Finish(slot_id, OutcomeStatus::kError, "limit-exceeded",
           fmt::format("payload is {} bytes, over the function's max_payload of {}", slot.msg.value.size(),
                       opt_.spec.max_payload));
    return;
  }
  if (slot.envelope.deadline_ms) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    if (*slot.envelope.deadline_ms <= now_ms) {
      Finish(slot_id, OutcomeStatus::kError, "timeout", "the event's deadline passed before it could run");
      return;
    }
  }
  queue_.Push(slot_id, slot.msg.key);
  if (workers_.empty()) {
    ++stats_.no_worker_waits;
    if (opt_.on_event_without_workers) opt_.on_event_without_workers();
  }
}

void Dispatcher::Loop::Commit(bool sync, bool all) {
  std::vector<TopicPartitionOffset> offsets;
  for (const auto& [partition, offset] : tracker_.TakeChangedCommits(all)) {
    offsets.push_back({opt_.spec.topic, partition, offset});
  }
  if (offsets.empty()) return;
  if (!sync) {
    consumer_->CommitOffsetsAsync(offsets);
    return;
  }
  try {
    consumer_->CommitOffsets(offsets);
  } catch (const Error& e) {
    log_->error("dispatcher {}: final commit failed ({}); those events will be consumed again", opt_.spec.name, e.what());
  }
}

// Bounded memory: at max_buffered pending events the dispatcher stops reading; librdkafka then
// stops fetching once its own queue holds queued.min.messages / queued.max.messages.kbytes. A buffer
// that stays full pauses the partitions, which frees that prefetch too.
void Dispatcher::Loop::FlowControl() {
  const std::size_t pending = tracker_.Pending();
  const auto now = Clock::now();
  if (!full_ && pending >= opt_.max_buffered) {
    full_ = true;
    full_since_ = now;
  } else if (full_ && pending < opt_.max_buffered) {
    full_ = false;
  }
  if (!paused_ && full_ && now - full_since_ >= kPauseAfterFull) {
    consumer_->Pause(assigned_);
    paused_ = true;
    log_->debug("dispatcher {}: {} events buffered for {} s, pausing consumption", opt_.spec.name, pending,
                std::chrono::duration_cast<std::chrono::seconds>(kPauseAfterFull).count());
  } else if (paused_ && pending <= opt_.max_buffered / 2) {
    consumer_->Resume(assigned_);
    paused_ = false;
  }
}

// ---- worker side ----

void Dispatcher::Loop::ReceiveFromWorkers() {
  for (int n = 0; n < 10'000; ++n) {
    std::vector<zmq::message_t>& frames = received_;
    frames.clear();
    const auto got = zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
    if (!got) return;
    if (frames.size() < 2) continue;
    const std::string identity(View(frames[0]));
    const std::string_view cmd = View(frames[1]);
    if (cmd == wire::cmd::kHello) {
      OnHello(identity, frames);
      continue;
    }
    auto it = workers_.find(identity);
    if (it == workers_.end()) continue;  // a worker from before a restart: it will say HELLO again
    Worker& w = it->second;
    w.last_heard = Clock::now();
    if (cmd == wire::cmd::kResults) {
      OnResults(w, frames);
    } else if (cmd == wire::cmd::kHeartbeat) {
      if (frames.size() > 2) {
        const auto j = nlohmann::json::parse(View(frames[2]), nullptr, false);
        if (j.is_object()) w.rss_kb = j.value("rss_kb", std::int64_t{0});
      }
    } else if (cmd == wire::cmd::kCapacity) {  // the worker raised its capacity for the batch it runs
      const auto j = frames.size() > 2 ? nlohmann::json::parse(View(frames[2]), nullptr, false) : nlohmann::json();
      if (j.is_object() && j.value("capacity", 0) >= 1) {
        w.Configure(j.value("capacity", 1), opt_.spec.concurrency, Batch().size);
        log_->info("dispatcher {}: worker {} holds up to {} now (credit {})", opt_.spec.name, w.id, w.capacity, w.credit);
      }
    } else if (cmd == wire::cmd::kDraining) {
      w.draining = true;
      log_->info("dispatcher {}: worker {} is draining ({} in flight)", opt_.spec.name, w.id, w.slots.size());
    } else if (cmd == wire::cmd::kBye) {
      const std::string reason = frames.size() > 2 ? std::string(View(frames[2])) : "";
      WorkerLost(identity, "said goodbye " + reason);
    }
  }
}

void Dispatcher::Loop::OnHello(const std::string& identity, const std::vector<zmq::message_t>& frames) {
  const auto hello = frames.size() > 2 ? nlohmann::json::parse(View(frames[2]), nullptr, false) : nlohmann::json();
  std::string reason;
  if (!hello.is_object()) {
    reason = "HELLO without a JSON body";
  } else if (hello.value("v", 0) != wire::kVersion) {
    reason = fmt::format("protocol version {} (this dispatcher speaks {})", hello.value("v", 0), wire::kVersion);
  } else if (hello.value("function", "") != opt_.spec.name) {
    reason = fmt::format("this dispatcher serves '{}', not '{}'", opt_.spec.name, hello.value("function", ""));
  } else if (hello.value("capacity", 0) < 1) {
    reason = "capacity must be at least 1";
  }
  if (!reason.empty()) {
    std::vector<zmq::message_t> out;
    out.push_back(Frame(wire::cmd::kReject));
    out.push_back(Frame(JsonText(nlohmann::json{{"reason", reason}})));
    Send(identity, std::move(out));
    log_->warn("dispatcher {}: refused a worker: {}", opt_.spec.name, reason);
    return;
  }
  if (workers_.contains(identity)) WorkerLost(identity, "reconnected");
  Worker w;
  w.identity = identity;
  w.id = hello.value("worker", "?");
  w.pid = hello.value("pid", 0);
  // The credit starts at what the worker runs at once (a full batch per call) and grows with
  // prefetch once its calls prove fast (Worker::Measured): events held idle at a slow worker are
  // events another could be running.
  w.Configure(hello.value("capacity", 1), opt_.spec.concurrency, Batch().size);
  w.last_heard = Clock::now();
  nlohmann::json welcome = {{"v", wire::kVersion},
                            {"function", opt_.spec.name},
                            {"heartbeat_ms", opt_.heartbeat.count()},
                            {"timeout_ms", opt_.spec.timeout.count()},
                            {"params", opt_.spec.params},
                            {"max_payload", opt_.spec.max_payload},
                            {"memory_mb", opt_.spec.memory_mb},
                            {"output_dir", opt_.output_dir},
                            {"concurrency", opt_.spec.concurrency},
                            {"handler", opt_.spec.handler},
                            {"handler_dir", opt_.spec.handler_dir}};
  if (opt_.spec.batch) welcome["batch"] = {{"size", Batch().size}, {"window_ms", Batch().window.count()}};
  std::vector<zmq::message_t> out;
  out.push_back(Frame(wire::cmd::kWelcome));
  out.push_back(Frame(JsonText(welcome)));
  log_->info("dispatcher {}: worker {} (pid {}) joined with capacity {}, {} at once", opt_.spec.name, w.id, w.pid,
             w.capacity, w.concurrency);
  workers_[identity] = std::move(w);
  Send(identity, std::move(out));
}

void Dispatcher::Loop::OnResults(Worker& w, const std::vector<zmq::message_t>& frames) {
  for (std::size_t i = 2; i + 1 < frames.size(); i += 2) {
    wire::ResultHeader header;
    try {
      header = wire::DecodeResult(View(frames[i]));
    } catch (const wire::WireError& e) {
      log_->error("dispatcher {}: worker {} sent a bad result: {}", opt_.spec.name, w.id, e.what());
      continue;
    }
    auto it = by_token_.find(header.token);
    if (it == by_token_.end()) {
      ++stats_.late_results;  // the event went to another worker meanwhile
      continue;
    }
    const std::uint64_t slot_id = it->second;
    by_token_.erase(it);
    w.slots.erase(slot_id);
    ++w.completed;
    w.total_service_us += header.duration_us;
    w.Measured(header.duration_us);
    ++stats_.results;
    stats_.service_us += header.duration_us;
    Slot& slot = slots_.at(slot_id);
    if (opt_.observer) {
      const bool ok = header.status == wire::ResultStatus::kOk;
      const int c = header.error_code;
      opt_.observer->Answered(slot_id, w.id, header.duration_us, ok,
                              ok ? "" : ErrcName((c >= 1 && c <= kErrcMax) ? static_cast<Errc>(c) : Errc::kInternal),
                              header.error);
    }
    if (header.status == wire::ResultStatus::kOk) {
      Finish(slot_id, OutcomeStatus::kOk, "", "", std::string(View(frames[i + 1])), header.content_type,
             header.files_json, header.duration_us, w.id, std::move(header.emitted));
      continue;
    }
    const int code = header.error_code;
    const Errc errc = (code >= 1 && code <= kErrcMax) ? static_cast<Errc>(code) : Errc::kInternal;
    slot.worker = w.id;
    Fail(slot_id, errc, header.error);
  }
}

void Dispatcher::Loop::WorkerLost(const std::string& identity, const std::string& reason) {
  auto it = workers_.find(identity);
  if (it == workers_.end()) return;
  Worker w = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_lost;
  if (!w.slots.empty() || reason.find("drained") == std::string::npos) {
    log_->info("dispatcher {}: worker {} (pid {}) left ({}); {} event(s) dispatched again", opt_.spec.name, w.id, w.pid,
               reason, w.slots.size());
  }
  for (std::uint64_t slot_id : w.slots) {
    Slot& slot = slots_.at(slot_id);
    by_token_.erase(slot.token);
    ++stats_.redispatched;
    if (opt_.observer) opt_.observer->Abandoned(slot_id, w.id, "worker-lost", reason);
    ++slot.attempt;
    if (slot.attempt > opt_.spec.retry.max_attempts) {
      Finish(slot_id, OutcomeStatus::kDeadLetter, "worker-lost",
             fmt::format("lost with its worker {} ({}) on every one of {} attempts", w.id, reason, slot.attempt - 1));
      continue;
    }
    slot.state = Slot::State::kQueued;
    queue_.Requeue(slot_id);
  }
}

void Dispatcher::Loop::Send(const std::string& identity, std::vector<zmq::message_t> frames) {
  frames.insert(frames.begin(), Frame(identity));
  SendRouted(identity, frames);
}

void Dispatcher::Loop::SendRouted(const std::string& identity, std::vector<zmq::message_t>& frames) {
  try {
    if (!zmq::send_multipart(router_, frames, zmq::send_flags::dontwait)) {
      log_->warn("dispatcher {}: a worker's queue is full; dropping the message", opt_.spec.name);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      WorkerLost(identity, "unreachable");
      return;
    }
    throw;
  }
}

void Dispatcher::Loop::Dispatch() {
  if (queue_.Ready() == 0 || workers_.empty()) return;
  const auto now = Clock::now();
  for (;;) {
    // The worker holding the fewest events (then the one with most free credit): spreads events
    // over every worker, also when prefetch has given one of them more credit than the others
    // (a newcomer has not earned its prefetch yet and would otherwise get nothing).
    Worker* best = nullptr;
    for (auto& [identity, w] : workers_) {
      if (w.Free() <= 0) continue;
      if (best == nullptr || w.slots.size() < best->slots.size() ||
          (w.slots.size() == best->slots.size() && w.Free() > best->Free())) {
        best = &w;
      }
    }
    if (best == nullptr) break;
    const auto slot_id = queue_.Pop();
    if (!slot_id) break;
    Slot& slot = slots_.at(*slot_id);
    slot.state = Slot::State::kInFlight;
    slot.token = next_token_++;
    slot.worker = best->identity;
    // Behind the events the worker already holds, this one may wait a timeout per round of its
    // concurrent calls before its own call starts (the worker's budget counts from that start).
    const auto rounds = 1 + static_cast<int>(best->slots.size()) / best->concurrency;
    slot.deadline = now + rounds * (opt_.spec.timeout + Batch().window) + kDeadlineGrace;
    by_token_[slot.token] = *slot_id;
    best->slots.insert(*slot_id);
    ++stats_.attempts;
    if (opt_.observer) opt_.observer->Dispatched(*slot_id, slot.attempt, best->id);
    wire::TaskHeader task;
    task.token = slot.token;
    task.topic = slot.msg.topic;
    task.partition = slot.msg.partition;
    task.offset = slot.msg.offset;
    task.has_key = slot.msg.key.has_value();
    if (slot.msg.key) task.key = *slot.msg.key;
    task.attempt = static_cast<std::uint32_t>(slot.attempt);
    task.timeout_ms = static_cast<std::uint32_t>(opt_.spec.timeout.count());
    task.headers = slot.msg.headers;
    auto& frames = batches_[best->identity];
    if (frames.empty()) {
      frames.push_back(Frame(best->identity));
      frames.push_back(Frame(wire::cmd::kTasks));
    }
    frames.push_back(Frame(wire::Encode(task)));
    frames.push_back(Frame(slot.msg.value));
  }
  for (auto& [identity, frames] : batches_) {
    if (frames.empty()) continue;
    if (log_->should_log(spdlog::level::debug)) {
      log_->debug("dispatcher {}: {} event(s) to worker {}", opt_.spec.name, (frames.size() - 2) / 2,
                  workers_.at(identity).id);
    }
    SendRouted(identity, frames);
    frames.clear();
  }
  std::erase_if(batches_, [this](const auto& batch) { return !workers_.contains(batch.first); });
}

void Dispatcher::Loop::Heartbeats(Clock::time_point now) {
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + opt_.heartbeat;
  std::vector<std::string> silent;
  for (const auto& [identity, w] : workers_) {
    if (now - w.last_heard > 3 * opt_.heartbeat) silent.push_back(identity);
  }
  for (const auto& identity : silent) WorkerLost(identity, "silent for 3 heartbeats");
  std::vector<std::string> identities;
  for (const auto& [identity, w] : workers_) identities.push_back(identity);
  for (const auto& identity : identities) {
    std::vector<zmq::message_t> frames;
    frames.push_back(Frame(wire::cmd::kHeartbeat));
    Send(identity, std::move(frames));
  }
}

void Dispatcher::Loop::CheckDeadlines(Clock::time_point now) {
  if (now < next_deadline_scan_) return;
  next_deadline_scan_ = now + kDeadlineScan;
  std::vector<std::uint64_t> overdue;
  for (const auto& [token, slot_id] : by_token_) {
    if (slots_.at(slot_id).deadline < now) overdue.push_back(slot_id);
  }
  for (std::uint64_t slot_id : overdue) {
    auto sit = slots_.find(slot_id);
    if (sit == slots_.end() || sit->second.state != Slot::State::kInFlight) continue;
    const std::string identity = sit->second.worker;
    auto wit = workers_.find(identity);
    const std::string worker_id = wit != workers_.end() ? wit->second.id : "?";
    by_token_.erase(sit->second.token);
    if (wit != workers_.end()) wit->second.slots.erase(slot_id);
    // A running call cannot be cancelled: the stuck worker is told to exit, and its other events
    // go elsewhere.
    std::vector<zmq::message_t> frames;
    frames.push_back(Frame(wire::cmd::kExit));
    frames.push_back(Frame(JsonText(nlohmann::json{{"reason", "an event overran its timeout"}})));
    Send(identity, std::move(frames));
    sit->second.worker = worker_id;
    if (opt_.observer) opt_.observer->Abandoned(slot_id, worker_id, ErrcName(Errc::kTimeout), "overran its timeout");
    Fail(slot_id, Errc::kTimeout,
         fmt::format("timed out after {} ms on worker {}", opt_.spec.timeout.count(), worker_id));
    WorkerLost(identity, "overran a timeout");
  }
}

void Dispatcher::Loop::DueRetries(Clock::time_point now) {
  while (!retries_.empty() && retries_.top().first <= now) {
    const std::uint64_t slot_id = retries_.top().second;
    retries_.pop();
    auto it = slots_.find(slot_id);
    if (it == slots_.end() || it->second.state != Slot::State::kBackoff) continue;
    it->second.state = Slot::State::kQueued;
    queue_.Requeue(slot_id);
  }
}

// ---- outcomes ----

void Dispatcher::Loop::Fail(std::uint64_t slot_id, Errc code, const std::string& message) {
  Slot& slot = slots_.at(slot_id);
  const bool retriable = IsRetriable(code);
  if (retriable && slot.attempt < opt_.spec.retry.max_attempts) {
    ++slot.attempt;
    ++stats_.retries;
    const auto base = opt_.spec.retry.Backoff(slot.attempt);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    const auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(base.count()) * jitter(rng_)));
    slot.state = Slot::State::kBackoff;
    retries_.push({Clock::now() + wait, slot_id});
    if (opt_.observer) opt_.observer->RetryScheduled(slot_id, slot.attempt, wait);
    const log::EventScope about(slot.id);
    log_->debug("dispatcher {}: event {} failed ({}: {}); attempt {} in {} ms", opt_.spec.name, slot.id, ErrcName(code),
                message, slot.attempt, wait.count());
    return;
  }
  Finish(slot_id, retriable ? OutcomeStatus::kDeadLetter : OutcomeStatus::kError, std::string(ErrcName(code)),
         retriable ? fmt::format("{} (gave up after {} attempts)", message, slot.attempt) : message, {}, {}, {}, 0,
         slot.worker);
}

void Dispatcher::Loop::Finish(std::uint64_t slot_id, OutcomeStatus status, const std::string& kind,
                              const std::string& error, std::string output, std::string content_type,
                              std::string files_json, std::int64_t duration_us, const std::string& worker,
                              std::vector<wire::EmitRecord> emitted) {
  Slot& slot = slots_.at(slot_id);
  slot.state = Slot::State::kFinishing;
  Outcome o;
  o.id = slot.id;
  o.function = opt_.spec.name;
  o.status = status;
  o.attempts = slot.attempt;
  o.error = error;
  o.error_kind = kind;
  o.topic = slot.msg.topic;
  o.partition = slot.msg.partition;
  o.offset = slot.msg.offset;
  o.key = slot.msg.key;
  o.content_type = std::move(content_type);
  o.output = std::move(output);
  o.files_json = std::move(files_json);
  o.duration_us = duration_us;
  o.worker = worker;
  o.reply_to = slot.envelope.reply_to;
  o.trace_id = slot.envelope.trace_id;
  o.job_id = slot.envelope.job_id;
  slot.outcome = std::move(o);
  slot.needs_dead_letter = status != OutcomeStatus::kOk;
  if (status != OutcomeStatus::kOk) {
    const log::EventScope about(slot.id);
    log_->warn("dispatcher {}: event {} ({}[{}]@{}) {}: {}: {}", opt_.spec.name, slot.id, slot.msg.topic,
               slot.msg.partition, slot.msg.offset, StatusName(status), kind, error);
  }
  if (slot.needs_dead_letter) {
    ProduceDeadLetter(slot_id);
    return;
  }
  BuildPipeline(slot, std::move(emitted));
  if (slot.pipeline.empty()) {
    AfterPipeline(slot_id);
    return;
  }
  slot.pipeline_pending = slot.pipeline.size();
  for (std::size_t i = 0; i < slot.pipeline.size(); ++i) ProducePipelineRecord(slot_id, i);
}

void Dispatcher::Loop::BuildPipeline(Slot& slot, std::vector<wire::EmitRecord> emitted) {
  const Outcome& o = *slot.outcome;
  // Every pipeline event carries a fresh id, the hop count + 1, and the source's trace and job.
  auto lineage = [&](Headers headers) {
    std::erase_if(headers, [](const Header& h) {
      return h.name == header::kId || h.name == header::kHop || h.name == header::kAttempt || h.name == "runnel-parent";
    });
    headers.push_back({std::string(header::kId), NewEventId()});
    headers.push_back({std::string(header::kHop), std::to_string(slot.envelope.hop + 1)});
    const bool has_trace = std::any_of(headers.begin(), headers.end(), [](const Header& h) { return h.name == header::kTrace; });
    if (!has_trace && !slot.envelope.trace_id.empty()) headers.push_back({std::string(header::kTrace), slot.envelope.trace_id});
    if (!slot.envelope.job_id.empty()) headers.push_back({std::string(header::kJob), slot.envelope.job_id});
    headers.push_back({"runnel-parent", slot.id});
    return headers;
  };
  for (auto& e : emitted) {
    std::optional<std::string> key;
    if (e.has_key) key = std::move(e.key);
    slot.pipeline.push_back({std::move(e.topic), kAnyPartition, std::move(key), std::move(e.payload), lineage(std::move(e.headers))});
  }
  if (opt_.next_topics.empty()) return;
  const auto files = nlohmann::json::parse(o.files_json.empty() ? "[]" : o.files_json, nullptr, false);
  for (const auto& topic : opt_.next_topics) {
    if (files.is_array() && !files.empty()) {
      for (const auto& f : files) {
        Envelope env;
        env.file = FileRef{f.value("path", ""), f.value("bytes", std::uint64_t{0}),
                           std::filesystem::path(f.value("path", "")).filename().string()};
        Headers headers;
        try {
          headers = env.Encode();
        } catch (const EnvelopeError& e) {
          const log::EventScope about(slot.id);
          log_->error("dispatcher {}: output file of {} cannot be passed on: {}", opt_.spec.name, slot.id, e.what());
          continue;
        }
        slot.pipeline.push_back({topic, kAnyPartition, slot.msg.key, "", lineage(std::move(headers))});
      }
    } else {
      Headers headers;
      if (!o.content_type.empty()) headers.push_back({std::string(header::kContentType), o.content_type});
      slot.pipeline.push_back({topic, kAnyPartition, slot.msg.key, o.output, lineage(std::move(headers))});
    }
  }
}

void Dispatcher::Loop::ProducePipelineRecord(std::uint64_t slot_id, std::size_t index) {
  producer_->Produce(slots_.at(slot_id).pipeline.at(index), [this, slot_id, index](const Delivery& d) {
    Completed(slot_id, 3, d.Ok(), d.error_message, index);
  });
}

void Dispatcher::Loop::AfterPipeline(std::uint64_t slot_id) {
  if (!opt_.spec.results_topic.empty()) {
    ProduceResult(slot_id);
  } else {
    Complete(slot_id);
  }
}

void Dispatcher::Loop::Completed(std::uint64_t slot_id, int stage, bool ok, std::string error, std::size_t index) {
  {
    std::lock_guard lock(completions_mu_);
    completions_.push_back({slot_id, stage, ok, std::move(error), index});
  }
  const std::uint64_t one = 1;
  (void)!::write(completion_fd_, &one, sizeof one);
}

void Dispatcher::Loop::ProduceDeadLetter(std::uint64_t slot_id) {
  const Slot& slot = slots_.at(slot_id);
  const Outcome& o = *slot.outcome;
  Record record{opt_.spec.dead_letter_topic, kAnyPartition, slot.msg.key, slot.msg.value, {}};
  for (const Header& h : slot.msg.headers) {
    if (h.name != header::kAttempt) record.headers.push_back(h);
  }
  record.headers.push_back({std::string(header::kAttempt), std::to_string(o.attempts)});
  record.headers.push_back({"runnel-error", o.error});
  record.headers.push_back({"runnel-error-kind", o.error_kind});
  record.headers.push_back({"runnel-origin", fmt::format("{}/{}/{}", o.topic, o.partition, o.offset)});
  record.headers.push_back({"runnel-function", o.function});
  producer_->Produce(std::move(record), [this, slot_id](const Delivery& d) { Completed(slot_id, 1, d.Ok(), d.error_message); });
}

void Dispatcher::Loop::ProduceResult(std::uint64_t slot_id) {
  const Slot& slot = slots_.at(slot_id);
  const Outcome& o = *slot.outcome;
  Record record{opt_.spec.results_topic, kAnyPartition, slot.msg.key, o.output, {}};
  record.headers.push_back({std::string(header::kId), o.id});
  if (!o.content_type.empty()) record.headers.push_back({std::string(header::kContentType), o.content_type});
  record.headers.push_back({"runnel-result", o.MetaJson()});
  producer_->Produce(std::move(record), [this, slot_id](const Delivery& d) { Completed(slot_id, 2, d.Ok(), d.error_message); });
}

void Dispatcher::Loop::HandleCompletions() {
  std::vector<CompletionMsg> done;
  {
    std::lock_guard lock(completions_mu_);
    done.swap(completions_);
  }
  for (auto& c : done) {
    if (!slots_.contains(c.slot)) continue;
    Slot& slot = slots_.at(c.slot);
    if (!c.ok) {
      // Not acknowledged (librdkafka already retried for message.timeout.ms): try again; the
      // event stays uncommitted until a record lands.
      const std::string topic = c.stage == 1   ? opt_.spec.dead_letter_topic
                                : c.stage == 2 ? opt_.spec.results_topic
                                               : slot.pipeline.at(c.index).topic;
      const log::EventScope about(slot.id);
      log_->error("dispatcher {}: could not write event {} to {}: {}; trying again", opt_.spec.name, slot.id, topic, c.error);
      if (c.stage == 1) ProduceDeadLetter(c.slot);
      if (c.stage == 2) ProduceResult(c.slot);
      if (c.stage == 3) ProducePipelineRecord(c.slot, c.index);
      continue;
    }
    if (c.stage == 3) {
      if (--slot.pipeline_pending == 0) AfterPipeline(c.slot);
    } else if (c.stage == 1 && !opt_.spec.results_topic.empty()) {
      ProduceResult(c.slot);
    } else {
      Complete(c.slot);
    }
  }
}

void Dispatcher::Loop::Complete(std::uint64_t slot_id) {
  auto it = slots_.find(slot_id);
  Slot& slot = it->second;
  const Outcome& o = *slot.outcome;
  switch (o.status) {
    case OutcomeStatus::kOk: ++stats_.succeeded; break;
    case OutcomeStatus::kError: ++stats_.failed; break;
    case OutcomeStatus::kDeadLetter: ++stats_.dead_lettered; break;
  }
  if (pub_) {
    const std::string topic = o.Topic();
    const std::string meta = o.MetaJson();
    std::array<zmq::const_buffer, 3> frames = {zmq::buffer(topic), zmq::buffer(meta), zmq::buffer(o.output)};
    (void)zmq::send_multipart(*pub_, frames, zmq::send_flags::dontwait);
  }
  if (opt_.observer) {
    opt_.observer->Finished(slot_id, o, o.status == OutcomeStatus::kOk ? "" : opt_.spec.dead_letter_topic);
  }
  tracker_.Done(slot.msg.partition, slot.msg.offset);
  queue_.Release(slot.msg.key);
  slots_.erase(it);
}

void Dispatcher::Loop::PublishStats() {
  stats_.queued = queue_.Ready() + queue_.Waiting() + retries_.size();
  stats_.in_flight = by_token_.size();
  stats_.pending = tracker_.Pending();
  stats_.paused = full_ || paused_;
  stats_.workers.clear();
  for (const auto& [identity, w] : workers_) {
    stats_.workers[w.id] = WorkerStats{w.id,         w.pid,        w.credit, static_cast<int>(w.slots.size()),
                                       w.draining,   w.completed,  w.total_service_us, w.rss_kb};
  }
  stats_.oldest_pending_ms = -1;
  for (const auto& [id, slot] : slots_) {
    const std::int64_t ts = slot.msg.timestamp_ms;
    if (ts >= 0 && (stats_.oldest_pending_ms < 0 || ts < stats_.oldest_pending_ms)) stats_.oldest_pending_ms = ts;
  }
  stats_.positions = expected_next_;
  if (opt_.observer) opt_.observer->Flush();
  std::lock_guard lock(stats_mu_);
  published_stats_ = stats_;
}

// ---- public face ----

Dispatcher::Dispatcher(Options options) : loop_(std::make_unique<Loop>(std::move(options))) {}

Dispatcher::~Dispatcher() { Stop(std::chrono::seconds(5)); }

const std::string& Dispatcher::Endpoint() const { return loop_->endpoint; }

void Dispatcher::Start() {
  loop_->thread = std::thread([loop = loop_.get()] {
    try {
      loop->Run();
    } catch (const std::exception& e) {
      log::Get("broker")->critical("dispatcher stopped by an error: {}", e.what());
    }
  });
}

void Dispatcher::Stop(std::chrono::milliseconds drain) {
  if (!loop_->thread.joinable()) return;
  loop_->RequestStop(drain);
  loop_->thread.join();
}

DispatcherStats Dispatcher::Stats() const { return loop_->Snapshot(); }

}  // namespace runnel::broker
