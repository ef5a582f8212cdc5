// Several stacks per function (issue 14): with `scaling.shared: true` the stacks split the
// function's partitions through its consumer group (cooperative-sticky). Two stacks against one
// `runnel kafka` (which outlives them) each run part of the events, every event gets an outcome,
// the committed offsets reach the end; a SIGKILLed stack's partitions go to the survivor, which
// finishes what arrives after. A stack that does not share the function is refused while a shared
// one is live. Before scaling.shared, the second stack was refused outright.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/test_kafka.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

class SharedStacks : public OnTestKafka {};

constexpr int kPartitions = 4;

// The embedded broker makes a joining member wait for session.timeout.ms - 1 s: kept low here.
std::string Yaml(const TestKafka& kafka, const std::string& topic, bool shared) {
  return fmt::format(R"(
kafka:
  bootstrap: "{}"
  options: {{session.timeout.ms: "6000", heartbeat.interval.ms: "500"}}
functions:
  - name: echo
    topic: {}
    results_topic: {}.results
    partitions: {}
    scaling: {{shared: {}, min: 1, max: 2}}
)",
                     kafka.Bootstrap(), topic, topic, kPartitions, shared ? "true" : "false");
}

std::vector<std::pair<std::string, std::optional<std::string>>> Events(int from, int count) {
  std::vector<std::pair<std::string, std::optional<std::string>>> events;
  for (int i = from; i < from + count; ++i)
    events.emplace_back(fmt::format("event {}", i), fmt::format("k{}", i % 64));
  return events;
}

std::vector<int> Owned(const StackProcess& stack) {
  const auto f = stack.FunctionStatus("echo");
  if (!f.contains("partitions_owned") || !f["partitions_owned"].is_array()) return {};
  return f["partitions_owned"].get<std::vector<int>>();
}

// The results topic from its start until every one of `ids` has an outcome (duplicates included).
std::vector<Outcome> OutcomesOf(const TestKafka& kafka, const std::string& topic,
                                const std::vector<std::string>& ids, std::chrono::milliseconds deadline) {
  const std::set<std::string> wanted(ids.begin(), ids.end());
  std::set<std::string> seen;
  std::vector<Outcome> out;
  ReadFromBeginning(
      kafka.Kafka(), topic + ".results", "e2e.outcomes", deadline, 1000,
      [&](kafka::Message& m) {
        for (const auto& h : m.headers) {
          if (h.name != "runnel-result") continue;
          out.push_back(Outcome::FromFrames(h.value, m.value));
          if (wanted.contains(out.back().id)) seen.insert(out.back().id);
        }
      },
      [&] { return seen.size() == wanted.size(); });
  return out;
}

// Every id in `ids` has an outcome among `outcomes`; returns how many outcomes were duplicates.
std::size_t ExpectEveryIdOnce(const std::vector<Outcome>& outcomes, const std::vector<std::string>& ids) {
  std::set<std::string> seen;
  std::size_t duplicates = 0;
  for (const auto& o : outcomes) duplicates += seen.insert(o.id).second ? 0 : 1;
  std::size_t missing = 0;
  for (const auto& id : ids) missing += seen.contains(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "events without an outcome";
  return duplicates;
}

TEST_F(SharedStacks, TwoStacksSplitTheWorkAndTheSurvivorOfAKillFinishesTheRest) {
  TestKafka kafka;
  const std::string topic = kafka.Topic("echo");
  const std::string yaml = Yaml(kafka, topic, true);
  StackProcess a(yaml);
  auto b = std::make_unique<StackProcess>(yaml);
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto oa = Owned(a);
        const auto ob = Owned(*b);
        return !oa.empty() && !ob.empty() && oa.size() + ob.size() == kPartitions;
      },
      seconds(60)))
      << "the group did not split the partitions: a owns " << Owned(a).size() << ", b owns "
      << Owned(*b).size();
  std::set<int> all;
  for (int p : Owned(a)) all.insert(p);
  for (int p : Owned(*b))
    EXPECT_TRUE(all.insert(p).second) << "partition " << p << " is owned by both stacks";

  const auto first = PublishEvents(kafka.Kafka(), topic, Events(0, 4000));
  ASSERT_EQ(first.size(), 4000u);
  const auto outcomes = OutcomesOf(kafka, topic, first, seconds(120));
  EXPECT_EQ(ExpectEveryIdOnce(outcomes, first), 0u) << "no rebalance happened: no event may run twice";
  EXPECT_TRUE(CommittedReachesEnd(kafka.Kafka(), topic, "runnel.echo", seconds(30)));
  const auto done_by = [](const StackProcess& s) { return s.FunctionStatus("echo").value("succeeded", 0); };
  EXPECT_GT(done_by(a), 0) << "stack a did none of the work";
  EXPECT_GT(done_by(*b), 0) << "stack b did none of the work";
  // Each stack's status names the other, from the leases of the group's commits, with the
  // partitions it owns; and `runnel status` says so.
  const auto names_other = [](StackProcess& self, StackProcess& other) {
    const auto stacks = self.FunctionStatus("echo").value("stacks", nlohmann::json::array());
    std::vector<int> self_parts, other_parts;
    for (const auto& s : stacks) {
      if (s.value("self", false)) self_parts = s.value("partitions", std::vector<int>{});
      if (!s.value("self", true) && s.value("pid", 0) == other.Process().Pid() && s.value("live", false) &&
          s.value("shared", false))
        other_parts = s.value("partitions", std::vector<int>{});
    }
    return self_parts == Owned(self) && other_parts == Owned(other) && !other_parts.empty();
  };
  EXPECT_TRUE(WaitFor([&] { return names_other(a, *b) && names_other(*b, a); }, seconds(20)))
      << a.FunctionStatus("echo")["stacks"].dump();
  const auto text = RunCommand({RunnelBin(), "status", "--state-dir", a.StateDir().string()});
  EXPECT_THAT(text.out, HasSubstr("other stack on its group: "));
  EXPECT_THAT(text.out, HasSubstr(fmt::format("(pid {} on ", b->Process().Pid())));
  EXPECT_THAT(text.out, HasSubstr("shared through its consumer group: this stack owns partitions "));

  // SIGKILL: no leave; the group's session timeout hands b's partitions to a.
  b->Process().Signal(SIGKILL);
  (void)b->Process().Wait(seconds(10));
  b.reset();
  const auto second = PublishEvents(kafka.Kafka(), topic, Events(4000, 4000));
  ASSERT_TRUE(WaitFor([&] { return Owned(a).size() == kPartitions; }, seconds(60)))
      << "the survivor did not take every partition: it owns " << Owned(a).size();
  std::vector<std::string> every = first;
  every.insert(every.end(), second.begin(), second.end());
  const auto after = OutcomesOf(kafka, topic, every, seconds(120));
  // Duplicates: what b ran after its last commit, run again by a.
  const std::size_t duplicates = ExpectEveryIdOnce(after, every);
  RecordProperty("duplicates_after_kill", static_cast<int>(duplicates));
  EXPECT_TRUE(CommittedReachesEnd(kafka.Kafka(), topic, "runnel.echo", seconds(30)));
}

// Slow enough (50 ms a call, two workers of eight calls each per stack) that events are running
// when the group moves partitions.
std::string SlowYaml(const TestKafka& kafka, const std::string& topic) {
  return fmt::format(R"(
kafka:
  bootstrap: "{}"
  options: {{session.timeout.ms: "6000", heartbeat.interval.ms: "500"}}
functions:
  - name: echo
    handler: builtin:sleep
    params: {{ms: 50}}
    topic: {}
    results_topic: {}.results
    partitions: 6
    concurrency: 8
    scaling: {{shared: true, min: 2, max: 2}}
)",
                     kafka.Bootstrap(), topic, topic);
}

TEST_F(SharedStacks, AThirdStackJoiningAndAStackLeavingMidRunKeepEveryEventAndEachKeysOrder) {
  TestKafka kafka;
  const std::string topic = kafka.Topic("echo");
  const std::string yaml = SlowYaml(kafka, topic);
  StackProcess a(yaml);
  auto b = std::make_unique<StackProcess>(yaml);
  const auto owned_by = [](const StackProcess& s) { return Owned(s).size(); };
  ASSERT_TRUE(WaitFor([&] { return owned_by(a) + owned_by(*b) == 6 && owned_by(a) > 0 && owned_by(*b) > 0; },
                      seconds(60)));
  const auto ids = PublishEvents(kafka.Kafka(), topic, Events(0, 6000));  // about 9 s of work for two stacks
  ASSERT_EQ(ids.size(), 6000u);

  // A third stack joins while the events run: the cooperative rebalance moves partitions to it.
  StackProcess c(yaml);
  ASSERT_TRUE(WaitFor([&] { return owned_by(c) > 0; }, seconds(60))) << "the third stack got no partition";
  const auto done_by = [](const StackProcess& s) { return s.FunctionStatus("echo").value("succeeded", 0); };
  EXPECT_LT(done_by(a) + done_by(*b), 6000) << "the run ended before the join: nothing moved mid-run";
  // b leaves gracefully (SIGTERM drains): its running events finish and are committed, then its
  // partitions go to a and c.
  b->Process().Signal(SIGTERM);
  EXPECT_EQ(b->Process().Wait(seconds(60)), 0) << b->Process().Stderr();
  b.reset();
  ASSERT_TRUE(WaitFor([&] { return owned_by(a) + owned_by(c) == 6; }, seconds(60)))
      << "a owns " << owned_by(a) << ", c owns " << owned_by(c);

  const auto outcomes = OutcomesOf(kafka, topic, ids, seconds(180));
  const std::size_t duplicates = ExpectEveryIdOnce(outcomes, ids);
  // Recorded, not bounded: when the broker refuses the revoking stack's commit while the group
  // rebalances (REBALANCE_IN_PROGRESS; the embedded broker does under load), the next owner runs
  // again what was done since the last accepted commit: 994 of 6,000 seen in CI. Every event has an
  // outcome and each key's order holds (below); the tighter bound is not met (docs/config.md).
  RecordProperty("duplicates", static_cast<int>(duplicates));
  EXPECT_LT(duplicates, ids.size()) << "more duplicates than events: a partition ran twice from its start";
  EXPECT_GT(done_by(c), 0) << "the stack that joined did none of the work";
  EXPECT_TRUE(CommittedReachesEnd(kafka.Kafka(), topic, "runnel.echo", seconds(30)));

  // Per key, each event's first outcome comes after those of the key's earlier events (a rerun
  // after a handoff repeats events, never overtakes one).
  std::map<std::string, std::int64_t> last_first;  // key -> offset of its latest first outcome
  std::set<std::string> seen;
  for (const auto& o : outcomes) {
    if (!seen.insert(o.id).second) continue;
    ASSERT_TRUE(o.key.has_value());
    auto [it, fresh] = last_first.try_emplace(*o.key, o.offset);
    if (!fresh) {
      EXPECT_GT(o.offset, it->second)
          << "key " << *o.key << ": offset " << o.offset << " finished first after " << it->second;
      it->second = o.offset;
    }
  }
}

TEST_F(SharedStacks, AStackThatDoesNotShareTheFunctionIsRefusedWhileASharedOneIsLive) {
  TestKafka kafka;
  const std::string topic = kafka.Topic("echo");
  StackProcess shared(Yaml(kafka, topic, true));
  ASSERT_TRUE(WaitFor([&] { return Owned(shared).size() == kPartitions; }, seconds(60)));
  // Its lease is committed with the offsets of the partitions the group gave it.
  const auto dir = TempDir("not-shared");
  std::ofstream(dir / "runnel.yaml") << Yaml(kafka, topic, false);
  const auto alone = RunCommand({RunnelBin(), "up", "--config", (dir / "runnel.yaml").string(), "--state-dir",
                                 (dir / "state").string()},
                                seconds(60));
  EXPECT_EQ(alone.exit_code, 1) << alone.err;
  EXPECT_THAT(alone.err, HasSubstr("function echo: another stack (id "));
  EXPECT_THAT(alone.err, HasSubstr("Set scaling.shared: true for the function in every stack's runnel.yaml"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
