// One control socket per stack (issue 13, docs/protocol.md §4.3): endpoints.json names one
// `control` endpoint, and every question a client asks (status, trace, outcome, the job ops) is a
// typed request on it with one reply shape, served by the stack's own thread. A join token limited
// to functions reaches status, trace and outcome there, not the job ops; a token for every
// function reaches those too.
#include <gmock/gmock.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr const char* kStack = R"(
functions:
  - name: echo
    workers: 1
schedules:
  - name: nightly
    cron: "0 3 * * *"
    function: echo
    payload: "from the schedule"
)";

class ControlSocket : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new StackProcess(kStack);
    ASSERT_TRUE(stack_->WaitForWorkers("echo", 1, seconds(20)));
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override { elsewhere_ = TempDir("control-client"); }
  void TearDown() override { std::filesystem::remove_all(elsewhere_); }

  // One request on a fresh REQ socket with the stack's local client keys; the parsed reply, or
  // nullopt when none came within 5 s.
  static std::optional<nlohmann::json> Ask(const std::string& request) {
    zmq::context_t ctx(1);
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    stack_->Secure(req);
    req.connect(stack_->Endpoints().at("control").get<std::string>());
    req.send(zmq::buffer(request), zmq::send_flags::none);
    zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, milliseconds(5000));
    zmq::message_t reply;
    if ((item.revents & ZMQ_POLLIN) == 0 || !req.recv(reply, zmq::recv_flags::dontwait)) return std::nullopt;
    return nlohmann::json::parse(reply.to_string_view(), nullptr, false);
  }

  // `runnel ARGS` from a directory that holds no stack, through `token` (a join token file).
  RunResult Joined(const std::string& token, std::vector<std::string> args) {
    args.insert(args.begin(), RunnelBin());
    for (const char* flag : {"--join", token.c_str(), "--state-dir", elsewhere_.c_str()})
      args.emplace_back(flag);
    return RunCommand(std::move(args), seconds(60));
  }

  std::string CreateToken(const std::string& name, std::vector<std::string> flags) {
    const auto file = (elsewhere_ / name).string();
    std::vector<std::string> argv = {
        RunnelBin(), "token", "create", "--out", file, "--state-dir", stack_->StateDir().string()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    const auto created = RunCommand(std::move(argv), seconds(30));
    EXPECT_EQ(created.exit_code, 0) << created.err;
    return file;
  }

  static StackProcess* stack_;
  std::filesystem::path elsewhere_;
};
StackProcess* ControlSocket::stack_ = nullptr;

TEST_F(ControlSocket, OneSocketAnswersStatusTraceOutcomeAndJobsWithOneReplyShape) {
  const auto& endpoints = stack_->Endpoints();
  ASSERT_TRUE(endpoints.contains("control"));
  EXPECT_FALSE(endpoints.contains("status")) << "one control socket, not a status socket beside it";

  const auto status = Ask(R"({"op":"status"})");
  ASSERT_TRUE(status && status->is_object());
  EXPECT_EQ(status->value("ok", false), true) << status->dump();
  ASSERT_TRUE(status->contains("functions")) << status->dump();
  EXPECT_EQ((*status)["functions"][0].value("name", ""), "echo");

  const auto ids = PublishEvents(stack_->Kafka(), "echo", {{"traced", std::nullopt}});
  ASSERT_EQ(ids.size(), 1u);
  const std::string trace_request = nlohmann::json{{"op", "trace"}, {"event", ids[0]}}.dump();
  std::optional<nlohmann::json> trace;
  ASSERT_TRUE(WaitFor(
      [&] {
        trace = Ask(trace_request);
        return trace && trace->value("ok", false) && (*trace)["traces"][0].value("status", "") == "ok";
      },
      seconds(20)))
      << (trace ? trace->dump() : "no reply");
  EXPECT_EQ(trace->value("id", ""), ids[0]);
  const auto outcome = Ask(nlohmann::json{{"op", "outcome"}, {"event", ids[0]}}.dump());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->value("ok", false), true) << outcome->dump();
  EXPECT_EQ((*outcome)["outcomes"][0].value("status", ""), "ok") << outcome->dump();
  EXPECT_EQ((*outcome)["outcomes"][0].value("function", ""), "echo") << outcome->dump();

  const auto unknown = Ask(R"({"op":"trace","event":"never-published"})");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->value("ok", true), false);
  EXPECT_THAT(unknown->value("error", ""), HasSubstr("no trace of event 'never-published'"));

  const auto jobs = Ask(R"({"op":"job.list"})");
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->value("ok", false), true) << jobs->dump();
  EXPECT_EQ((*jobs)["schedules"][0].value("name", ""), "nightly");
  const auto no_job = Ask(R"({"op":"job.status","job":"nightly-19700101T000000Z"})");
  ASSERT_TRUE(no_job);
  EXPECT_EQ(no_job->value("ok", true), false);
  EXPECT_THAT(no_job->value("error", ""), HasSubstr("no job nightly-19700101T000000Z"));

  // The same through the one client in cli/.
  const auto text =
      RunCommand({RunnelBin(), "trace", ids[0], "--state-dir", stack_->StateDir().string()}, seconds(30));
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(ids[0]));
  const auto list =
      RunCommand({RunnelBin(), "job", "list", "--state-dir", stack_->StateDir().string()}, seconds(30));
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("nightly"));
}

TEST_F(ControlSocket, AFunctionTokenReachesStatusAndTraceButNotTheJobOps) {
  const auto token = CreateToken("echo.token", {"--function", "echo"});
  const auto status = Joined(token, {"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(nlohmann::json::parse(status.out)["functions"][0].value("name", ""), "echo");
  const auto list = Joined(token, {"job", "list"});
  EXPECT_EQ(list.exit_code, 1) << list.out;
  EXPECT_THAT(list.err, HasSubstr("'job.list': this client's join token is limited to functions"));
  const auto run = Joined(token, {"job", "run", "nightly"});
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_THAT(run.err, HasSubstr("'job.run': this client's join token is limited to functions"));

  const auto full = CreateToken("all.token", {});
  const auto allowed = Joined(full, {"job", "list", "--json"});
  ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_EQ(nlohmann::json::parse(allowed.out)[0].value("name", ""), "nightly");
}

}  // namespace
}  // namespace runnel::testing
