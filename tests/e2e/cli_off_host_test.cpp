// Client commands off the stack's host (issue 13): publish, dlq and invoke reach the stack's Kafka
// with --kafka (or $RUNNEL_KAFKA_BOOTSTRAP) and librdkafka options from --kafka-config (or
// $RUNNEL_KAFKA_CONFIG), from a state dir that holds no stack; invoke waits for its outcome through
// a join token. A properties line that is not key=value is refused with file:line; a sensitive
// option's value is never printed.
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "runnel/testing/child_process.hpp"
#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

class CliOffHost : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ =
        new StackProcess("functions:\n  - name: echo\n    workers: 1\n    results_topic: echo.results\n");
    ASSERT_TRUE(stack_->WaitForWorkers("echo", 1, seconds(20)));
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override { elsewhere_ = TempDir("off-host"); }  // a host with no stack
  void TearDown() override { std::filesystem::remove_all(elsewhere_); }

  RunResult Runnel(std::vector<std::string> args, const std::string& env = "") {
    std::vector<std::string> argv = {"env"};
    if (!env.empty()) argv.push_back(env);
    argv.push_back(RunnelBin());
    argv.insert(argv.end(), args.begin(), args.end());
    argv.emplace_back("--state-dir");
    argv.push_back(elsewhere_.string());
    return RunCommand(std::move(argv), seconds(60));
  }
  std::string Bootstrap() const { return stack_->Endpoints().at("kafka").get<std::string>(); }
  std::string Properties(const std::string& text) {
    const auto file = elsewhere_ / "client.properties";
    std::ofstream(file) << text;
    return file.string();
  }

  static StackProcess* stack_;
  std::filesystem::path elsewhere_;
};
StackProcess* CliOffHost::stack_ = nullptr;

TEST_F(CliOffHost, PublishAndDlqReachKafkaWithFlagsOrTheEnvironmentAndNoStateDir) {
  const auto props =
      Properties("# a client.properties\nclient.id = off-host\nsasl.password=hunter2-secret\n");
  const auto published =
      Runnel({"publish", "echo", "--data", "from afar", "--kafka", Bootstrap(), "--kafka-config", props});
  EXPECT_EQ(published.exit_code, 0) << published.err;
  EXPECT_THAT(published.out + published.err, Not(HasSubstr("hunter2-secret")));
  const auto outcomes = ReadOutcomes(stack_->Kafka(), "echo.results", 1, seconds(30));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].output, "from afar");
  // The environment instead of flags; bootstrap.servers may come from the file too.
  const auto by_env =
      Runnel({"publish", "echo", "--data", "by env"}, "RUNNEL_KAFKA_BOOTSTRAP=" + Bootstrap());
  EXPECT_EQ(by_env.exit_code, 0) << by_env.err;
  const auto by_file =
      Runnel({"dlq", "echo"}, "RUNNEL_KAFKA_CONFIG=" + Properties("bootstrap.servers=" + Bootstrap() + "\n"));
  EXPECT_EQ(by_file.exit_code, 0) << by_file.err;
  EXPECT_EQ(ReadOutcomes(stack_->Kafka(), "echo.results", 2, seconds(30)).size(), 2u);
}

TEST_F(CliOffHost, InvokeWaitsThroughAJoinToken) {
  const auto token = (elsewhere_ / "echo.token").string();
  const auto created = RunCommand({RunnelBin(), "token", "create", "--function", "echo", "--out", token,
                                   "--state-dir", stack_->StateDir().string()});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto r = Runnel({"invoke", "echo", "--data", "round trip", "--join", token, "--kafka", Bootstrap()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "round trip");
  const auto without = Runnel({"invoke", "echo", "--data", "x", "--kafka", Bootstrap()});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_THAT(without.err,
              HasSubstr("no results feed to wait for the outcome on (from another host, pass --join"));
}

TEST_F(CliOffHost, AKafkaConfigLineThatIsNotAnOptionIsRefusedWithFileAndLine) {
  const auto props = Properties("security.protocol=PLAINTEXT\n\njust words\n");
  const auto r = Runnel({"publish", "echo", "--data", "x", "--kafka", Bootstrap(), "--kafka-config", props});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(props + ":3: expected key=value"));
  const auto none = Runnel({"publish", "echo", "--data", "x"});
  EXPECT_EQ(none.exit_code, 5) << "no stack and no --kafka: " << none.err;
}

}  // namespace
}  // namespace runnel::testing
