// What a new user gets wrong first (issue 18), run with the real `runnel` binary: each case is a
// command line, the exit status it must end with (cli/src/exit_codes.hpp, the table in the README)
// and a piece of the message it must print.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "runnel/kafka/admin.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

// Where a case runs: against the suite's running stack, or a state dir where nothing runs.
enum class Where { kStack, kNoStack };

struct MisuseCase {
  std::vector<std::string> args;  // --state-dir is appended
  Where where;
  int exit_code;
  std::string message;  // a substring of stderr (of stdout when the command succeeds and says so there)
};

class CliMisuse : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new StackProcess(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 1
  - name: sleep
    workers: 1
)");
    ASSERT_TRUE(stack_->WaitForWorkers("echo", 1, std::chrono::seconds(20)));
    no_stack_ = new std::filesystem::path(TempDir("misuse-nostack"));
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
    std::filesystem::remove_all(*no_stack_);
    delete no_stack_;
    no_stack_ = nullptr;
  }
  static RunResult Runnel(std::vector<std::string> args, Where where) {
    args.insert(args.begin(), RunnelBin());
    args.push_back("--state-dir");
    args.push_back((where == Where::kStack ? stack_->StateDir() : *no_stack_).string());
    return RunCommand(std::move(args), std::chrono::seconds(60));
  }
  static StackProcess* stack_;
  static std::filesystem::path* no_stack_;
};
StackProcess* CliMisuse::stack_ = nullptr;
std::filesystem::path* CliMisuse::no_stack_ = nullptr;

TEST_F(CliMisuse, Table) {
  const std::vector<MisuseCase> cases = {
      // A topic no function consumes: refused, naming it and the topics there are...
      {{"publish", "nosuchtopic", "--data", "x"},
       Where::kStack,
       1,
       "no function of the running stack consumes topic 'nosuchtopic' (its topics: echo, sleep); check the "
       "name, or "
       "pass --any-topic"},
      // ...unless the user says so, and then still said.
      {{"publish", "nosuchtopic", "--data", "x", "--any-topic"},
       Where::kStack,
       0,
       "consumes topic 'nosuchtopic' (its topics: echo, sleep); publishing anyway (--any-topic)"},
      {{"invoke", "nosuchfunction", "--data", "x"},
       Where::kStack,
       1,
       "the running stack has no function 'nosuchfunction'"},
      // Unknown commands are named.
      {{"frobnicate"}, Where::kStack, 2, "runnel: unknown command 'frobnicate'; run 'runnel --help'"},
      {{"config", "frobnicate"},
       Where::kStack,
       2,
       "unknown command 'config frobnicate'; run 'runnel config --help'"},
      {{"job"},
       Where::kStack,
       2,
       "runnel: 'runnel job' needs a command (run, list, status); run 'runnel job --help'"},
      {{}, Where::kStack, 2, "runnel: a command is required"},
      // Every command, nested ones too, takes --state-dir and --log-format.
      {{"config", "check"}, Where::kNoStack, 0, "(built-in default): ok"},
      {{"job", "list", "--log-format", "json"}, Where::kStack, 0, ""},
      // Numbers say what they must be.
      {{"results", "--count", "-1"},
       Where::kStack,
       2,
       "runnel: --count: must be a whole number >= 1, got '-1'; run 'runnel results --help'"},
      {{"results", "--count", "2.5"}, Where::kStack, 2, "--count: must be a whole number >= 1, got '2.5'"},
      {{"simulate", "--rate", "abc"}, Where::kStack, 2, "--rate: must be a number in 0..1000000, got 'abc'"},
      {{"simulate", "--rate", "100,nan"},
       Where::kStack,
       2,
       "--rate: must be a number in 0..1000000, got 'nan'"},
      {{"simulate", "--devices", "0"},
       Where::kStack,
       2,
       "--devices: must be a whole number in 1..100000, got '0'"},
      {{"kafka", "--partitions", "1e3"},
       Where::kNoStack,
       2,
       "--partitions: must be a whole number in 1..10000, got '1e3'"},
      // Giving up waiting is its own status...
      {{"results", "--function", "echo", "--timeout", "500ms"}, Where::kStack, 4, "0 outcome(s) within"},
      {{"invoke", "sleep", "--data", R"({"ms":3000})", "--timeout", "500ms"},
       Where::kStack,
       4,
       "no outcome for event"},
      // ...and so is no stack at all.
      {{"status"}, Where::kNoStack, 5, "no running Runnel stack"},
      {{"publish", "echo", "--data", "x"}, Where::kNoStack, 5, "no running Runnel stack"},
      {{"job", "list"}, Where::kNoStack, 5, "no running Runnel stack"},
  };
  for (const auto& c : cases) {
    const std::string line = fmt::format("runnel {}", fmt::join(c.args, " "));
    const auto r = Runnel(c.args, c.where);
    EXPECT_EQ(r.exit_code, c.exit_code) << line << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_THAT(r.err + r.out, HasSubstr(c.message)) << line;
  }
}

TEST_F(CliMisuse, PublishWithAnyTopicReachesTheTopic) {
  const auto r = Runnel({"publish", "elsewhere", "--data", "kept", "--any-topic"}, Where::kStack);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::int64_t records = 0;
  for (const auto& p : kafka::Admin(stack_->Kafka()).Offsets("elsewhere", "")) records += p.end - p.log_start;
  EXPECT_EQ(records, 1);
}

// The text line of `runnel results` shows 80 bytes of an output and says how much it left out.
TEST_F(CliMisuse, ResultsSaysWhereItCutAnOutput) {
  const std::string payload = std::string(80, 'a') + std::string(120, 'z');
  ChildProcess results({RunnelBin(), "results", "--function", "echo", "--count", "1", "--timeout", "30s",
                        "--state-dir", stack_->StateDir().string()});
  ASSERT_TRUE(WaitFor(
      [&] {
        Runnel({"publish", "echo", "--data", payload}, Where::kStack);
        return results.Wait(std::chrono::milliseconds(200)).has_value();
      },
      std::chrono::seconds(20), std::chrono::milliseconds(0)));
  EXPECT_EQ(results.Wait(std::chrono::milliseconds(0)), 0) << results.Stderr();
  EXPECT_THAT(results.Stdout(), HasSubstr(std::string(80, 'a') + "… (+120 bytes; --json for all)\n"));
  EXPECT_THAT(results.Stdout(), ::testing::Not(HasSubstr("z")));
}

// With --log-format json every line on stderr is a JSON object, the line saying why the command
// failed too, a usage error's included.
TEST_F(CliMisuse, TheFatalLineIsJsonWithLogFormatJson) {
  const std::vector<MisuseCase> cases = {
      {{"--log-format", "json", "status"}, Where::kNoStack, 5, "no running Runnel stack"},
      {{"status", "--log-format", "json"}, Where::kNoStack, 5, "no running Runnel stack"},
      {{"--log-format", "json", "frobnicate"}, Where::kNoStack, 2, "unknown command 'frobnicate'"},
      {{"results", "--log-format", "json", "--count", "-1"},
       Where::kNoStack,
       2,
       "--count: must be a whole number >= 1, got '-1'"},
  };
  for (const auto& c : cases) {
    const std::string line = fmt::format("runnel {}", fmt::join(c.args, " "));
    const auto r = Runnel(c.args, c.where);
    EXPECT_EQ(r.exit_code, c.exit_code) << line << ": " << r.err;
    std::istringstream lines(r.err);
    nlohmann::json last;
    int count = 0;
    for (std::string text; std::getline(lines, text); ++count) {
      last = nlohmann::json::parse(text, nullptr, false);
      ASSERT_FALSE(last.is_discarded()) << line << ": not JSON: " << text;
    }
    ASSERT_EQ(count, 1) << line << ": " << r.err;
    EXPECT_EQ(last.value("level", ""), "error") << line;
    EXPECT_EQ(last.value("logger", ""), "cli") << line;
    EXPECT_THAT(last.value("message", ""), HasSubstr(c.message)) << line;
    EXPECT_TRUE(last.contains("ts")) << line;
  }
}

}  // namespace
}  // namespace runnel::testing
