// The dispatcher's loop (Dispatcher::Loop): one thread that owns the consumer, the workers' ROUTER
// socket and every event it holds. Private to broker/; its members are defined in three files along
// the loop's seams: dispatcher.cpp (construction, the loop itself, the Kafka side: consuming, flow
// control, commits, stats), dispatcher_workers.cpp (worker sessions, credit, dispatch, heartbeats,
// deadlines, retries coming due), dispatcher_outcomes.cpp (failures, final outcomes, the records
// they need, publishing them) and dispatcher_records.cpp (records Kafka refuses: bounded retries,
// limit-exceeded, a dead-letter topic that cannot be written blocking the function).
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <zmq.hpp>

#include "dispatcher_state.hpp"
#include "prefixed_logger.hpp"
#include "runnel/broker/dispatch_queue.hpp"
#include "runnel/broker/dispatcher.hpp"
#include "runnel/broker/event_matcher.hpp"
#include "runnel/broker/offset_tracker.hpp"
#include "runnel/core/errc.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/protocol_errors.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/core/worker_messages.hpp"
#include "runnel/kafka/producer.hpp"
#include "token_source.hpp"

namespace runnel::broker {

class Dispatcher::Loop {
 public:
  explicit Loop(Options options);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  void Run();
  void RequestStop(std::chrono::milliseconds drain) {
    if (stop_.load()) return;  // the first request's drain holds
    drain_ms_ = drain.count();
    stop_.store(true);
  }
  bool StopRequested() const { return stop_.load(); }
  // The loop ended by a fault: logs it and tells Options::on_failure.
  void EndedByFault(const std::string& reason);
  std::thread thread;
  std::string endpoint;
  std::string local_endpoint;
  DispatcherStats Snapshot() const {
    std::lock_guard lock(stats_mu_);
    return published_stats_;
  }

 private:
  // Kafka side.
  void ConsumeKafka(bool& more);
  void OnRecord(kafka::Message msg);
  // OnRecord's checks of a new event, up to queueing it (true) or giving it an outcome (false); a
  // fault here fails only that event.
  bool Admit(std::uint64_t slot_id);
  // Events whose outcome is decided but whose records are not yet acknowledged (Slot::WritingRecords).
  std::size_t WritingRecords() const;
  void CheckRetentionGap(const kafka::Message& msg);
  // `final`: the drained stop's last commit, whose lease says the stack stopped.
  void Commit(bool sync, bool all = false, bool final = false);
  // Where partitions without commits start (the function's `start`), committed when a lease or
  // `start: latest` needs it; sets the gap detection and the tracker's start for each.
  void PrepareStarts(const std::vector<kafka::CommittedOffset>& committed);

  // ---- a shared function's partitions (scaling.shared; dispatcher_group.cpp) ----
  // Answers what the group changed since the last poll: assignments at once; a revocation once the
  // events running on those partitions are done (CheckRevoke), a lost partition at once.
  void OnRebalances();
  void TakeAssigned(const std::vector<kafka::TopicPartitionOffset>& partitions);
  void BeginRevoke(const std::vector<kafka::TopicPartitionOffset>& partitions);
  void CheckRevoke(Clock::time_point now);
  // Commits what is done on `partitions` (unless lost), hands off what is not and gives them back.
  void Release(const std::vector<kafka::TopicPartitionOffset>& partitions, bool commit,
               const std::string& why);
  void HandOff(std::uint64_t slot_id, const std::string& reason);
  // A record of this partition is this stack's to run: always, unless the function is shared and
  // the partition is not (or no longer) assigned here.
  bool Owns(std::int32_t partition) const;
  void FlowControl();
  // Worker side.
  void ReceiveFromWorkers();
  void OnHello(const std::string& identity, const std::vector<zmq::message_t>& frames);
  // The ZMQ User-Id of the connection `frame` came on (the name of the key the guard admitted it
  // by); empty without a guard.
  std::string ConnectionUser(const zmq::message_t& frame) const;
  // Whether a connection admitted as `user` may still be served (its join token still valid).
  bool Admitted(const std::string& user) const;
  void OnResults(const std::string& identity, const std::vector<zmq::message_t>& frames);
  void OnWorkerMessage(const std::string& identity, wire::Command command,
                       const std::vector<zmq::message_t>& frames);
  void AdoptReconnected(Worker& w);
  // Counts a message from `identity` that cannot be used, and logs it (rate-limited per peer).
  void ProtocolError(const std::string& identity, const DecodeError& error);
  // Keeps `identity` in recently_lost_ (bounded, oldest forgotten first).
  void RememberLost(const std::string& identity);
  // A fresh token: random, never 0, not held by any event in flight.
  std::uint64_t NewToken();
  // What a worker that went away may have done with the events it held.
  enum class Lost { kMayHaveRun, kNeverReceived };
  // Takes back what the worker held: dispatched again as the next attempt (or dead-lettered after
  // the last), or, kNeverReceived, as the same attempt.
  void WorkerLost(const std::string& identity, const std::string& reason, Lost lost = Lost::kMayHaveRun);
  void Dispatch();
  // Events per call and the wait to fill a call (the stack settles spec.batch; unset: one per call).
  BatchSpec Batch() const { return opt_.spec.batch.value_or(BatchSpec{}); }
  void Send(const std::string& identity, std::vector<zmq::message_t> frames);
  // Sends frames whose first one is the routing identity.
  void SendRouted(const std::string& identity, std::vector<zmq::message_t>& frames);
  void Heartbeats(Clock::time_point now);
  void CheckDeadlines(Clock::time_point now);
  void DueRetries(Clock::time_point now);
  // Outcomes. An event's outcome is decided once (Decide; Overturn replaces it by a failure when its
  // records are refused), its records are written and their delivery reports drained
  // (DrainDeliveries), and once all are acknowledged it is concluded (Conclude).
  // A failed attempt: retried after a backoff, or decided as the outcome. `worker` is the own id of
  // the worker whose call failed (the outcome's worker), empty when no call ran.
  void Fail(std::uint64_t slot_id, Errc code, const std::string& message, const std::string& worker);
  // The event's outcome is decided: on to the records it needs (Slot::State kWriting*).
  void Decide(std::uint64_t slot_id, Decision decision);
  void BuildPipeline(Slot& slot, std::vector<wire::EmitRecord> emitted);
  // Why one of the records an ok outcome needs is over the producer's limit; empty when all fit.
  std::string OversizedRecord(const Slot& slot) const;
  // Fails an event whose outcome was decided already (its records were refused), keeping the
  // call's duration and worker.
  void Overturn(std::uint64_t slot_id, Decision failure);
  void ProducePipelineRecord(std::uint64_t slot_id, std::size_t index);
  void AfterPipeline(std::uint64_t slot_id);
  // Every pipeline record acknowledged or given up on: on to the results record, or the failure.
  void PipelineSettled(std::uint64_t slot_id);
  void ProduceDeadLetter(std::uint64_t slot_id);
  kafka::Record ResultRecord(const Slot& slot) const;
  void ProduceResult(std::uint64_t slot_id);
  void ProduceRecord(std::uint64_t slot_id, RecordStage stage, std::size_t index);
  // Hands a record to the producer; its delivery report, or its refusal at once, comes back through
  // OnDelivery.
  void Submit(std::uint64_t slot_id, RecordStage stage, std::size_t index, kafka::Record record);
  // A record acknowledged or refused (on the producer's thread, or at once): queues the report in
  // deliveries_ and wakes the loop.
  void OnDelivery(std::uint64_t slot_id, RecordStage stage, const kafka::Delivery& delivery,
                  std::size_t index, std::size_t bytes);
  // Takes the queued delivery reports and moves each event on: its next record, or Conclude.
  void DrainDeliveries();
  // Every record the outcome needs is acknowledged: counts it, gathers it for the results feed,
  // tells the observer (Finished), marks its offset done and forgets the event (State::kDone).
  void Conclude(std::uint64_t slot_id);
  // Sends the outcomes Conclude gathered this turn to the results feed: one message per topic.
  void PublishOutcomes();
  void PublishStats();
  // Records Kafka refused (dispatcher_records.cpp).
  struct DeliveryReport;
  void RecordRefused(const DeliveryReport& c);
  void DueRecordRetries(Clock::time_point now);
  // The dead-letter topic refuses an event's copy: the function is blocked, its partitions paused.
  void Block(std::uint64_t slot_id, const kafka::Delivery& delivery, int failures);
  bool Blocked() const { return !blocked_slots_.empty(); }

  Options opt_;
  PrefixedLogger log_;  // log::kBroker, every line starting "dispatcher <function>: "
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::Producer> producer_;  // dead letters and the results topic, acks=all
  std::unique_ptr<EventMatcher> matcher_;      // the function's filter; null: every event runs
  std::vector<kafka::TopicPartitionOffset> assigned_;
  zmq::socket_t router_;
  std::optional<zmq::socket_t> pub_;
  EventNotifier deliveries_ready_{"dispatcher"};  // deliveries_ has entries

  OffsetTracker tracker_;
  DispatchQueue queue_;
  std::unordered_map<std::uint64_t, Slot> slots_;
  std::unordered_map<std::uint64_t, std::uint64_t> by_token_;  // dispatch token -> slot
  std::map<std::string, Worker> workers_;                      // by routing identity
  // Connections of workers that reconnected -> the identity their worker has now: results still in
  // flight on an old connection are accepted for the tasks its worker holds (AdoptReconnected).
  std::map<std::string, std::string> former_;
  // Identities of workers lost lately: what they still send (a heartbeat, a BYE after EXIT) is
  // ignored quietly, while a connection never seen before that skips HELLO is a protocol error.
  std::set<std::string> recently_lost_;
  std::deque<std::string> recently_lost_order_;
  std::string socket_name_;  // "dispatcher/<function>", for runnel_protocol_errors_total
  std::string host_;         // this host's name, in the lease
  // The metadata of this stack's commits (runnel/broker/group_lease.hpp), as of now.
  std::string Lease(bool stopped) const;
  std::map<std::int32_t, std::int64_t> expected_next_;  // per partition, for gap detection
  using Due = std::pair<Clock::time_point, std::uint64_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> retries_;
  // Reused from turn to turn (cleared, capacity kept): allocations of a few KB per turn made glibc
  // consolidate its free lists each time, a tenth of this thread's time at 100,000 events/s.
  std::vector<zmq::message_t> received_;
  std::map<std::string, std::vector<zmq::message_t>> batches_;  // TASKS per worker identity
  // Outcomes for the results feed, gathered during a turn: per feed topic, [topic] then
  // [meta][output] per outcome (docs/protocol.md §4.1). Sent before the turn's commit.
  std::vector<std::vector<zmq::message_t>> feed_;
  std::size_t feed_used_ = 0;  // entries of feed_ in use this turn (the rest keep their capacity)
  std::uint64_t next_slot_ = 1;
  std::mt19937 rng_{std::random_device{}()};
  // Tokens are random (a result from a worker of an earlier dispatcher on the same endpoint cannot
  // match an event of this one) and only the connection holding a task may answer it.
  TokenSource tokens_;
  bool shared_ = false;           // scaling.shared: partitions come and go with the group (Subscribe)
  std::set<std::int32_t> owned_;  // shared: what the group assigned here (assigned_ as a set)
  struct Revoke {
    std::vector<kafka::TopicPartitionOffset> partitions;
    std::set<std::int32_t> ids;
    Clock::time_point deadline;  // the function's timeout plus a grace: then what runs is handed off
  };
  std::optional<Revoke> revoke_;  // a revocation waiting for the events running on its partitions
  Clock::time_point next_revoke_check_{};
  bool full_ = false;    // max_buffered events pending: not reading from the consumer
  bool paused_ = false;  // the partitions are paused (full for kPauseAfterFull, or stopping)
  Clock::time_point full_since_{};

  // A record's delivery report, or its refusal at once, handed from the producer's thread.
  struct DeliveryReport {
    std::uint64_t slot;
    RecordStage stage;
    kafka::Delivery delivery;  // error 0: acknowledged
    std::size_t index = 0;     // of the pipeline record
    std::size_t bytes = 0;     // the record's size as librdkafka counts it (RecordWireSize)
  };
  std::size_t max_record_bytes_ = 0;  // the producer's message.max.bytes
  // Records to write again after a refusal: (when, slot, stage, pipeline index).
  using RecordDue = std::tuple<Clock::time_point, std::uint64_t, RecordStage, std::size_t>;
  std::priority_queue<RecordDue, std::vector<RecordDue>, std::greater<>> record_retries_;
  std::set<std::uint64_t> blocked_slots_;  // events whose dead-letter copy cannot be written
  std::mutex deliveries_mu_;
  std::vector<DeliveryReport> deliveries_;

  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> drain_ms_{10'000};
  DispatcherStats stats_;
  mutable std::mutex stats_mu_;
  DispatcherStats published_stats_;
  Clock::time_point next_heartbeat_{}, next_deadline_scan_{}, next_commit_{}, next_recommit_{}, next_stats_{};
};

}  // namespace runnel::broker
