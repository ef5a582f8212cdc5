#include "runnel/broker/dispatcher.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <zmq_addon.hpp>

#include "dispatcher_loop.hpp"
#include "runnel/broker/group_lease.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/trace_context.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/security/curve.hpp"

namespace runnel::broker {
namespace {

constexpr std::size_t kConsumeBatch = 512;
constexpr auto kCommitInterval = std::chrono::milliseconds(200);
constexpr auto kRecommitInterval = std::chrono::seconds(1);
constexpr auto kStatsInterval = std::chrono::milliseconds(100);
// How long a stop's last commit waits for a rebalance of a shared function's group to end.
constexpr auto kFinalCommitWait = std::chrono::seconds(5);
// A buffer full for this long (workers stuck or gone) pauses the partitions, which also drops what
// librdkafka prefetched. A short spell of full buffer only stops reading: librdkafka 2.0 resumes
// fetching a resumed partition only on its broker thread's next 1 s tick, so pausing on every
// spell would stall a busy function for up to a second each time.
constexpr auto kPauseAfterFull = std::chrono::seconds(2);

std::int64_t NowEpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string HostName() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string();
}

}  // namespace

Dispatcher::Loop::Loop(Options options)
    : opt_(std::move(options)),
      log_(log::kBroker.Logger(), fmt::format("dispatcher {}: ", opt_.spec.name)),
      router_(*opt_.zmq, zmq::socket_type::router) {
  const FunctionSpec& spec = opt_.spec;
  if (!opt_.protocol_errors) opt_.protocol_errors = std::make_shared<ProtocolErrors>();
  socket_name_ = "dispatcher/" + spec.name;
  host_ = HostName();
  shared_ = spec.scaling.shared;
  kafka::Admin admin(opt_.kafka);
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (std::int32_t p : admin.Partitions(spec.topic))
    partitions.push_back({spec.topic, p, kafka::kOffsetStored});
  consumer_ = std::make_unique<kafka::Consumer>(
      opt_.kafka, kafka::Consumer::Options{spec.Group(), "earliest", opt_.fetch_wait_max, shared_});
  const auto committed = consumer_->CommittedWithMetadata(partitions);
  if (!opt_.stack_id.empty()) {
    RefuseOtherLiveStack(committed, opt_.stack_id, shared_, spec.name, spec.Group(), NowEpochMs());
    consumer_->SetCommitMetadata(Lease(false));
  }
  if (shared_) {
    // The group hands partitions over (OnRebalances); a new member waits for its first share.
    consumer_->Subscribe({spec.topic});
  } else {
    // Every partition at once, without a group join: the first records arrive in milliseconds.
    PrepareStarts(committed);
    assigned_ = std::move(partitions);
    consumer_->Assign(assigned_);
  }
  producer_ = std::make_unique<kafka::Producer>(opt_.kafka);
  if (!spec.filter.Empty()) matcher_ = std::make_unique<EventMatcher>(spec.filter);
  max_record_bytes_ = producer_->MaxMessageBytes();

  router_.set(zmq::sockopt::router_mandatory, 1);
  router_.set(zmq::sockopt::sndhwm, 0);  // bounded by credit, not by the socket
  router_.set(zmq::sockopt::rcvhwm, 0);
  router_.set(zmq::sockopt::linger, 0);
  if (opt_.guard != nullptr) opt_.guard->Secure(router_, socket_name_);
  router_.bind(opt_.bind);
  endpoint = router_.get(zmq::sockopt::last_endpoint);
  local_endpoint = endpoint;
  if (!opt_.local_bind.empty()) {
    try {
      security::BindLocal(router_, opt_.local_bind);
      local_endpoint = opt_.local_bind;
    } catch (const zmq::error_t& e) {  // a file system without Unix sockets, say: TCP serves all
      log_.warn("cannot bind {} ({}); workers on this host connect to {}", opt_.local_bind, e.what(),
                endpoint);
    }
  }
  if (!opt_.results_endpoint.empty()) {
    pub_.emplace(*opt_.zmq, zmq::socket_type::pub);
    pub_->set(zmq::sockopt::linger, 1000);
    pub_->set(zmq::sockopt::sndhwm, 10'000);  // a burst of outcomes while the feed's proxy is descheduled
    pub_->connect(opt_.results_endpoint);
  }
  if (shared_) {
    log_.info(
        "topic {}, group {} shared with other stacks (partitions as the group assigns them), workers "
        "connect to {}",
        spec.topic, spec.Group(), endpoint);
  } else {
    log_.info("topic {} partitions {}, group {}, workers connect to {}", spec.topic, assigned_.size(),
              spec.Group(), endpoint);
  }
}

void Dispatcher::Loop::PrepareStarts(const std::vector<kafka::CommittedOffset>& committed) {
  const FunctionSpec& spec = opt_.spec;
  const bool leased = !opt_.stack_id.empty();
  std::vector<kafka::TopicPartitionOffset>
      start_at;  // committed now: where a partition without commits starts
  for (const auto& c : committed) {
    const auto& tp = c.position;
    std::optional<std::int64_t> start;
    if (tp.offset >= 0) {
      start = tp.offset;
    } else if (spec.start == StartPosition::kLatest) {
      // `start: latest` for a partition the group never committed: its end now, committed at once so
      // that the lag counts from there and a restart before the first event resumes there too.
      start = consumer_->Watermarks(spec.topic, tp.partition).second;
      start_at.push_back({spec.topic, tp.partition, *start});
    } else if (leased) {
      // `start: earliest`: the log start, the same place, committed so that the lease is seen
      // before the first event.
      start = consumer_->Watermarks(spec.topic, tp.partition).first;
      start_at.push_back({spec.topic, tp.partition, *start});
    }
    if (!start) continue;
    expected_next_[tp.partition] = *start;
    // Recommitted every second with the lease, idle or not.
    if (leased) tracker_.Assign(tp.partition, *start);
  }
  if (start_at.empty()) return;
  if (shared_) {
    // Taken in the middle of the group's rebalance, the commit may be refused (REBALANCE_IN_PROGRESS):
    // the tracker commits these starts again within a second, with the lease, so it only waits.
    try {
      consumer_->CommitOffsets(start_at);
    } catch (const Error& e) {
      log_.warn(
          "committing where {} newly assigned partition(s) start failed ({}); the next commit covers it",
          start_at.size(), e.what());
    }
  } else {
    consumer_->CommitOffsets(start_at);
  }
  if (spec.start == StartPosition::kLatest) {
    log_.info("group {} had no commits on {} partition(s): starting at their end (start: latest)",
              spec.Group(), start_at.size());
  }
}

Dispatcher::Loop::~Loop() {
  // The producer's delivery reports write into deliveries_ and deliveries_ready_: it goes first
  // (its destructor flushes, bounded), while both still exist. Members alone would destroy it last.
  producer_.reset();
}

void Dispatcher::Loop::Run() {
  const int kafka_fd = consumer_->WakeFd();
  bool more_kafka = true;
  std::optional<Clock::time_point> drain_until;
  for (;;) {
    failpoint::Hit("dispatcher.loop");
    const auto now = Clock::now();
    if (stop_.load() && !drain_until) {
      drain_until = now + std::chrono::milliseconds(drain_ms_.load());
      if (!paused_) consumer_->Pause(assigned_);
      paused_ = true;
      log_.info("stopping; waiting for {} event(s) at workers and {} outcome(s) being written",
                by_token_.size(), WritingRecords());
    }
    // Draining: no new event is consumed or dispatched; what workers hold finishes, and each
    // outcome's records are acknowledged so that its offset is committed below.
    if (drain_until && ((by_token_.empty() && WritingRecords() == 0) || now >= *drain_until)) break;

    // The consumer's descriptor is watched only while reading: with a full buffer its queue stays
    // readable and would spin this loop.
    const bool reading = !drain_until && !full_ && !paused_;
    // A shared function's group changes come through the consumer's queue: it is polled also while
    // the partitions are paused (they bring no records then), so that a rebalance is answered.
    const bool polling = reading || (shared_ && paused_);
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, deliveries_ready_.Fd(), ZMQ_POLLIN, 0},
                               {nullptr, kafka_fd, ZMQ_POLLIN, 0}};
    const auto timeout =
        (more_kafka && reading) ? std::chrono::milliseconds(0) : std::chrono::milliseconds(20);
    zmq::poll(items, polling ? 3 : 2, timeout);
    if (items[1].revents & ZMQ_POLLIN) deliveries_ready_.Drain();
    if (polling) {
      if (items[2].revents & ZMQ_POLLIN) consumer_->DrainWakeFd();
      ConsumeKafka(more_kafka);
    }
    ReceiveFromWorkers();
    DrainDeliveries();
    PublishOutcomes();
    const auto t = Clock::now();
    DueRetries(t);
    DueRecordRetries(t);
    Heartbeats(t);
    CheckDeadlines(t);
    if (revoke_) CheckRevoke(t);
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
  DrainDeliveries();
  PublishOutcomes();
  // A revocation still waiting is answered now: closing the consumer waits for it.
  if (revoke_) {
    const auto pending = std::move(revoke_->partitions);
    revoke_.reset();
    Release(pending, /*commit=*/true, "the stack stopped while its partition was being revoked");
  }
  Commit(true, true, /*final=*/true);
  PublishStats();
  log_.info("stopped ({} consumed, {} ok, {} error, {} dead-letter, {} not finished)", stats_.received,
            stats_.succeeded, stats_.errors, stats_.dead_lettered, tracker_.Pending());
}

// ---- Kafka side ----

void Dispatcher::Loop::ConsumeKafka(bool& more) {
  auto batch = consumer_->PollBatch(kConsumeBatch, std::chrono::milliseconds(0));
  more = batch.size() == kConsumeBatch;
  if (shared_) OnRebalances();
  for (auto& msg : batch) {
    // Fetched before a revocation: the partition's next owner reads it from the committed offset.
    if (!Owns(msg.partition)) continue;
    OnRecord(std::move(msg));
  }
}

void Dispatcher::Loop::CheckRetentionGap(const kafka::Message& msg) {
  auto it = expected_next_.find(msg.partition);
  if (it != expected_next_.end() && msg.offset > it->second) {
    // Offsets can be skipped legitimately (compaction, transaction markers): count only what the
    // broker's log start has passed.
    std::int64_t log_start = msg.offset;
    try {
      log_start = consumer_->Watermarks(msg.topic, msg.partition, std::chrono::seconds(2)).first;
    } catch (const Error& e) {
      log_.warn("could not check a gap in {}[{}]: {}", msg.topic, msg.partition, e.what());
    }
    const std::int64_t lost = std::min(msg.offset, log_start) - it->second;
    if (lost > 0) {
      stats_.retention_lost += lost;
      log_.error(
          "LOST {} event(s): {}[{}] offsets {}..{} were dropped by the broker (retention) "
          "before Runnel processed them",
          lost, msg.topic, msg.partition, it->second, it->second + lost - 1);
    }
  }
  expected_next_[msg.partition] = std::max(msg.offset + 1, it != expected_next_.end() ? it->second : 0);
}

std::size_t Dispatcher::Loop::WritingRecords() const {
  return static_cast<std::size_t>(
      std::count_if(slots_.begin(), slots_.end(), [](const auto& kv) { return kv.second.WritingRecords(); }));
}

void Dispatcher::Loop::OnRecord(kafka::Message msg) {
  CheckRetentionGap(msg);
  if (!tracker_.Add(msg.partition, msg.offset)) return;  // a redelivery of something we hold or did
  ++stats_.received;
  const std::uint64_t slot_id = next_slot_++;
  Slot& slot = slots_[slot_id];
  slot.msg = std::move(msg);
  slot.id = fmt::format("{}-{}-{}", slot.msg.topic, slot.msg.partition, slot.msg.offset);
  bool queued = false;
  try {
    queued = Admit(slot_id);
  } catch (const std::exception& e) {
    // A fault in this event's handling fails this event (retried, then dead-lettered, as any
    // internal error), not the dispatcher. An event Admit already gave an outcome keeps it.
    auto it = slots_.find(slot_id);
    if (it == slots_.end() || it->second.state != Slot::State::kQueued) return;
    log_.error("event {} failed in the dispatcher: {}; it is failed as an internal error", it->second.id,
               e.what());
    Fail(slot_id, Errc::kInternal, fmt::format("the dispatcher failed on this event: {}", e.what()),
         /*worker=*/"");
    return;
  }
  if (queued && workers_.empty()) {
    ++stats_.no_worker_waits;
    if (opt_.on_event_without_workers) opt_.on_event_without_workers();
  }
}

bool Dispatcher::Loop::Admit(std::uint64_t slot_id) {
  Slot& slot = slots_.at(slot_id);
  if (matcher_ && !matcher_->Matches(slot.msg.key, slot.msg.headers, slot.msg.value)) {
    // Not for this function (its `filter`): done without a call and without an outcome.
    ++stats_.filtered;
    tracker_.Done(slot.msg.partition, slot.msg.offset);
    slots_.erase(slot_id);
    return false;
  }
  try {
    slot.envelope = Envelope::Decode(slot.msg.headers);
  } catch (const EnvelopeError& e) {
    if (opt_.observer) opt_.observer->Received(slot_id, slot.id, slot.msg);
    Decide(slot_id, Decision::Failure(OutcomeStatus::kError,
                                      std::string(KindName(ErrorKind::kMalformedEnvelope)), e.what()));
    return false;
  }
  if (!slot.envelope.id.empty()) slot.id = slot.envelope.id;
  if (const std::string why = InvalidTraceparent(slot.msg.headers); !why.empty()) {
    // Not the event's failure: W3C Trace Context says to restart the trace (docs/protocol.md §1.4).
    ++stats_.traceparent_invalid;
    const log::EventScope about(slot.id, slot.envelope.trace_id);
    log_.warn("event {} ({}[{}]@{}): {}; a new trace is started", slot.id, slot.msg.topic, slot.msg.partition,
              slot.msg.offset, why);
  }
  if (slot.envelope.trace_id.empty()) slot.envelope.trace_id = NewTraceId();  // Runnel starts the trace
  slot.span_id = NewSpanId();
  slot.attempt = slot.envelope.attempt;
  if (opt_.observer) opt_.observer->Received(slot_id, slot.id, slot.msg);
  failpoint::Hit("dispatcher.record");
  if (slot.envelope.hop > limits::kMaxHops) {
    Decide(slot_id,
           Decision::Failure(
               OutcomeStatus::kDeadLetter, std::string(KindName(ErrorKind::kRecursion)),
               fmt::format("hop count {} is over the limit of {}: a function probably triggers itself",
                           slot.envelope.hop, limits::kMaxHops)));
    return false;
  }
  if (slot.msg.value.size() > opt_.spec.max_payload) {
    Decide(slot_id,
           Decision::Failure(OutcomeStatus::kError, std::string(ErrcName(Errc::kLimitExceeded)),
                             fmt::format("payload is {} bytes, over the function's max_payload of {}",
                                         slot.msg.value.size(), opt_.spec.max_payload)));
    return false;
  }
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  if (const auto max_age = opt_.spec.max_record_age.count();
      max_age > 0 && slot.msg.timestamp_ms > 0 && now_ms - slot.msg.timestamp_ms > max_age) {
    Decide(slot_id, Decision::Failure(
                        OutcomeStatus::kDeadLetter, std::string(KindName(ErrorKind::kExpired)),
                        fmt::format("the record is {:.1f} s old (its Kafka timestamp), over the function's "
                                    "max_record_age of {:.1f} s",
                                    static_cast<double>(now_ms - slot.msg.timestamp_ms) / 1000.0,
                                    static_cast<double>(max_age) / 1000.0)));
    return false;
  }
  if (slot.envelope.deadline_ms) {
    if (*slot.envelope.deadline_ms <= now_ms) {
      Decide(slot_id, Decision::Failure(OutcomeStatus::kError, std::string(ErrcName(Errc::kTimeout)),
                                        "the event's deadline passed before it could run"));
      return false;
    }
  }
  queue_.Push(slot_id, slot.msg.key);
  return true;
}

std::string Dispatcher::Loop::Lease(bool stopped) const {
  return EncodeLease({opt_.stack_id, host_, ::getpid(), NowEpochMs(), stopped, shared_});
}

void Dispatcher::Loop::Commit(bool sync, bool all, bool final) {
  PublishOutcomes();  // an offset is committed only after its outcome went to the feed
  if (shared_ && consumer_->Rebalancing()) {
    // Held back until the group has its new generation (Consumer::Rebalancing); what moved stays
    // in the tracker for the next commit. The last commit of a stop waits for it, bounded.
    if (!final) return;
    const auto until = Clock::now() + kFinalCommitWait;
    while (consumer_->Rebalancing() && Clock::now() < until) {
      // Serves the group's callbacks. The partitions are paused: a record is one fetched before,
      // which the partition's next reader reads again.
      (void)consumer_->PollBatch(16, std::chrono::milliseconds(10));
      OnRebalances();
      if (revoke_) {
        const auto pending = std::move(revoke_->partitions);
        revoke_.reset();
        Release(pending, /*commit=*/true, "the stack stopped while its partition was being revoked");
      }
    }
  }
  if (!opt_.stack_id.empty()) consumer_->SetCommitMetadata(Lease(final));
  std::vector<kafka::TopicPartitionOffset> offsets;
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
    log_.error("final commit failed ({}); those events will be consumed again", e.what());
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
    log_.debug("{} events buffered for {} s, pausing consumption", pending,
               std::chrono::duration_cast<std::chrono::seconds>(kPauseAfterFull).count());
  } else if (paused_ && !Blocked() && pending <= opt_.max_buffered / 2) {  // blocked: stays paused
    consumer_->Resume(assigned_);
    paused_ = false;
  }
}

void Dispatcher::Loop::PublishStats() {
  stats_.queued = queue_.Ready() + queue_.Waiting() + retries_.size();
  stats_.in_flight = by_token_.size();
  stats_.pending = tracker_.Pending();
  stats_.paused = full_ || paused_;
  stats_.workers.clear();
  for (const auto& [identity, w] : workers_) {
    stats_.workers[w.id] =
        WorkerStats{w.id,       w.pid,       w.credit,           static_cast<int>(w.slots.size()),
                    w.draining, w.completed, w.total_service_us, w.rss_kb};
  }
  stats_.oldest_pending_ms = -1;
  for (const auto& [id, slot] : slots_) {
    const std::int64_t ts = slot.msg.timestamp_ms;
    if (ts >= 0 && (stats_.oldest_pending_ms < 0 || ts < stats_.oldest_pending_ms))
      stats_.oldest_pending_ms = ts;
  }
  stats_.positions = expected_next_;
  stats_.shared = shared_;
  stats_.owned.assign(owned_.begin(), owned_.end());
  if (opt_.observer) opt_.observer->Flush();
  std::lock_guard lock(stats_mu_);
  published_stats_ = stats_;
}

// ---- public face ----

Dispatcher::Dispatcher(Options options) : loop_(std::make_unique<Loop>(std::move(options))) {}

Dispatcher::~Dispatcher() { Stop(std::chrono::seconds(5)); }

const std::string& Dispatcher::Endpoint() const { return loop_->endpoint; }
const std::string& Dispatcher::LocalEndpoint() const { return loop_->local_endpoint; }

void Dispatcher::Loop::EndedByFault(const std::string& reason) {
  log_.critical("stopped by an error: {}", reason);
  if (opt_.on_failure) opt_.on_failure(reason);
}

void Dispatcher::Start() {
  loop_->thread = std::thread([loop = loop_.get()] {
    // No end of this thread goes unnoticed: a fault, or a loop that returns unasked, is reported.
    try {
      loop->Run();
      if (!loop->StopRequested()) loop->EndedByFault("its loop ended without being asked to stop");
    } catch (const kafka::KafkaError& e) {
      loop->EndedByFault(
          e.Retriable() ? e.what()
                        : fmt::format("{} (Kafka refuses this and retrying does not help: check that the "
                                      "function's topic exists and that the stack's kafka address and "
                                      "kafka options, e.g. credentials, are right)",
                                      e.what()));
    } catch (const std::exception& e) {
      loop->EndedByFault(e.what());
    } catch (...) {
      loop->EndedByFault("an unknown exception");
    }
  });
}

void Dispatcher::RequestStop(std::chrono::milliseconds drain) { loop_->RequestStop(drain); }

void Dispatcher::Stop(std::chrono::milliseconds drain) {
  if (!loop_->thread.joinable()) return;
  loop_->RequestStop(drain);
  loop_->thread.join();
}

DispatcherStats Dispatcher::Stats() const { return loop_->Snapshot(); }

}  // namespace runnel::broker
