// The dispatcher in this process against the embedded broker, driven by scripted workers
// (runnel::testing::ScriptedWorker) instead of worker processes: a reconnect that keeps its events,
// results from connections that do not hold the task, tasks that arrive after a drain, and a fetch
// error that retrying cannot fix. The same checks with real workers are in tests/e2e.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>

#include "runnel/broker/dispatcher.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/testing/dispatcher_rig.hpp"
#include "runnel/testing/scripted_worker.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

constexpr int kApiFetch = 1;

// StartDispatcher() starts no worker: the test's scripted workers connect to its endpoint.
class DispatcherFaults : public DispatcherRig {
 protected:
  DispatcherFaults() : DispatcherRig({.name = "faults", .partitions = 2}) {}
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
  StartDispatcher();
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
  StartDispatcher();
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
  StartDispatcher();
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
