// The client commands against a running stack: every one finds it through endpoints.json, exits
// with the documented status, and prints what the README says.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new StackProcess(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 1
  - name: sleep
    workers: 1
    retries: {max_attempts: 2, backoff: 20ms}
  - name: image.thumbnail
    workers: 1
    params: {sizes: [{width: 64, height: 64}]}
)");
    ASSERT_TRUE(stack_->WaitForWorkers("echo", 1, std::chrono::seconds(20)));
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  static RunResult Runnel(std::vector<std::string> args,
                          std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
    args.insert(args.begin(), RunnelBin());
    args.push_back("--state-dir");
    args.push_back(stack_->StateDir().string());
    return RunCommand(std::move(args), deadline);
  }
  static StackProcess* stack_;
};
StackProcess* Cli::stack_ = nullptr;

TEST_F(Cli, InvokePrintsTheOutputAndExitsZero) {
  const auto r = Runnel({"invoke", "echo", "--data", "ping"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ping");
}

// The file travels by reference (a file:// path in the envelope); echo answers with its bytes.
TEST_F(Cli, InvokeWithAFilePrintsWhatEchoReadFromIt) {
  const auto file = stack_->StateDir() / "input.txt";
  std::ofstream(file) << "bytes of a file";
  const auto r = Runnel({"invoke", "echo", "--file", file.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "bytes of a file");
  std::filesystem::remove(file);
}

// Every built-in that answers with its input reads a by-reference one (functions/README.md,
// Inputs): sleep took the reference's empty inline payload, printed nothing and ignored the file.
TEST_F(Cli, InvokeSleepWithAFileRunsWhatTheFileSays) {
  const auto file = stack_->StateDir() / "sleep-input.json";
  std::ofstream(file) << R"({"ms": 1})";
  const auto ok = Runnel({"invoke", "sleep", "--file", file.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, R"({"ms": 1})");
  std::ofstream(file) << R"({"fail": "said by the file", "permanent": true})";
  const auto failed = Runnel({"invoke", "sleep", "--file", file.string()});
  EXPECT_EQ(failed.exit_code, 1) << failed.out;
  EXPECT_THAT(failed.err, HasSubstr("sleep error: bad-input: said by the file"));
  std::filesystem::remove(file);
}

TEST_F(Cli, InvokeJsonHasTheOutcomeShape) {
  const auto r = Runnel({"invoke", "echo", "--data", "ping", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key :
       {"id", "function", "status", "attempts", "error", "output", "partition", "offset", "key"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["output"], "ping");
}

TEST_F(Cli, InvokeOfAFailingCallExitsOneWithTheReason) {
  const auto r = Runnel({"invoke", "sleep", "--data", R"({"fail":"no such user","permanent":true})"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("sleep error: bad-input: no such user"));
}

TEST_F(Cli, InvokeTimesOutWithExitFour) {
  const auto r = Runnel({"invoke", "sleep", "--data", R"({"ms":5000})", "--timeout", "500ms"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, HasSubstr("no outcome for event"));
}

TEST_F(Cli, UploadWaitsAndSummarises) {
  const auto r = Runnel({"upload", (SourceDir() / "samples/data").string(), "--wait", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // corrupt.jpg fails by design
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files"], 4);
  EXPECT_EQ(j["done"], 3);
  ASSERT_EQ(j["failed"].size(), 1u);
  EXPECT_THAT(j["failed"][0]["file"].get<std::string>(), HasSubstr("corrupt.jpg"));
  EXPECT_EQ(j["failed"][0]["error_kind"], "bad-input");
  EXPECT_EQ(j["outputs"].size(), 3u);
  EXPECT_THAT(r.err, HasSubstr("skipping")) << "readings.ndjson has no image function";
}

TEST_F(Cli, DeadLettersAreListedAndReplayedOnce) {
  ASSERT_EQ(Runnel({"invoke", "sleep", "--data", R"({"fail":"dlq me","permanent":true})"}).exit_code, 1);
  const auto count_letters = [] {
    const auto out = Runnel({"dlq", "sleep", "--json"}).out;
    return static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n'));
  };
  const auto list = Runnel({"dlq", "sleep", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("\"error\":\"dlq me\""));
  const std::size_t before = count_letters();
  ASSERT_GE(before, 1u);

  // bad-input letters are replayed only with --all (DlqReplay in dlq_replay_test.cpp has the rest).
  const auto first = Runnel({"dlq", "sleep", "--replay", "--all"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr(fmt::format("{} dead letter(s) published again to sleep", before)));
  // The replayed events fail again (permanently) into new dead letters; a second replay sends
  // exactly those (with --again, as they were replayed before), never the ones replayed before.
  ASSERT_TRUE(WaitFor([&] { return count_letters() == 2 * before; }, std::chrono::seconds(20),
                      std::chrono::milliseconds(100)));
  const auto not_again = Runnel({"dlq", "sleep", "--replay", "--all"});
  EXPECT_THAT(not_again.err, HasSubstr("0 dead letter(s) published again to sleep"));
  const auto again = Runnel({"dlq", "sleep", "--replay", "--all", "--again"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr(fmt::format("{} dead letter(s) published again to sleep", before)));
}

TEST_F(Cli, ResultsStreamsOutcomesAsJson) {
  ChildProcess results({RunnelBin(), "results", "--json", "--function", "echo", "--count", "1", "--timeout",
                        "30s", "--state-dir", stack_->StateDir().string()});
  // The subscription becomes live shortly after start: publish until an outcome shows up.
  ASSERT_TRUE(WaitFor(
      [&] {
        Runnel({"publish", "echo", "--data", "streamed"});
        return results.Wait(std::chrono::milliseconds(200)).has_value();
      },
      std::chrono::seconds(20), std::chrono::milliseconds(0)));
  EXPECT_EQ(results.Wait(std::chrono::milliseconds(0)), 0);
  const auto j = nlohmann::json::parse(results.Stdout());
  EXPECT_EQ(j["function"], "echo");
  EXPECT_EQ(j["output"], "streamed");
}

TEST_F(Cli, PublishPrintsOneIdPerLine) {
  const auto r = Runnel({"publish", "echo", "--data", "x", "--key", "k"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::MatchesRegex("[0-9A-Z]{26}\n"));
}

TEST_F(Cli, LogsShowEachWorkersLines) {
  const auto r = Runnel({"logs", "echo"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[echo-1]"));
}

TEST(CliWithoutStack, EveryCommandFailsWithOneClearLine) {
  const auto dir = TempDir("nostack");
  for (const auto& args : std::vector<std::vector<std::string>>{{"publish", "echo", "--data", "x"},
                                                                {"invoke", "echo", "--data", "x"},
                                                                {"results"},
                                                                {"upload", dir.string()},
                                                                {"dlq", "echo"}}) {
    std::vector<std::string> argv = {RunnelBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--state-dir");
    argv.push_back(dir.string());
    const auto r = RunCommand(argv, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 5) << args[0];
    EXPECT_THAT(r.err, HasSubstr("no running Runnel stack")) << args[0];
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args[0] << ": " << r.err;
  }
  std::filesystem::remove_all(dir);
}

// Duration flags follow runnel.yaml's rule (runnel/core/duration.hpp): a unit is required, and NaN,
// infinities, negatives, hex and exponent forms are refused, as usage errors (exit 2) naming the flag.
TEST(CliWithoutStack, DurationFlagsNeedAUnit) {
  const auto dir = TempDir("durations");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"invoke", "echo", "--data", "x", "--timeout", "10"},
       R"(--timeout: '10' has no unit: durations need one, write "10s" or "10ms")"},
      {{"results", "--timeout", "1e3s"}, "--timeout: '1e3s' is not a duration like 500ms, 30s or 2m"},
      {{"job", "run", "nightly", "--wait", "--timeout", "nan"}, "--timeout: 'nan' is not a duration"},
      {{"status", "--timeout", "-1s"}, "--timeout: '-1s' is negative"},
      {{"trace", "01ABC", "--timeout", "0x10s"}, "--timeout: '0x10s' is not a duration"},
      {{"upload", dir.string(), "--wait", "--timeout", "inf"}, "--timeout: 'inf' is not a finite duration"},
      {{"simulate", "--duration", "8"},
       R"(--duration: '8' has no unit: durations need one, write "8s" or "8ms")"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {RunnelBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--state-dir");
    argv.push_back(dir.string());
    const auto r = RunCommand(argv, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << args[0];
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
