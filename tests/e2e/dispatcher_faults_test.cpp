// The dispatcher under broker faults, in this process so the embedded broker's fault injection can
// reach it, with real `runnel worker` processes over ZeroMQ and real Kafka clients over TCP.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <librdkafka/rdkafka.h>

#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/autoscaler/local_backend.hpp"
#include "runnel/broker/dispatcher.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

constexpr int kApiFetch = 1;
constexpr int kApiOffsetCommit = 8;

class DispatcherFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("faults");
    spec_.name = "echo";
    spec_.handler = "builtin:echo";
    spec_.topic = "faults.in";
    spec_.dead_letter_topic = "faults.in.dlq";
    spec_.results_topic = "faults.results";
    for (const auto& t : {spec_.topic, spec_.dead_letter_topic, spec_.results_topic})
      broker_.CreateTopic(t, 2);
  }
  void TearDown() override {
    workers_.reset();
    dispatcher_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartDispatcher(int workers) {
    broker::Dispatcher::Options o;
    o.spec = spec_;
    o.kafka = broker_.ClientConfig();
    o.zmq = &zmq_;
    o.heartbeat = std::chrono::milliseconds(200);
    o.output_dir = (dir_ / "outputs").string();
    dispatcher_ = std::make_unique<broker::Dispatcher>(o);
    dispatcher_->Start();
    workers_ = std::make_unique<autoscaler::LocalProcessBackend>(autoscaler::WorkerCommand(RunnelBin()),
                                                                 dir_ / "logs");
    for (int i = 0; i < workers; ++i) workers_->Start("echo", dispatcher_->Endpoint());
  }

  std::filesystem::path dir_;
  kafka::EmbeddedBroker broker_;
  zmq::context_t zmq_{1};
  FunctionSpec spec_;
  std::unique_ptr<broker::Dispatcher> dispatcher_;
  std::unique_ptr<autoscaler::LocalProcessBackend> workers_;
};

TEST_F(DispatcherFaults, BrokerDownAndInjectedErrorsLoseNothing) {
  StartDispatcher(2);
  std::vector<std::pair<std::string, std::optional<std::string>>> events;
  for (int i = 0; i < 2000; ++i) events.emplace_back(std::to_string(i), fmt::format("k{}", i % 50));
  const auto ids = PublishEvents(broker_.ClientConfig(), spec_.topic, events);
  ASSERT_TRUE(WaitFor([&] { return dispatcher_->Stats().succeeded >= 100; }, std::chrono::seconds(30)));

  broker_.SetBrokerDown(1);
  std::this_thread::sleep_for(std::chrono::seconds(5));  // the fault itself: five seconds of outage
  broker_.SetBrokerUp(1);
  broker_.PushRequestErrors(kApiOffsetCommit,
                            {RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                             RD_KAFKA_RESP_ERR_NOT_COORDINATOR});
  broker_.PushRequestErrors(
      kApiFetch, {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT});

  // Every event completes exactly once in the dispatcher...
  ASSERT_TRUE(WaitFor([&] { return dispatcher_->Stats().succeeded >= 2000; }, std::chrono::seconds(90)));
  const auto stats = dispatcher_->Stats();
  EXPECT_EQ(stats.succeeded, 2000);
  EXPECT_EQ(stats.errors + stats.dead_lettered, 0);
  // ...and has its outcome on the results topic. The embedded broker deduplicates a producer's
  // retried requests only for transactional producers (docs/protocol.md §5), so after an outage a
  // record may stand twice there; both copies are the same outcome.
  const auto outcomes =
      ReadOutcomes(broker_.ClientConfig(), spec_.results_topic, ids.size(), std::chrono::seconds(30));
  std::map<std::string, Outcome> seen;
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    auto [it, fresh] = seen.try_emplace(o.id, o);
    if (!fresh) {
      EXPECT_EQ(it->second.MetaJson(), o.MetaJson()) << "two different outcomes for " << o.id;
    }
  }
  for (const auto& id : ids) EXPECT_TRUE(seen.contains(id)) << "no outcome for " << id;
  EXPECT_TRUE(
      CommittedReachesEnd(broker_.ClientConfig(), spec_.topic, spec_.Group(), std::chrono::seconds(20)));
  EXPECT_EQ(dispatcher_->Stats().retention_lost, 0);
}

// Records the broker dropped before the dispatcher saw them are counted as lost, loudly, and never
// reported as processed.
TEST_F(DispatcherFaults, RetentionLossIsCountedNotHidden) {
  broker_.CreateTopic("faults.small", 1);
  spec_.topic = "faults.small";
  spec_.results_topic.clear();
  {  // The group has processed nothing yet: it resumes at offset 0.
    kafka::Consumer c(broker_.ClientConfig(), {spec_.Group()});
    c.CommitOffsets({{spec_.topic, 0, 0}});
  }
  {  // 8 MiB into one partition with nobody consuming: the broker drops the oldest records.
    kafka::Producer producer(broker_.ClientConfig());
    for (int i = 0; i < 8 * 1024; ++i)
      producer.Produce({spec_.topic, 0, std::nullopt, std::string(1024, 'x'), {}}, {});
    ASSERT_EQ(producer.Flush(std::chrono::seconds(30)), 0);
  }
  kafka::Admin admin(broker_.ClientConfig());
  const auto before = admin.Offsets(spec_.topic, spec_.Group());
  ASSERT_GT(before[0].log_start, 0);
  StartDispatcher(1);
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto s = dispatcher_->Stats();
        return s.succeeded + s.retention_lost >= 8 * 1024;
      },
      std::chrono::seconds(60)));
  const auto stats = dispatcher_->Stats();
  EXPECT_EQ(stats.retention_lost, before[0].log_start);
  EXPECT_EQ(stats.succeeded, 8 * 1024 - before[0].log_start);
}

// The worker side of docs/protocol.md §3, scripted: a DEALER socket that a test drives step by
// step, to put a real dispatcher in states a real worker reaches only by chance (a reconnect).
class ScriptedWorker {
 public:
  ScriptedWorker(zmq::context_t& ctx, const std::string& endpoint) : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  void Send(std::string_view command, const std::vector<std::string>& frames = {}) {
    std::vector<zmq::message_t> parts;
    parts.emplace_back(command.data(), command.size());
    for (const auto& f : frames) parts.emplace_back(f.data(), f.size());
    ASSERT_TRUE(zmq::send_multipart(socket_, parts));
  }

  // Sends HEARTBEAT if the last one is kBeat old: a worker the test waits on must not fall silent.
  void Beat() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_beat_ < kBeat) return;
    last_beat_ = now;
    Send(wire::cmd::kHeartbeat, {R"({"in_flight":0})"});
  }

  // The frames of the next message whose command is `command` (others are skipped), or empty.
  // Beats while it waits.
  std::vector<std::string> Expect(std::string_view command, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      Beat();
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::min(left, kBeat));
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
      if (parts.empty() || parts[0].to_string_view() != command) continue;
      std::vector<std::string> frames;
      for (const auto& part : parts) frames.push_back(part.to_string());
      return frames;
    }
  }

  // The tasks of TASKS messages (task header, payload) until `count` came; fewer if the deadline
  // passed first.
  std::vector<std::pair<std::string, std::string>> TakeTasks(std::size_t count,
                                                             std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    std::vector<std::pair<std::string, std::string>> tasks;
    while (tasks.size() < count) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      const auto message = left.count() > 0 ? Expect(wire::cmd::kTasks, left) : std::vector<std::string>{};
      if (message.empty()) break;
      for (std::size_t i = 1; i + 1 < message.size(); i += 2) tasks.emplace_back(message[i], message[i + 1]);
    }
    return tasks;
  }

  // RESULTS answering one task (its header and payload frames): ok, the payload echoed.
  void Answer(const std::pair<std::string, std::string>& task) {
    wire::ResultHeader result;
    result.token = wire::DecodeTask(task.first).token;
    Send(wire::cmd::kResults, {wire::Encode(result), task.second});
  }

 private:
  static constexpr std::chrono::milliseconds kBeat{50};  // the fixture's heartbeat is 200 ms
  zmq::socket_t socket_;
  std::chrono::steady_clock::time_point last_beat_{};
};

std::string Hello(int capacity, bool draining) {
  nlohmann::json hello = {{"v", wire::kVersion},
                          {"function", "echo"},
                          {"worker", "echo-7"},
                          {"pid", 4242},
                          {"capacity", capacity}};
  if (draining) hello["draining"] = true;
  return hello.dump();
}

// A worker that heard nothing from its dispatcher for three heartbeats reconnects on a new socket.
// The events it held are still running there: after the new HELLO (here a draining one, capacity
// 0) their results count, whichever connection brings them, and nothing runs twice.
TEST_F(DispatcherFaults, AWorkerThatReconnectsKeepsItsEventsAndNothingRunsTwice) {
  spec_.concurrency = 4;
  StartDispatcher(0);
  ScriptedWorker first(zmq_, dispatcher_->Endpoint());
  first.Send(wire::cmd::kHello, {Hello(4, false)});
  ASSERT_FALSE(first.Expect(wire::cmd::kWelcome, std::chrono::seconds(10)).empty());
  std::vector<std::string> ids;
  std::thread publish([&] {
    ids = PublishEvents(broker_.ClientConfig(), spec_.topic,
                        {{"a", std::nullopt}, {"b", std::nullopt}, {"c", std::nullopt}, {"d", std::nullopt}});
  });
  const auto held = first.TakeTasks(4, std::chrono::seconds(20));
  ASSERT_EQ(held.size(), 4u) << "tasks the dispatcher sent";
  publish.join();

  ScriptedWorker second(zmq_, dispatcher_->Endpoint());
  second.Send(wire::cmd::kHello, {Hello(0, true)});
  ASSERT_FALSE(second.Expect(wire::cmd::kWelcome, std::chrono::seconds(10)).empty())
      << "a draining worker's HELLO (capacity 0) must be accepted";
  // Half the results come on the old connection, half on the new one.
  for (std::size_t i = 0; i < held.size(); ++i) (i % 2 == 0 ? first : second).Answer(held[i]);
  ASSERT_TRUE(WaitFor(
      [&] {
        second.Beat();
        return dispatcher_->Stats().succeeded >= 4;
      },
      std::chrono::seconds(20)));
  second.Send(wire::cmd::kBye, {R"({"reason":"drained"})"});

  const auto outcomes =
      ReadOutcomes(broker_.ClientConfig(), spec_.results_topic, ids.size(), std::chrono::seconds(30));
  std::map<std::string, int> seen;
  for (const auto& o : outcomes) {
    ++seen[o.id];
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    EXPECT_EQ(o.attempts, 1) << "event " << o.id << " ran twice";
  }
  for (const auto& id : ids) EXPECT_EQ(seen[id], 1) << "outcomes of " << id;
  const auto stats = dispatcher_->Stats();
  EXPECT_EQ(stats.succeeded, 4);
  EXPECT_EQ(stats.redispatched, 0);
  EXPECT_EQ(stats.attempts, 4);
}

// Only the connection holding a task (or an earlier connection of the same worker) may answer it:
// a stranger's RESULTS and another worker's are dropped and counted. Tokens are random, not a
// counter.
TEST_F(DispatcherFaults, AResultFromAConnectionThatDoesNotHoldTheTaskIsDroppedAndCounted) {
  spec_.concurrency = 4;
  StartDispatcher(0);
  ScriptedWorker holder(zmq_, dispatcher_->Endpoint());
  holder.Send(wire::cmd::kHello, {Hello(4, false)});
  ASSERT_FALSE(holder.Expect(wire::cmd::kWelcome, std::chrono::seconds(10)).empty());
  ScriptedWorker other(zmq_, dispatcher_->Endpoint());
  nlohmann::json hello = nlohmann::json::parse(Hello(0, true));
  hello["worker"] = "echo-9";
  hello["pid"] = 4949;
  other.Send(wire::cmd::kHello, {hello.dump()});
  ASSERT_FALSE(other.Expect(wire::cmd::kWelcome, std::chrono::seconds(10)).empty());
  std::vector<std::string> ids;
  std::thread publish([&] {
    ids = PublishEvents(broker_.ClientConfig(), spec_.topic, {{"a", "k1"}, {"b", "k2"}});
  });
  const auto held = holder.TakeTasks(2, std::chrono::seconds(20));
  publish.join();
  ASSERT_EQ(held.size(), 2u);
  const auto t0 = wire::DecodeTask(held[0].first).token;
  const auto t1 = wire::DecodeTask(held[1].first).token;
  EXPECT_NE(t0 + 1, t1) << "tokens are a counter";
  EXPECT_NE(t1 + 1, t0) << "tokens are a counter";

  ScriptedWorker stranger(zmq_, dispatcher_->Endpoint());  // never says HELLO
  wire::ResultHeader forged;
  forged.token = t0;
  stranger.Send(wire::cmd::kResults, {wire::Encode(forged), "forged"});
  other.Send(wire::cmd::kResults, {wire::Encode(forged), "forged"});
  ASSERT_TRUE(WaitFor(
      [&] {
        holder.Beat();
        other.Beat();
        const auto stats = dispatcher_->Stats();
        const auto it = stats.protocol_errors.find("foreign-token");
        return it != stats.protocol_errors.end() && it->second >= 2;
      },
      std::chrono::seconds(10)))
      << "forged results were not counted";
  EXPECT_EQ(dispatcher_->Stats().succeeded, 0);
  for (const auto& task : held) holder.Answer(task);
  ASSERT_TRUE(WaitFor(
      [&] {
        holder.Beat();
        return dispatcher_->Stats().succeeded >= 2;
      },
      std::chrono::seconds(20)));
  const auto outcomes =
      ReadOutcomes(broker_.ClientConfig(), spec_.results_topic, ids.size(), std::chrono::seconds(30));
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& o : outcomes) {
    EXPECT_NE(o.output, "forged") << o.id;
    EXPECT_EQ(o.worker, "echo-7") << o.id;
  }
}

// Tasks sent just before the dispatcher reads a worker's DRAINING reach it after it left: they never
// ran, so they are dispatched again as the same attempt, not as a retry.
TEST_F(DispatcherFaults, TasksThatReachAWorkerAfterItDrainedRunAgainAsTheSameAttempt) {
  spec_.concurrency = 4;
  StartDispatcher(0);
  ScriptedWorker leaving(zmq_, dispatcher_->Endpoint());
  leaving.Send(wire::cmd::kHello, {Hello(4, false)});
  ASSERT_FALSE(leaving.Expect(wire::cmd::kWelcome, std::chrono::seconds(10)).empty());
  std::vector<std::string> ids;
  std::thread publish([&] {
    ids = PublishEvents(broker_.ClientConfig(), spec_.topic, {{"a", std::nullopt}, {"b", std::nullopt}});
  });
  ASSERT_EQ(leaving.TakeTasks(2, std::chrono::seconds(20)).size(), 2u) << "tasks the dispatcher sent";
  publish.join();
  // As if they arrived too late: the worker drained with nothing held and left.
  leaving.Send(wire::cmd::kDraining);
  leaving.Send(wire::cmd::kBye, {R"({"reason":"drained"})"});

  ScriptedWorker next(zmq_, dispatcher_->Endpoint());
  nlohmann::json hello = nlohmann::json::parse(Hello(4, false));
  hello["worker"] = "echo-8";
  hello["pid"] = 4343;
  next.Send(wire::cmd::kHello, {hello.dump()});
  ASSERT_FALSE(next.Expect(wire::cmd::kWelcome, std::chrono::seconds(10)).empty());
  const auto tasks = next.TakeTasks(2, std::chrono::seconds(20));
  ASSERT_EQ(tasks.size(), 2u) << "tasks the next worker got";
  for (const auto& task : tasks) {
    EXPECT_EQ(wire::DecodeTask(task.first).attempt, 1u) << "an undelivered task is not a failed attempt";
    next.Answer(task);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        next.Beat();
        return dispatcher_->Stats().succeeded >= 2;
      },
      std::chrono::seconds(20)));
  const auto outcomes =
      ReadOutcomes(broker_.ClientConfig(), spec_.results_topic, ids.size(), std::chrono::seconds(30));
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& o : outcomes) EXPECT_EQ(o.attempts, 1) << o.id;
  EXPECT_EQ(dispatcher_->Stats().redispatched, 2);
  EXPECT_EQ(dispatcher_->Stats().retries, 0);
}

}  // namespace
}  // namespace runnel::testing

namespace runnel::testing {
namespace {

// A Kafka error that retrying cannot fix ends the dispatcher as a failure its stack hears of
// (runnel up then exits 3), with what to check, instead of a thread that ends unnoticed.
TEST_F(DispatcherFaults, AFetchErrorRetryingCannotFixIsReportedAsTheDispatchersFailure) {
  std::mutex mu;
  std::vector<std::string> reasons;
  broker::Dispatcher::Options o;
  o.spec = spec_;
  o.kafka = broker_.ClientConfig();
  o.zmq = &zmq_;
  o.output_dir = (dir_ / "outputs").string();
  o.on_failure = [&](const std::string& reason) {
    std::lock_guard lock(mu);
    reasons.push_back(reason);
  };
  dispatcher_ = std::make_unique<broker::Dispatcher>(o);
  dispatcher_->Start();
  broker_.PushRequestErrors(kApiFetch, std::vector<int>(20, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !reasons.empty();
      },
      std::chrono::seconds(30)));
  std::lock_guard lock(mu);
  EXPECT_EQ(reasons.size(), 1u);
  EXPECT_THAT(reasons[0], ::testing::HasSubstr("uthorization"));
  EXPECT_THAT(reasons[0], ::testing::HasSubstr("check that the function's topic exists"));
}

}  // namespace
}  // namespace runnel::testing
