// A function's trigger options (runnel.yaml, docs/config.md) through a real `runnel up` and real
// workers: `start: latest` skips what was published before the group's first start and nothing
// after it (a restart resumes at the commits); `group` names the consumer group the commits go to;
// `max_record_age` dead-letters old records as `expired` (`runnel dlq` shows them); `filter` commits
// the events it turns away without a call and counts them in status and /metrics.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runnel/core/envelope.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/http_get.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::seconds;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;

// `runnel kafka` in a state dir of its own, for as long as the object lives: a broker that holds
// records published before a stack starts.
class KafkaBrokerProcess {
 public:
  KafkaBrokerProcess() : state_dir_(TempDir("kafka")) {
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{RunnelBin(), "kafka", "--state-dir", state_dir_.string()});
    if (!process_->WaitForOutput("endpoints written to", seconds(20))) {
      ADD_FAILURE() << "runnel kafka did not start: " << process_->Stderr();
      throw std::runtime_error("runnel kafka did not start");
    }
    bootstrap_ = runnel::StateDir(state_dir_).KafkaBootstrap();
  }
  KafkaBrokerProcess(const KafkaBrokerProcess&) = delete;
  KafkaBrokerProcess& operator=(const KafkaBrokerProcess&) = delete;
  ~KafkaBrokerProcess() {
    if (::testing::Test::HasFailure())
      std::cerr << "---- runnel kafka (stderr) ----\n" << process_->Stderr() << "\n";
    process_.reset();
    std::filesystem::remove_all(state_dir_);
  }
  const std::string& Bootstrap() const { return bootstrap_; }
  kafka::KafkaOptions Kafka() const { return {bootstrap_, "e2e-test", {}}; }

 private:
  std::filesystem::path state_dir_;
  std::unique_ptr<ChildProcess> process_;
  std::string bootstrap_;
};

Events Payloads(const std::string& prefix, int n) {
  Events out;
  for (int i = 0; i < n; ++i) out.push_back({fmt::format("{}-{}", prefix, i), fmt::format("k{}", i)});
  return out;
}

// Records in `topic`, summed over its partitions.
std::int64_t RecordsIn(const kafka::KafkaOptions& kafka, const std::string& topic) {
  kafka::Admin admin(kafka);
  std::int64_t n = 0;
  for (const auto& po : admin.Offsets(topic, "")) n += po.end - po.log_start;
  return n;
}

std::set<std::string> Ids(const std::vector<Outcome>& outcomes) {
  std::set<std::string> out;
  for (const auto& o : outcomes) out.insert(o.id);
  return out;
}

TEST(TriggerStart, LatestSkipsWhatWasPublishedBeforeTheFirstStartAndResumesAtCommitsAfter) {
  KafkaBrokerProcess kafka;
  kafka::Admin(kafka.Kafka()).CreateTopic("echo", 2);
  const auto before = PublishEvents(kafka.Kafka(), "echo", Payloads("before", 6));
  const std::string yaml = fmt::format(R"(
kafka: {{bootstrap: "{}"}}
heartbeat: 200ms
functions:
  - name: echo
    partitions: 2
    workers: 1
    start: latest
    results_topic: echo.results
)",
                                       kafka.Bootstrap());
  const auto state_dir = TempDir("trigger-start");
  std::vector<std::string> after;
  {
    StackProcess stack(SharedStateDir{state_dir}, yaml);
    after = PublishEvents(kafka.Kafka(), "echo", Payloads("after", 4));
    const auto outcomes = ReadOutcomes(kafka.Kafka(), "echo.results", 4, seconds(30));
    EXPECT_EQ(Ids(outcomes), std::set<std::string>(after.begin(), after.end()));
    // Committed at the end: any event before it had its outcome written first, so the results
    // topic holds every outcome there will be, and none is of an event published before.
    ASSERT_TRUE(CommittedReachesEnd(kafka.Kafka(), "echo", "runnel.echo", seconds(20)));
    EXPECT_EQ(RecordsIn(kafka.Kafka(), "echo.results"), 4);
    stack.Process().Signal(SIGTERM);
    EXPECT_EQ(stack.Process().Wait(seconds(30)), 0);
  }
  // The group has commits now: what was published while the stack was down runs after a restart.
  const auto while_down = PublishEvents(kafka.Kafka(), "echo", Payloads("down", 3));
  StackProcess stack(SharedStateDir{state_dir}, yaml);
  const auto outcomes = ReadOutcomes(kafka.Kafka(), "echo.results", 7, seconds(30));
  ASSERT_EQ(outcomes.size(), 7u);
  std::set<std::string> expected(after.begin(), after.end());
  expected.insert(while_down.begin(), while_down.end());
  EXPECT_EQ(Ids(outcomes), expected);
  for (const auto& id : before) EXPECT_FALSE(Ids(outcomes).contains(id)) << id;
  std::filesystem::remove_all(state_dir);
}

TEST(TriggerStart, EarliestByDefaultRunsWhatWasPublishedBefore) {
  KafkaBrokerProcess kafka;
  kafka::Admin(kafka.Kafka()).CreateTopic("echo", 2);
  const auto before = PublishEvents(kafka.Kafka(), "echo", Payloads("before", 3));
  StackProcess stack(fmt::format(R"(
kafka: {{bootstrap: "{}"}}
functions:
  - name: echo
    partitions: 2
    workers: 1
    results_topic: echo.results
)",
                                 kafka.Bootstrap()));
  const auto outcomes = ReadOutcomes(kafka.Kafka(), "echo.results", 3, seconds(30));
  EXPECT_EQ(Ids(outcomes), std::set<std::string>(before.begin(), before.end()));
}

TEST(TriggerGroup, CommitsGoToTheNamedGroupAndStatusReadsItsLag) {
  StackProcess stack(R"(
functions:
  - name: echo
    partitions: 2
    workers: 1
    group: e2e.custom-group
)");
  const auto kafka = stack.Kafka();
  PublishEvents(kafka, "echo", Payloads("e", 8));
  ASSERT_TRUE(CommittedReachesEnd(kafka, "echo", "e2e.custom-group", seconds(30)));
  kafka::Admin admin(kafka);
  std::int64_t committed = 0;
  for (const auto& po : admin.Offsets("echo", "e2e.custom-group")) {
    if (po.end > 0) {
      ASSERT_TRUE(po.committed.has_value()) << "partition " << po.partition;
      EXPECT_EQ(*po.committed, po.end);
      committed += *po.committed;
    }
  }
  EXPECT_EQ(committed, 8);
  // Nothing went to the default group.
  for (const auto& po : admin.Offsets("echo", "runnel.echo")) EXPECT_FALSE(po.committed.has_value());
  // The stack's own readers of the group (status, the autoscaler's lag) use the same name.
  EXPECT_TRUE(WaitFor([&] { return stack.FunctionStatus("echo").value("lag", -1) == 0; }, seconds(10)));
  EXPECT_EQ(stack.Endpoints()["functions"]["echo"].value("group", ""), "e2e.custom-group");
}

// Publishes one event per payload with record timestamp `timestamp_ms` (0: now); returns the ids.
std::vector<std::string> PublishAt(const kafka::KafkaOptions& kafka, const std::string& topic,
                                   const std::vector<std::string>& payloads, std::int64_t timestamp_ms) {
  kafka::Producer producer(kafka);
  std::vector<std::string> ids;
  for (const auto& payload : payloads) {
    Envelope env;
    env.id = NewEventId();
    kafka::Record record{topic, kafka::kAnyPartition, std::nullopt, payload, env.Encode()};
    record.timestamp_ms = timestamp_ms;
    producer.ProduceSync(std::move(record));
    ids.push_back(env.id);
  }
  return ids;
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(TriggerMaxRecordAge, OldRecordsAreDeadLetteredAsExpiredAndFreshOnesRun) {
  StackProcess stack(R"(
functions:
  - name: echo
    partitions: 2
    workers: 1
    max_record_age: 30s
    results_topic: echo.results
)");
  const auto kafka = stack.Kafka();
  const auto old = PublishAt(kafka, "echo", {"old-1", "old-2", "old-3"}, NowMs() - 3'600'000);
  const auto fresh = PublishAt(kafka, "echo", {"fresh-1", "fresh-2"}, 0);
  const auto outcomes = ReadOutcomes(kafka, "echo.results", 5, seconds(30));
  ASSERT_EQ(outcomes.size(), 5u);
  std::set<std::string> expired, ok;
  for (const auto& o : outcomes) {
    if (o.status == OutcomeStatus::kDeadLetter && o.error_kind == "expired") {
      expired.insert(o.id);
      EXPECT_THAT(o.error, ::testing::HasSubstr("over the function's max_record_age of 30.0 s")) << o.error;
      EXPECT_EQ(o.worker, "") << "an expired event never runs";
    }
    if (o.status == OutcomeStatus::kOk) ok.insert(o.id);
  }
  EXPECT_EQ(expired, std::set<std::string>(old.begin(), old.end()));
  EXPECT_EQ(ok, std::set<std::string>(fresh.begin(), fresh.end()));
  EXPECT_TRUE(CommittedReachesEnd(kafka, "echo", "runnel.echo", seconds(20)));
  // `runnel dlq` lists them with their kind.
  const auto dlq =
      RunCommand({RunnelBin(), "dlq", "echo", "--json", "--state-dir", stack.StateDir().string()});
  ASSERT_EQ(dlq.exit_code, 0) << dlq.err;
  std::set<std::string> listed;
  std::istringstream lines(dlq.out);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.value("error_kind", ""), "expired") << line;
    listed.insert(j.value("id", ""));
  }
  EXPECT_EQ(listed, expired);
}

TEST(TriggerFilter, FilteredEventsAreCommittedWithoutACallAndCounted) {
  StackProcess stack(R"(
functions:
  - name: echo
    partitions: 2
    workers: 1
    results_topic: echo.results
    filter:
      key: {prefix: dev-}
      fields:
        reading.temp: {gt: 10}
)");
  const auto kafka = stack.Kafka();
  const auto ids = PublishEvents(kafka, "echo",
                                 {{R"({"reading": {"temp": 20}})", "dev-1"},
                                  {R"({"reading": {"temp": 5}})", "dev-2"},
                                  {R"({"reading": {"temp": 20}})", "prod-1"},
                                  {"not json", "dev-3"},
                                  {R"({"reading": {"temp": 11}})", std::nullopt},
                                  {R"({"reading": {"temp": 10.5}})", "dev-4"}});
  const auto outcomes = ReadOutcomes(kafka, "echo.results", 2, seconds(30));
  EXPECT_EQ(Ids(outcomes), (std::set<std::string>{ids[0], ids[5]}));
  // Every event is committed (lag 0), and since each outcome is written before its commit, the
  // results topic holds all there will be: none for the four filtered events.
  ASSERT_TRUE(CommittedReachesEnd(kafka, "echo", "runnel.echo", seconds(20)));
  EXPECT_EQ(RecordsIn(kafka, "echo.results"), 2);
  // The counts settle on the dispatcher's thread after the records are out (a success is counted
  // when its delivery report is handled): wait for both, then check the rest against them.
  nlohmann::json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = stack.FunctionStatus("echo");
        return status.value("filtered", -1) == 4 && status.value("succeeded", -1) == 2;
      },
      seconds(10)))
      << status.dump();
  EXPECT_EQ(status.value("received", -1), 6);
  // Status reads the group's lag every second.
  EXPECT_TRUE(WaitFor([&] { return stack.FunctionStatus("echo").value("lag", -1) == 0; }, seconds(10)));
  EXPECT_EQ(status["usage"].value("invocations", -1), 2) << "a filtered event is never called";
  const auto text = RunCommand({RunnelBin(), "status", "--state-dir", stack.StateDir().string()});
  EXPECT_THAT(text.out, ::testing::HasSubstr("filtered 4"));
  // /metrics serves the last tick's figures: wait for it.
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto r = HttpGet(stack.Endpoints().value("metrics", ""));
        const std::string sample = "\nrunnel_filtered_total{function=\"echo\"} ";
        const auto at = r ? r->body.find(sample) : std::string::npos;
        return at != std::string::npos && std::stod(r->body.substr(at + sample.size())) == 4.0;
      },
      seconds(10)));
}

}  // namespace
}  // namespace runnel::testing
