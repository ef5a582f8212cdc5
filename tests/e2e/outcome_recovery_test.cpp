// Outcomes a caller can rely on although the results feed is lossy (docs/protocol.md §4.1): a
// `runnel up` whose feed drops every outcome (the test-only failpoint
// RUNNEL_FAILPOINTS=results.feed.drop=on, tests/README.md) still answers `runnel invoke` (from the
// outcomes the stack keeps, `outcome <event id>`, §4.4) and counts every item of a batch job (from
// the dispatchers in-process).
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <fstream>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/testing/results_feed.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

const std::map<std::string, std::string> kFeedDropsEverything = {
    {"RUNNEL_FAILPOINTS", "results.feed.drop=on"}};

RunResult Runnel(const StackProcess& stack, std::vector<std::string> args,
                 milliseconds deadline = seconds(90)) {
  args.insert(args.begin(), RunnelBin());
  args.push_back("--state-dir");
  args.push_back(stack.StateDir().string());
  return RunCommand(std::move(args), deadline);
}

// Outcome messages the feed delivered to `socket` within `window` (the failpoint's proof).
int FeedMessages(zmq::socket_t& socket, milliseconds window) {
  int messages = 0;
  const auto until = std::chrono::steady_clock::now() + window;
  while (std::chrono::steady_clock::now() < until) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, milliseconds(50));
    if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(socket, std::back_inserter(frames));
    ++messages;
  }
  return messages;
}

TEST(OutcomeRecovery, InvokeGetsItsOutcomeFromTheStackWhenTheFeedDroppedIt) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 1
  - name: sleep
    workers: 1
)",
                     kFeedDropsEverything);
  zmq::context_t ctx(1);
  auto feed = SubscribeToResults(ctx, stack, "");

  const auto text = Runnel(stack, {"invoke", "echo", "--data", "ping", "--timeout", "30s"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, "ping");

  const auto json = Runnel(stack, {"invoke", "echo", "--data", "pong", "--json", "--timeout", "30s"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["output"], "pong");
  EXPECT_EQ(j["function"], "echo");
  EXPECT_EQ(j["attempts"], 1);
  EXPECT_THAT(j["reply_to"].get<std::string>(), ::testing::StartsWith("invoke."));

  const auto failed = Runnel(stack, {"invoke", "sleep", "--data",
                                     R"({"fail":"no such user","permanent":true})", "--timeout", "30s"});
  EXPECT_EQ(failed.exit_code, 1) << failed.err;
  EXPECT_THAT(failed.err, HasSubstr("sleep error: bad-input: no such user"));

  // Still no outcome, ever: an outcome on the feed is published before the stack records it, so
  // it would have been here long before the calls above got theirs.
  EXPECT_EQ(FeedMessages(feed, milliseconds(500)), 0) << "the failpoint is meant to drop every outcome";

  // A call that truly has no outcome in time is still a timeout (exit 4).
  const auto slow = Runnel(stack, {"invoke", "sleep", "--data", R"({"ms":5000})", "--timeout", "500ms"});
  EXPECT_EQ(slow.exit_code, 4);
  EXPECT_THAT(slow.err, HasSubstr("no outcome for event"));
}

TEST(OutcomeRecovery, JobProgressIsExactWhenTheFeedDroppedEveryOutcome) {
  const auto files = TempDir("outcome-recovery-files");
  constexpr int kItems = 400;
  for (int i = 0; i < kItems; ++i) std::ofstream(files / fmt::format("item-{:03}.txt", i)) << "item " << i;
  {
    StackProcess stack(fmt::format(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 2
schedules:
  - name: many
    cron: "0 3 * * *"
    function: echo
    files: {{dir: {}, glob: "*.txt"}}
)",
                                   files.string()),
                       kFeedDropsEverything);
    const auto run =
        Runnel(stack, {"job", "run", "many", "--wait", "--json", "--timeout", "120s"}, seconds(150));
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    const auto trimmed = run.out.substr(0, run.out.find_last_not_of('\n') + 1);
    const auto report = nlohmann::json::parse(
        trimmed.substr(trimmed.rfind('\n') == std::string::npos ? 0 : trimmed.rfind('\n') + 1));
    EXPECT_EQ(report["state"], "done");
    EXPECT_EQ(report["items"], kItems);
    EXPECT_EQ(report["done"], kItems);
    EXPECT_EQ(report["pending"], 0);

    std::ifstream in(stack.StateDir() / "jobs" / (report["job"].get<std::string>() + ".json"));
    ASSERT_TRUE(in.good());
    const auto record = nlohmann::json::parse(in);
    EXPECT_EQ(record["state"], "done");
    EXPECT_EQ(record["done"], kItems);
    EXPECT_EQ(record["failed"], 0);
  }
  std::filesystem::remove_all(files);
}

}  // namespace
}  // namespace runnel::testing
