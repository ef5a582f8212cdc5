// The core path through real processes: `runnel up` on the embedded broker, real `runnel worker`
// processes, events published over Kafka, outcomes read back from a Kafka results topic.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;

std::map<std::string, int> CountById(const std::vector<Outcome>& outcomes) {
  std::map<std::string, int> count;
  for (const auto& o : outcomes) ++count[o.id];
  return count;
}

void ExpectExactlyOneOutcomeEach(const std::vector<std::string>& ids, const std::vector<Outcome>& outcomes) {
  const auto count = CountById(outcomes);
  EXPECT_EQ(count.size(), ids.size());
  for (const auto& id : ids) {
    auto it = count.find(id);
    if (it == count.end()) {
      ADD_FAILURE() << "event " << id << " has no outcome";
    } else {
      EXPECT_EQ(it->second, 1) << "event " << id << " has " << it->second << " outcomes";
    }
  }
}

TEST(CorePath, TenThousandKeyedEventsOnTwoPartitionsRunInKeyOrderOnSixWorkers) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: echo
    partitions: 2
    workers: 6
    concurrency: 8
    results_topic: echo.results
)");
  ASSERT_TRUE(stack.WaitForWorkers("echo", 6, std::chrono::seconds(20)));
  Events events;
  for (int i = 0; i < 10'000; ++i) events.emplace_back(std::to_string(i), fmt::format("key-{}", i % 200));
  const auto ids = PublishEvents(stack.Kafka(), "echo", events);
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", ids.size(), std::chrono::seconds(90));

  ExpectExactlyOneOutcomeEach(ids, outcomes);
  std::map<std::string, std::int64_t> last_offset;  // per key, in the order the outcomes were written
  std::set<std::string> workers;
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    workers.insert(o.worker);
    auto [it, fresh] = last_offset.try_emplace(*o.key, o.offset);
    if (!fresh) {
      EXPECT_LT(it->second, o.offset) << "key " << *o.key << " ran out of offset order";
      it->second = o.offset;
    }
  }
  EXPECT_EQ(last_offset.size(), 200u);
  EXPECT_EQ(workers.size(), 6u) << "parallelism stayed below the worker count (2 partitions)";
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "echo", "runnel.echo", std::chrono::seconds(10)));
}

TEST(CorePath, OnePoisonEventPerThousandIsDeadLetteredAndThePartitionFlows) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 2
    workers: 2
    results_topic: sleep.results
    retries: {max_attempts: 3, backoff: 20ms}
)");
  Events events;
  for (int i = 0; i < 3000; ++i) {
    events.emplace_back(i % 1000 == 500 ? fmt::format(R"({{"fail":"poison {}"}})", i) : R"({"ms":0})",
                        std::nullopt);
  }
  const auto ids = PublishEvents(stack.Kafka(), "sleep", events);
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), std::chrono::seconds(90));
  ExpectExactlyOneOutcomeEach(ids, outcomes);
  int ok = 0;
  std::set<std::string> poisoned;
  for (const auto& o : outcomes) {
    if (o.status == OutcomeStatus::kOk) {
      ++ok;
      continue;
    }
    EXPECT_EQ(o.status, OutcomeStatus::kDeadLetter);
    EXPECT_EQ(o.attempts, 3);
    EXPECT_THAT(o.error, HasSubstr("gave up after 3 attempts"));
    poisoned.insert(o.error.substr(0, o.error.find(' ', 7)));
  }
  EXPECT_EQ(ok, 2997);
  EXPECT_EQ(poisoned.size(), 3u);

  // The dead-letter topic holds each poison event with its reason and origin.
  kafka::Consumer dlq(stack.Kafka(), {"e2e.dlq"});
  dlq.Assign({{"sleep.dlq", 0, kafka::kOffsetBeginning}, {"sleep.dlq", 1, kafka::kOffsetBeginning}});
  std::vector<kafka::Message> letters;
  WaitFor(
      [&] {
        for (auto& m : dlq.PollBatch(100, std::chrono::milliseconds(50))) letters.push_back(std::move(m));
        return letters.size() >= 3;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(0));
  ASSERT_EQ(letters.size(), 3u);
  for (const auto& m : letters) {
    std::map<std::string, std::string> h;
    for (const auto& header : m.headers) h[header.name] = header.value;
    EXPECT_THAT(m.value, HasSubstr("poison"));
    EXPECT_EQ(h["runnel-error-kind"], "transient");
    EXPECT_EQ(h["runnel-attempt"], "3");
    EXPECT_THAT(h["runnel-error"], HasSubstr("poison"));
    EXPECT_THAT(h["runnel-origin"], ::testing::StartsWith("sleep/"));
    EXPECT_EQ(h["runnel-function"], "sleep");
    EXPECT_FALSE(h["runnel-id"].empty()) << "the original headers are kept";
  }
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "sleep", "runnel.sleep", std::chrono::seconds(10)));
}

TEST(CorePath, AStoppedWorkersEventsAreDispatchedAgainAndCompleteElsewhere) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 2
    workers: 2
    concurrency: 4
    results_topic: sleep.results
)",
                     {{"RUNNEL_LOG", "info,broker=debug"}});
  ASSERT_TRUE(stack.WaitForWorkers("sleep", 2, std::chrono::seconds(20)));
  const auto pids = stack.WorkerPids("sleep");
  ASSERT_EQ(pids.size(), 2u);
  Events events(8, {R"({"ms":1500})", std::nullopt});
  const auto ids = PublishEvents(stack.Kafka(), "sleep", events);
  // Both workers hold events before one of them freezes.
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto err = stack.Process().Stderr();
        return err.find("to worker sleep-1") != std::string::npos &&
               err.find("to worker sleep-2") != std::string::npos;
      },
      std::chrono::seconds(20)));
  const pid_t frozen = pids.at("sleep-1");
  ::kill(frozen, SIGSTOP);
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), std::chrono::seconds(30));
  ::kill(frozen, SIGCONT);
  ExpectExactlyOneOutcomeEach(ids, outcomes);
  int retried = 0;
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    EXPECT_EQ(o.worker, "sleep-2");
    if (o.attempts == 2) ++retried;
  }
  EXPECT_GE(retried, 1);
  EXPECT_THAT(stack.Process().Stderr(), HasSubstr("worker sleep-1 (pid " + std::to_string(frozen) +
                                                  ") left (silent for 3 heartbeats)"));
}

TEST(CorePath, SigtermDrainsABusyWorkerWithoutDuplicatesOrLoss) {
  // The default heartbeat (1 s): with 200 ms, a loaded CI machine once let 600 ms pass without one
  // while the worker drained, and its events were dispatched again (attempt 2).
  StackProcess stack(R"(
heartbeat: 1s
functions:
  - name: sleep
    partitions: 2
    workers: 1
    concurrency: 4
    results_topic: sleep.results
)",
                     {{"RUNNEL_LOG", "info,broker=debug"}});
  ASSERT_TRUE(stack.WaitForWorkers("sleep", 1, std::chrono::seconds(20)));
  const pid_t worker = stack.WorkerPids("sleep").at("sleep-1");
  Events events(8, {R"({"ms":500})", std::nullopt});
  const auto ids = PublishEvents(stack.Kafka(), "sleep", events);
  // The worker holds as many events as it runs at once (its concurrency) before it is stopped.
  const std::regex dispatched("(\\d+) event\\(s\\) to worker sleep-1");
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string err = stack.Process().Stderr();
        int total = 0;
        for (auto it = std::sregex_iterator(err.begin(), err.end(), dispatched); it != std::sregex_iterator();
             ++it) {
          total += std::stoi((*it)[1]);
        }
        return total >= 4;
      },
      std::chrono::seconds(20)));
  ::kill(worker, SIGTERM);
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), std::chrono::seconds(30));
  ExpectExactlyOneOutcomeEach(ids, outcomes);
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    EXPECT_EQ(o.attempts, 1) << "a drained event was dispatched twice";
  }
  const auto err = stack.Process().Stderr();
  EXPECT_THAT(err, HasSubstr("worker sleep-1 is draining (4 in flight)"));
  EXPECT_THAT(err, HasSubstr("worker sleep-1 ended unexpectedly (exit 0)"));  // restarted by the stack
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "sleep", "runnel.sleep", std::chrono::seconds(10)));
}

}  // namespace
}  // namespace runnel::testing

namespace runnel::testing {
namespace {

TEST(Pipeline, ThumbnailsFeedImageMetadataOneEventPerOutputFile) {
  StackProcess stack(R"(
functions:
  - name: image.thumbnail
    params: {sizes: [{width: 256, height: 256}, {width: 96, height: 96, mode: fill}]}
    results_topic: thumbs.results
    next: image.metadata
  - name: image.metadata
    results_topic: meta.results
)");
  Envelope env;
  env.id = NewEventId();
  const auto image = SourceDir() / "samples/data/landscape.jpg";
  env.file = FileRef{image.string(), std::filesystem::file_size(image), "landscape.jpg"};
  kafka::Producer producer(stack.Kafka());
  producer.ProduceSync({"image.thumbnail", kafka::kAnyPartition, std::string("upload-1"), "", env.Encode()});
  const auto meta = ReadOutcomes(stack.Kafka(), "meta.results", 2, std::chrono::seconds(30));
  ASSERT_EQ(meta.size(), 2u);
  std::set<int> widths;
  for (const auto& o : meta) {
    ASSERT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    EXPECT_EQ(o.key, "upload-1") << "the key carries through the pipeline";
    widths.insert(nlohmann::json::parse(o.output).value("width", 0));
  }
  EXPECT_EQ(widths, (std::set<int>{96, 256}));
}

TEST(Pipeline, AFunctionThatTriggersItselfIsStoppedAfterSixteenHops) {
  StackProcess stack(R"(
functions:
  - name: echo
    results_topic: echo.results
    next: echo
)");
  PublishEvents(stack.Kafka(), "echo", {{"loop", std::nullopt}});
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", 18, std::chrono::seconds(30));
  ASSERT_EQ(outcomes.size(), 18u);
  int ok = 0;
  for (const auto& o : outcomes) {
    if (o.status == OutcomeStatus::kOk) {
      ++ok;
    } else {
      EXPECT_EQ(o.status, OutcomeStatus::kDeadLetter);
      EXPECT_EQ(o.error_kind, "recursion");
      EXPECT_THAT(o.error, ::testing::HasSubstr("hop count 17 is over the limit of 16"));
    }
  }
  EXPECT_EQ(ok, 17) << "hops 0 to 16 run; hop 17 is dead-lettered";
  // And nothing runs after that: the loop has ended.
  EXPECT_EQ(ReadOutcomes(stack.Kafka(), "echo.results", 19, std::chrono::seconds(2)).size(), 18u);
}

TEST(Pipeline, EmittedEventsArePublishedWithTheirLineage) {
  StackProcess stack(R"(
functions:
  - name: iot.ingest
    params: {thresholds: {temp: {above: 80}}, alerts_topic: alerts}
    results_topic: iot.results
)");
  const auto ids =
      PublishEvents(stack.Kafka(), "iot.ingest",
                    {{R"({"device":"d1","ts":1795000000000,"metrics":{"temp":95.5}})", std::string("d1")}});
  ASSERT_EQ(ReadOutcomes(stack.Kafka(), "iot.results", 1, std::chrono::seconds(30)).size(), 1u);
  kafka::Consumer alerts(stack.Kafka(), {"e2e.alerts"});
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (int p = 0; p < 4; ++p) partitions.push_back({"alerts", p, kafka::kOffsetBeginning});
  alerts.Assign(partitions);
  std::vector<kafka::Message> got;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& m : alerts.PollBatch(10, std::chrono::milliseconds(50))) got.push_back(std::move(m));
        return !got.empty();
      },
      std::chrono::seconds(20), std::chrono::milliseconds(0)));
  const Envelope env = Envelope::Decode(got[0].headers);
  EXPECT_EQ(env.hop, 1);
  EXPECT_FALSE(env.id.empty());
  EXPECT_NE(env.id, ids[0]);
  EXPECT_THAT(env.extra, ::testing::Contains(Header{"runnel-parent", ids[0]}));
  EXPECT_THAT(got[0].value, ::testing::HasSubstr("95.5"));
}

}  // namespace
}  // namespace runnel::testing
