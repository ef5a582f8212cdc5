// Chaos: workers are SIGKILLed while events run; the stack replaces them and no event is lost. On
// the stack's embedded broker, and in the `kafka` tier on the real Kafka named by RUNNEL_TEST_KAFKA.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/test_kafka.hpp"

namespace runnel::testing {
namespace {

class Chaos : public OnTestKafka {};

TEST_F(Chaos, KillingARandomWorkerEverySecondLosesNoEvent) {
  const auto kafka = TestKafka::RealKafkaTier() ? std::make_unique<TestKafka>() : nullptr;
  const std::string input = kafka ? kafka->Topic("sleep") : "sleep";
  const std::string results = kafka ? kafka->Topic("sleep.results") : "sleep.results";
  StackProcess stack(
      fmt::format(R"(
heartbeat: 200ms
functions:
  - name: sleep
    topic: {}
    partitions: 2
    workers: 4
    concurrency: 8
    params: {{ms: 10}}
    results_topic: {}
    retries: {{max_attempts: 10, backoff: 10ms}}
)",
                  input, results),
      {}, kafka ? std::vector<std::string>{"--kafka", kafka->Bootstrap()} : std::vector<std::string>{});
  ASSERT_TRUE(stack.WaitForWorkers("sleep", 4, std::chrono::seconds(20)));
  std::vector<std::pair<std::string, std::optional<std::string>>> events;
  for (int i = 0; i < 20'000; ++i) events.emplace_back(std::to_string(i), fmt::format("k{}", i % 500));
  const auto ids = PublishEvents(stack.Kafka(), input, events);

  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread killer([&] {
    std::mt19937 rng(42);
    // Bounded: at most 120 kills, one a second, until the outcomes are in.
    for (int round = 0; round < 120 && !done.load(); ++round) {
      std::this_thread::sleep_for(std::chrono::seconds(1));  // the chaos cadence, not a wait
      const auto pids = stack.WorkerPids("sleep");
      if (pids.empty() || done.load()) continue;
      auto it = pids.begin();
      std::advance(it, static_cast<long>(rng() % pids.size()));
      if (::kill(it->second, SIGKILL) == 0) kills.fetch_add(1);
    }
  });
  const auto outcomes = ReadOutcomes(stack.Kafka(), results, ids.size(), std::chrono::seconds(180));
  done = true;
  killer.join();

  std::map<std::string, int> count;
  for (const auto& o : outcomes) ++count[o.id];
  std::size_t missing = 0;
  for (const auto& id : ids) missing += count.contains(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "events without an outcome";
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << "event " << id << " has " << n << " outcomes";
  EXPECT_GE(kills.load(), 2) << "the run ended before the chaos began";
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), input, "runnel.sleep", std::chrono::seconds(20)));
}

}  // namespace
}  // namespace runnel::testing
