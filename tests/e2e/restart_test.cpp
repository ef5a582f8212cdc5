// A stack on a broker that outlives it: `runnel up --kafka` against `runnel kafka` (its own process;
// in the `kafka` tier the real Kafka named by RUNNEL_TEST_KAFKA) creates every topic it needs, and a stack
// SIGKILLed mid-run and started again in the same state dir loses nothing: every event gets its outcome, and
// only events the killed stack had not committed run again.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/test_kafka.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::seconds;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;

// One record of a results topic: where it is, and the outcome it carries.
struct OutcomeRecord {
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  Outcome outcome;
};

// Reads a results topic from the beginning until every id in `ids` has an outcome or the deadline
// passes.
std::vector<OutcomeRecord> ReadUntilEveryId(const kafka::KafkaOptions& kafka, const std::string& topic,
                                            const std::vector<std::string>& ids,
                                            std::chrono::milliseconds deadline) {
  std::set<std::string> missing(ids.begin(), ids.end());
  kafka::Admin admin(kafka);
  kafka::Consumer consumer(kafka, kafka::Consumer::Options{"e2e.restart.reader"});
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (auto p : admin.Partitions(topic)) partitions.push_back({topic, p, kafka::kOffsetBeginning});
  consumer.Assign(partitions);
  std::vector<OutcomeRecord> out;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!missing.empty() && std::chrono::steady_clock::now() < until) {
    for (auto& m : consumer.PollBatch(1000, std::chrono::milliseconds(50))) {
      for (const auto& h : m.headers) {
        if (h.name != "runnel-result") continue;
        out.push_back({m.partition, m.offset, Outcome::FromFrames(h.value, m.value)});
        missing.erase(out.back().outcome.id);
      }
    }
  }
  return out;
}

// Records written to `topic` so far, summed over its partitions.
std::int64_t RecordsIn(kafka::Admin& admin, const std::string& topic) {
  std::int64_t n = 0;
  for (const auto& po : admin.Offsets(topic, "")) n += po.end - po.log_start;
  return n;
}

// A process that is gone (or a zombie nobody reaped yet) runs nothing.
bool Gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close == std::string::npos || (close + 2 < line.size() && line[close + 2] == 'Z');
}

class RunnelKafka : public OnTestKafka {};

TEST_F(RunnelKafka, UpCreatesEveryTopicItNeedsWhetherTheyExistOrNot) {
  TestKafka kafka;
  const std::string input = kafka.Topic("echo");
  const std::string results = kafka.Topic("echo.results");
  const std::string yaml = fmt::format(R"(
kafka: {{bootstrap: "{}"}}
heartbeat: 200ms
functions:
  - name: echo
    topic: {}
    partitions: 3
    workers: 1
    results_topic: {}
)",
                                       kafka.Bootstrap(), input, results);
  const auto state_dir = TempDir("restart-topics");
  {
    // On today's main this stopped at start: "creating topic echo with 3 partitions: Failed while
    // waiting for controller: Local: Timed out".
    StackProcess stack(SharedStateDir{state_dir}, yaml);
    kafka::Admin admin(kafka.Kafka());
    for (const auto& topic : {input, input + ".dlq", results}) {
      EXPECT_EQ(admin.Partitions(topic).size(), 3u) << topic;
    }
    const auto ids = PublishEvents(kafka.Kafka(), input, {{"first", "k"}});
    const auto outcomes = ReadOutcomes(kafka.Kafka(), results, 1, seconds(30));
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_EQ(outcomes[0].id, ids[0]);
    stack.Process().Signal(SIGTERM);
    EXPECT_EQ(stack.Process().Wait(seconds(30)), 0);
  }
  // The topics exist now: the next stack uses them as they are.
  StackProcess stack(SharedStateDir{state_dir}, yaml);
  const auto ids = PublishEvents(kafka.Kafka(), input, {{"second", "k"}});
  const auto outcomes = ReadOutcomes(kafka.Kafka(), results, 2, seconds(30));
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1].id, ids[0]);
  std::filesystem::remove_all(state_dir);
}

TEST_F(RunnelKafka, AStackSigkilledMidRunAndStartedAgainLosesNothing) {
  TestKafka kafka;
  const std::string input = kafka.Topic("work");
  const std::string results = kafka.Topic("work.results");
  const std::string yaml = fmt::format(R"(
kafka: {{bootstrap: "{}"}}
heartbeat: 200ms
functions:
  - name: work
    topic: {}
    handler: builtin:sleep
    params: {{ms: 20}}
    partitions: 4
    workers: 2
    concurrency: 16
    results_topic: {}
)",
                                       kafka.Bootstrap(), input, results);
  const auto state_dir = TempDir("restart-kill");
  constexpr int kEvents = 3000;
  constexpr int kKeys = 30;
  Events events;
  for (int i = 0; i < kEvents; ++i) {
    const std::string key = fmt::format("key-{:02}", i % kKeys);
    events.emplace_back(fmt::format(R"({{"seq":{}}})", i), key);
  }

  auto stack = std::make_unique<StackProcess>(SharedStateDir{state_dir}, yaml);
  ASSERT_TRUE(stack->WaitForWorkers("work", 2, seconds(30)));
  const auto ids = PublishEvents(kafka.Kafka(), input, events);
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kEvents));

  // Mid-run: a quarter of the outcomes written.
  kafka::Admin admin(kafka.Kafka());
  ASSERT_TRUE(WaitFor([&] { return RecordsIn(admin, results) >= kEvents / 4; }, seconds(90),
                      std::chrono::milliseconds(10)));
  const auto workers = stack->WorkerPids("work");
  const auto status = stack->FunctionStatus("work");
  stack->Process().Signal(SIGKILL);
  ASSERT_EQ(stack->Process().Wait(seconds(10)), 128 + SIGKILL);
  // Its workers go with it: none keeps running a call of the dead stack.
  EXPECT_FALSE(workers.empty());
  for (const auto& [id, pid] : workers) {
    EXPECT_TRUE(WaitFor([pid = pid] { return Gone(pid); }, seconds(10)))
        << "worker " << id << " (pid " << pid << ") outlived the SIGKILLed stack";
  }
  // What the killed stack left: its group's committed offsets, then (a later round trip to the
  // broker, so every record the stack had sent is in) the outcomes it wrote.
  std::map<std::int32_t, std::int64_t> committed;
  for (const auto& po : admin.Offsets(input, "runnel.work"))
    committed[po.partition] = po.committed.value_or(0);
  std::map<std::int32_t, std::int64_t> written_before;  // results partition -> end offset at the kill
  for (const auto& po : admin.Offsets(results, "")) written_before[po.partition] = po.end;
  std::int64_t committed_total = 0;
  for (const auto& [p, c] : committed) committed_total += c;

  // Started again in the same state dir (endpoints.json still names the dead stack).
  stack = std::make_unique<StackProcess>(SharedStateDir{state_dir}, yaml);
  const auto records = ReadUntilEveryId(kafka.Kafka(), results, ids, seconds(120));
  EXPECT_TRUE(CommittedReachesEnd(kafka.Kafka(), input, "runnel.work", seconds(30)));

  // Every event has an ok outcome.
  std::map<std::string, std::vector<const OutcomeRecord*>> by_id;
  for (const auto& r : records) by_id[r.outcome.id].push_back(&r);
  for (const auto& id : ids) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      ADD_FAILURE() << "event " << id << " has no outcome";
      continue;
    }
    for (const auto* r : it->second) EXPECT_EQ(r->outcome.status, OutcomeStatus::kOk) << r->outcome.error;
  }
  EXPECT_EQ(by_id.size(), ids.size());

  // Only what the killed stack had not committed ran again, and each such event once more at most:
  // an event ran twice only if it finished before the kill at or past its partition's committed
  // offset. Each run wrote an event's outcome once.
  int duplicates = 0;
  int finished_uncommitted = 0;  // outcomes written before the kill at or past the committed offsets
  for (const auto& [id, rs] : by_id) {
    int before = 0;
    int after = 0;
    for (const auto* r : rs) (r->offset < written_before[r->partition] ? before : after)++;
    EXPECT_LE(before, 1) << "event " << id << " has " << before << " outcomes from the killed stack";
    EXPECT_LE(after, 1) << "event " << id << " has " << after << " outcomes from the restarted stack";
    const auto& o = rs.front()->outcome;
    const bool uncommitted = o.offset >= committed[o.partition];
    if (before == 1 && uncommitted) ++finished_uncommitted;
    if (rs.size() > 1) {
      ++duplicates;
      EXPECT_TRUE(uncommitted) << "event " << id << " at work[" << o.partition << "]@" << o.offset
                               << " ran again although the killed stack had committed up to "
                               << committed[o.partition];
    }
  }
  // The bound: the uncommitted events that had finished at the kill are exactly the ones that ran
  // twice (the in-flight ones had no outcome yet, so they ran once, after the restart).
  EXPECT_EQ(duplicates, finished_uncommitted);
  std::cerr << fmt::format(
      "killed after {} committed of {}; status just before the kill: in_flight {}, queued {}; "
      "{} event(s) had finished uncommitted and ran twice\n",
      committed_total, kEvents, status.value("in_flight", -1), status.value("queued", -1), duplicates);

  // Per key, in the order the outcomes were written: each run in event order, and the restarted run
  // starts no earlier than the killed one's committed offset (that no event was skipped, every
  // event having an outcome says).
  std::map<std::string, std::vector<const OutcomeRecord*>> by_key;
  for (const auto& r : records) by_key[*r.outcome.key].push_back(&r);
  EXPECT_EQ(by_key.size(), static_cast<std::size_t>(kKeys));
  for (auto& [key, rs] : by_key) {
    std::sort(rs.begin(), rs.end(),
              [](auto* a, auto* b) { return a->offset < b->offset; });  // one results partition
    std::int64_t last_before = -1;
    std::int64_t last_after = -1;
    std::optional<std::int64_t> first_after;
    for (const auto* r : rs) {
      const bool before = r->offset < written_before[r->partition];
      std::int64_t& last = before ? last_before : last_after;
      EXPECT_LT(last, r->outcome.offset) << "key " << key << " ran out of order";
      last = r->outcome.offset;
      if (!before && !first_after) first_after = r->outcome.offset;
    }
    if (first_after && last_before >= 0) {
      EXPECT_GE(*first_after, committed[rs.front()->outcome.partition]) << "key " << key;
    }
  }
  std::filesystem::remove_all(state_dir);
}

}  // namespace
}  // namespace runnel::testing
