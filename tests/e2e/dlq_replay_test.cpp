// `runnel dlq F --replay` aimed: permanent kinds skipped unless --all (on main every bad-input
// letter was resent to fail straight back), --kind, --id and --since, and an event that failed
// again after a replay (its new dead letter carries runnel-replayed, set by the replay and carried
// by the dispatcher) skipped unless --again. No dead letter is ever replayed twice, whatever the
// flags. Each test has a function (the builtin sleep, which fails as asked) of its own, with one
// partition, so that dead letters are listed in the order they were written.
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPermanent = R"({"fail":"no such user","permanent":true})";
constexpr const char* kFlaky = R"({"fail":"database down"})";

class DlqReplay : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string yaml = "heartbeat: 200ms\nfunctions:\n";
    for (const char* name : {"kinds", "by.kind", "by.id", "by.since"}) {
      yaml += fmt::format(
          "  - name: {}\n    handler: builtin:sleep\n    partitions: 1\n    workers: 1\n"
          "    retries: {{max_attempts: 1}}\n",
          name);
    }
    stack_ = new StackProcess(yaml);
    for (const char* name : {"kinds", "by.kind", "by.id", "by.since"}) {
      ASSERT_TRUE(stack_->WaitForWorkers(name, 1, seconds(30))) << name;
    }
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  static RunResult Runnel(std::vector<std::string> args) {
    args.insert(args.begin(), RunnelBin());
    args.push_back("--state-dir");
    args.push_back(stack_->StateDir().string());
    return RunCommand(std::move(args), seconds(60));
  }
  // Publishes a payload and returns its event id.
  static std::string Publish(const std::string& function, const std::string& payload) {
    const auto r = Runnel({"publish", function, "--data", payload});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  // The function's dead letters (`runnel dlq F --json`), once there are `count` of them.
  static std::vector<nlohmann::json> Letters(const std::string& function, std::size_t count) {
    std::vector<nlohmann::json> letters;
    EXPECT_TRUE(WaitFor(
        [&] {
          letters.clear();
          const auto out = Runnel({"dlq", function, "--json"}).out;
          std::size_t pos = 0;
          for (std::size_t nl; (nl = out.find('\n', pos)) != std::string::npos; pos = nl + 1) {
            letters.push_back(nlohmann::json::parse(out.substr(pos, nl - pos)));
          }
          return letters.size() >= count;
        },
        seconds(30), milliseconds(100)))
        << function << ": " << letters.size() << " of " << count << " dead letters";
    return letters;
  }
  static StackProcess* stack_;
};
StackProcess* DlqReplay::stack_ = nullptr;

TEST_F(DlqReplay, PermanentKindsNeedAllAndEventsThatFailAgainNeedAgain) {
  Publish("kinds", kPermanent);
  const std::string flaky = Publish("kinds", kFlaky);
  Letters("kinds", 2);

  const auto first = Runnel({"dlq", "kinds", "--replay"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr("1 dead letter(s) published again to kinds"));
  EXPECT_THAT(first.err,
              HasSubstr("skipped 1: permanent kind bad-input (--all, or --kind bad-input, replays it)"));
  EXPECT_THAT(first.out, HasSubstr(flaky));
  // The replayed event fails again; its new dead letter says it was replayed once.
  const auto letters = Letters("kinds", 3);
  ASSERT_EQ(letters.size(), 3u);
  EXPECT_EQ(letters[2]["id"], flaky);
  EXPECT_EQ(letters[2]["replayed"], 1);
  EXPECT_EQ(letters[0]["replayed"], 0);

  const auto second = Runnel({"dlq", "kinds", "--replay"});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.err, HasSubstr("skipped 1: replayed by an earlier --replay"));
  EXPECT_THAT(second.err, HasSubstr("0 dead letter(s) published again to kinds"));
  EXPECT_THAT(second.err, HasSubstr("skipped 1: replayed before and failed again (--again replays it)"));
  EXPECT_THAT(second.err, HasSubstr("skipped 1: permanent kind bad-input"));

  const auto all = Runnel({"dlq", "kinds", "--replay", "--all"});
  EXPECT_THAT(all.err, HasSubstr("1 dead letter(s) published again to kinds")) << "the bad-input one";
  EXPECT_THAT(all.err, HasSubstr("skipped 1: replayed before and failed again"));
  Letters("kinds", 4);
  const auto again = Runnel({"dlq", "kinds", "--replay", "--again"});
  EXPECT_THAT(again.err, HasSubstr("1 dead letter(s) published again to kinds"))
      << "the flaky one's second letter";
  EXPECT_THAT(again.err, HasSubstr("skipped 1: permanent kind bad-input"))
      << "the bad-input one's second letter";
  EXPECT_THAT(again.err, Not(HasSubstr("replayed by an earlier"))) << "the group's offset is past them";
  const auto fifth = Letters("kinds", 5);
  EXPECT_EQ(fifth.back()["replayed"], 2);
}

TEST_F(DlqReplay, KindChoosesWhatIsReplayed) {
  Publish("by.kind", kPermanent);
  const std::string flaky = Publish("by.kind", kFlaky);
  Letters("by.kind", 2);
  const auto transient = Runnel({"dlq", "by.kind", "--replay", "--kind", "transient"});
  EXPECT_EQ(transient.exit_code, 0) << transient.err;
  EXPECT_THAT(transient.err, HasSubstr("1 dead letter(s) published again to by.kind"));
  EXPECT_THAT(transient.err, HasSubstr("skipped 1: not a --kind given"));
  EXPECT_THAT(transient.out, HasSubstr(flaky));
  // A permanent kind named with --kind is replayed without --all, and only once.
  const auto bad = Runnel({"dlq", "by.kind", "--replay", "--kind", "bad-input"});
  EXPECT_THAT(bad.err, HasSubstr("1 dead letter(s) published again to by.kind"));
  EXPECT_THAT(bad.out, HasSubstr("bad-input"));
  Letters("by.kind", 4);
  const auto twice = Runnel({"dlq", "by.kind", "--replay", "--kind", "bad-input", "--kind", "transient"});
  EXPECT_THAT(twice.err, HasSubstr("0 dead letter(s) published again to by.kind"));
  EXPECT_THAT(twice.err, HasSubstr("skipped 2: replayed before and failed again"));
}

TEST_F(DlqReplay, IdChoosesEvents) {
  const std::string one = Publish("by.id", kFlaky);
  const std::string two = Publish("by.id", kFlaky);
  Letters("by.id", 2);
  const auto first = Runnel({"dlq", "by.id", "--replay", "--id", one});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr("1 dead letter(s) published again to by.id"));
  EXPECT_THAT(first.err, HasSubstr("skipped 1: not an --id given"));
  EXPECT_THAT(first.out, HasSubstr(one));
  EXPECT_THAT(first.out, Not(HasSubstr(two)));
  Letters("by.id", 3);
  // The other one is still there to replay; the first is not sent again.
  const auto rest = Runnel({"dlq", "by.id", "--replay"});
  EXPECT_THAT(rest.err, HasSubstr("1 dead letter(s) published again to by.id"));
  EXPECT_THAT(rest.out, HasSubstr(two));
  EXPECT_THAT(rest.err, HasSubstr("skipped 1: replayed before and failed again"));
}

TEST_F(DlqReplay, SinceSkipsOlderDeadLetters) {
  const std::string old = Publish("by.since", kFlaky);
  Letters("by.since", 1);
  const auto between = std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now());
  const std::string recent = Publish("by.since", kFlaky);
  Letters("by.since", 2);
  const auto since =
      Runnel({"dlq", "by.since", "--replay", "--since",
              fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", std::chrono::time_point_cast<seconds>(between),
                          between.time_since_epoch().count() % 1000)});
  EXPECT_EQ(since.exit_code, 0) << since.err;
  EXPECT_THAT(since.err, HasSubstr("1 dead letter(s) published again to by.since"));
  EXPECT_THAT(since.err, HasSubstr("skipped 1: dead-lettered before --since"));
  EXPECT_THAT(since.out, HasSubstr(recent));
  EXPECT_THAT(since.out, Not(HasSubstr(old)));
  const auto hour = Runnel({"dlq", "by.since", "--replay", "--since", "1h"});
  EXPECT_THAT(hour.err, HasSubstr("1 dead letter(s) published again to by.since"));
  EXPECT_THAT(hour.out, HasSubstr(old));
}

// Mistakes are usage errors (exit 2) found before any stack is asked.
TEST(DlqMisuse, BadFlagsExitTwoWithTheReason) {
  const auto dir = TempDir("dlq-misuse");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--replay", "--since", "yesterday"}, "--since: 'yesterday' is not a duration like 500ms, 30s or 2m"},
      {{"--replay", "--since", "10"},
       R"(--since: '10' has no unit: durations need one, write "10s" or "10ms")"},
      {{"--replay", "--since", "2026-13-01T00:00:00Z"}, "or give an RFC 3339 time like 2026-12-03T10:00:00Z"},
      {{"--replay", "--kind", "nosuch"}, "--kind: nosuch not in"},
      {{"--all"}, "--all requires --replay"},
      {{"--again"}, "--again requires --replay"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {RunnelBin(), "dlq", "echo"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--state-dir");
    argv.push_back(dir.string());
    const auto r = RunCommand(argv, seconds(20));
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << args.back();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
