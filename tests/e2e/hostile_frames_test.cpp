// Hostile bytes against a real `runnel up` (issue 12, docs/protocol.md §3.4, §4.3, §4.4): a plain
// DEALER sends a dispatcher's ROUTER wrong-typed, unknown, out-of-order, empty and 2 MiB frames and
// forged RESULTS; a REQ sends the status and control sockets bytes that are not UTF-8, not JSON or
// wrong-typed. Every request gets an error reply, every bad message is counted in
// runnel_protocol_errors_total, a result from a connection that does not hold the task is dropped,
// and afterwards every function still answers, status and control answer, and no thread ended.
#include <gmock/gmock.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/envelope.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/testing/http_get.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kTwoMiB(std::size_t{2} * 1024 * 1024, 'x');

// A DEALER connected to a dispatcher, speaking whatever the test tells it to.
class Peer {
 public:
  Peer(zmq::context_t& ctx, const StackProcess& stack, const std::string& endpoint)
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    stack.Secure(socket_);
    socket_.connect(endpoint);
  }

  void Send(const std::vector<std::string>& frames) {
    std::vector<zmq::message_t> parts;
    for (const auto& f : frames) parts.emplace_back(f.data(), f.size());
    ASSERT_TRUE(zmq::send_multipart(socket_, parts));
  }

  // Keeps the session alive: the stack's heartbeat is 200 ms.
  void Beat() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_beat_ < milliseconds(50)) return;
    last_beat_ = now;
    Send({"HEARTBEAT", R"({"in_flight":0})"});
  }

  // The frames of the next message whose command is `command` (others skipped), or empty.
  std::vector<std::string> Expect(std::string_view command, milliseconds deadline, bool beat = false) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      if (beat) Beat();
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::min(left, milliseconds(50)));
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
      if (parts.empty() || parts[0].to_string_view() != command) continue;
      std::vector<std::string> frames;
      for (const auto& p : parts) frames.push_back(p.to_string());
      return frames;
    }
  }

 private:
  zmq::socket_t socket_;
  std::chrono::steady_clock::time_point last_beat_{};
};

std::string Hello(const std::string& function, const std::string& worker, int pid, int capacity,
                  bool draining) {
  nlohmann::json hello = {
      {"v", 1}, {"function", function}, {"worker", worker}, {"pid", pid}, {"capacity", capacity}};
  if (draining) hello["draining"] = true;
  return hello.dump();
}

// One request on a fresh REQ socket: the reply, or nullopt when none came within 5 s.
std::optional<std::string> Request(zmq::context_t& ctx, const StackProcess& stack,
                                   const std::string& endpoint, const std::string& bytes) {
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  stack.Secure(req);
  req.connect(endpoint);
  req.send(zmq::buffer(bytes), zmq::send_flags::none);
  zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, seconds(5));
  zmq::message_t reply;
  if ((item.revents & ZMQ_POLLIN) == 0 || !req.recv(reply, zmq::recv_flags::dontwait)) return std::nullopt;
  return reply.to_string();
}

// runnel_protocol_errors_total{socket=..., reason=...} from the stack's /metrics (-1: no such series).
double ProtocolErrors(const StackProcess& stack, const std::string& socket, const std::string& reason) {
  return MetricSample(stack.Endpoints().value("metrics", ""), "runnel_protocol_errors_total",
                      {{"socket", socket}, {"reason", reason}});
}

class HostileFrames : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = std::make_unique<StackProcess>(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 1
    results_topic: echo.results
  - name: sleep
    workers: 1
    results_topic: sleep.results
)");
    ASSERT_TRUE(stack_->WaitForWorkers("echo", 1, seconds(20)));
    ASSERT_TRUE(stack_->WaitForWorkers("sleep", 1, seconds(20)));
    echo_endpoint_ = stack_->Endpoints().at("dispatchers").at("echo").get<std::string>();
    sleep_endpoint_ = stack_->Endpoints().at("dispatchers").at("sleep").get<std::string>();
  }

  // Every function still answers (an event published now gets its outcome), status answers, and no
  // thread of the stack ended. `sleep_before`: outcomes already on sleep.results.
  void ExpectStillServing(std::size_t sleep_before) {
    StackProcess& stack = *stack_;
    const auto echo_ids = PublishEvents(stack.Kafka(), "echo", {{"still here", std::nullopt}});
    const auto echo_outcomes = ReadOutcomes(stack.Kafka(), "echo.results", 1, seconds(30));
    ASSERT_EQ(echo_outcomes.size(), 1u) << "echo no longer answers";
    EXPECT_EQ(echo_outcomes[0].id, echo_ids[0]);
    EXPECT_EQ(echo_outcomes[0].output, "still here");
    const auto sleep_ids = PublishEvents(stack.Kafka(), "sleep", {{R"({"ms":0})", std::nullopt}});
    const auto sleep_outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", sleep_before + 1, seconds(30));
    ASSERT_EQ(sleep_outcomes.size(), sleep_before + 1) << "sleep no longer answers";
    const auto last = std::find_if(sleep_outcomes.begin(), sleep_outcomes.end(),
                                   [&](const Outcome& o) { return o.id == sleep_ids[0]; });
    ASSERT_NE(last, sleep_outcomes.end());
    EXPECT_EQ(last->status, OutcomeStatus::kOk) << last->error;
    const auto status = stack.Status();
    ASSERT_TRUE(status.contains("functions")) << "status no longer answers";
    EXPECT_EQ(status["functions"].size(), 2u);
    EXPECT_FALSE(stack.Process().Wait(milliseconds(0))) << "runnel up exited";
    EXPECT_THAT(stack.Process().Stderr(), Not(HasSubstr("stopped by an error")));
  }

  std::unique_ptr<StackProcess> stack_;
  zmq::context_t ctx_{1};
  std::string echo_endpoint_, sleep_endpoint_;
};

// Wrong types, unknown commands, messages before HELLO, empty and 2 MiB frames: each counted by
// reason, a bad HELLO answered with REJECT, the dispatcher goes on.
TEST_F(HostileFrames, ADispatcherCountsAndDropsWhatItCannotUse) {
  StackProcess& stack = *stack_;
  // The peers live on: a closed DEALER drops what it has not sent.
  Peer evil(ctx_, *stack_, echo_endpoint_);
  Peer early(ctx_, *stack_, echo_endpoint_);  // never says HELLO
  {
    // The HELLO that stopped the dispatcher thread with json type_error.302: refused, with the reason.
    evil.Send({"HELLO", R"({"v":1,"function":"echo","worker":"evil","pid":"notanint","capacity":"many"})"});
    const auto reject = evil.Expect("REJECT", seconds(10));
    ASSERT_EQ(reject.size(), 2u) << "no REJECT for a wrong-typed HELLO";
    EXPECT_THAT(reject[1], HasSubstr("'pid' must be an integer"));
    evil.Send({"HELLO", "{not json"});
    evil.Send({"HELLO", "\xff\xfe"});
    evil.Send({"HELLO"});
    evil.Send({"HELLO", kTwoMiB});
    for (int i = 0; i < 4; ++i) EXPECT_EQ(evil.Expect("REJECT", seconds(10)).size(), 2u) << "HELLO " << i;
    evil.Send({"FROB", "{}"});
    evil.Send({""});
    evil.Send({kTwoMiB});
    evil.Send({"WELCOME", "{}"});
    evil.Send({"RESULTS", "not a result header", ""});
    evil.Send({"RESULTS", kTwoMiB});
  }
  {
    early.Send({"HEARTBEAT", R"({"in_flight":"lots"})"});
    early.Send({"CAPACITY", R"({"capacity":"many"})"});
    early.Send({"DRAINING"});
    early.Send({"BYE", R"({"reason":["x"]})"});
  }
  ASSERT_TRUE(
      WaitFor([&] { return ProtocolErrors(stack, "dispatcher/echo", "wrong-type") >= 1; }, seconds(10)))
      << "the wrong-typed HELLO was not counted";
  ASSERT_TRUE(
      WaitFor([&] { return ProtocolErrors(stack, "dispatcher/echo", "no-session") >= 4; }, seconds(10)));
  for (const char* reason :
       {"not-json", "not-utf8", "empty", "oversized", "unknown-command", "bad-frames", "bad-header"}) {
    EXPECT_GE(ProtocolErrors(stack, "dispatcher/echo", reason), 1) << reason;
  }

  ExpectStillServing(0);
}

// A RESULTS pair with a token the sending connection does not hold (a stranger's, another
// worker's) is dropped and counted; the holder's own answer is the outcome.
TEST_F(HostileFrames, ResultsCountOnlyFromTheConnectionHoldingTheTask) {
  StackProcess& stack = *stack_;
  Peer holder(ctx_, *stack_, sleep_endpoint_);
  holder.Send({"HELLO", Hello("sleep", "spy-a", 999'001, 4, false)});
  ASSERT_FALSE(holder.Expect("WELCOME", seconds(10), true).empty());
  Peer registered(ctx_, *stack_, sleep_endpoint_);  // a session of its own, holding nothing
  registered.Send({"HELLO", Hello("sleep", "spy-c", 999'002, 0, true)});
  ASSERT_FALSE(registered.Expect("WELCOME", seconds(10)).empty());
  // The real worker holds each event for 300 ms, so the events after its first go to the holder.
  // Published from another thread while both sessions beat: a first produce to a topic can wait
  // for librdkafka's 1 s metadata timer, and a session silent for three 200 ms heartbeats is
  // dropped, with its events sent to the real worker instead.
  std::vector<std::string> ids;
  std::thread publish([&] {
    ids = PublishEvents(stack.Kafka(), "sleep",
                        {{R"({"ms":300})", std::nullopt},
                         {R"({"ms":300})", std::nullopt},
                         {R"({"ms":300})", std::nullopt},
                         {R"({"ms":300})", std::nullopt}});
  });
  std::vector<std::string> tasks;
  const auto tasks_until = std::chrono::steady_clock::now() + seconds(20);
  while (tasks.empty() && std::chrono::steady_clock::now() < tasks_until) {
    registered.Beat();
    tasks = holder.Expect("TASKS", milliseconds(50), true);
  }
  publish.join();
  ASSERT_GE(tasks.size(), 3u) << "the scripted worker got no task";
  const wire::TaskHeader held = wire::DecodeTask(tasks[1]);
  wire::ResultHeader forged;
  forged.token = held.token;
  Peer stranger(ctx_, *stack_, sleep_endpoint_);  // never said HELLO
  stranger.Send({"RESULTS", wire::Encode(forged), "forged by a stranger"});
  registered.Send({"RESULTS", wire::Encode(forged), "forged by another worker"});
  wire::ResultHeader guessed;
  guessed.token = held.token ^ 0x5a5a5a5a5a5a5a5aULL;
  stranger.Send({"RESULTS", wire::Encode(guessed), "a guessed token"});
  // Not an ASSERT: where forged results are accepted, the outcomes below say so.
  EXPECT_TRUE(WaitFor(
      [&] {
        holder.Beat();
        registered.Send({"HEARTBEAT", "{}"});
        return ProtocolErrors(stack, "dispatcher/sleep", "foreign-token") >= 2;
      },
      seconds(10)))
      << "forged results were not counted";
  // The holder's own answer counts.
  wire::ResultHeader real;
  real.token = held.token;
  holder.Send({"RESULTS", wire::Encode(real), "answered by its holder"});
  for (std::size_t i = 3; i + 1 < tasks.size(); i += 2) {
    wire::ResultHeader more;
    more.token = wire::DecodeTask(tasks[i]).token;
    holder.Send({"RESULTS", wire::Encode(more), "answered by its holder"});
  }
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), seconds(60));
  ASSERT_EQ(outcomes.size(), ids.size());
  const std::string held_id = Envelope::Decode(held.headers).id;
  bool found = false;
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    EXPECT_THAT(o.output, Not(HasSubstr("forged"))) << o.id;
    if (o.id == held_id) {
      found = true;
      EXPECT_EQ(o.output, "answered by its holder");
      EXPECT_EQ(o.worker, "spy-a");
    }
  }
  EXPECT_TRUE(found) << "no outcome for the event the scripted worker held";
  holder.Send({"BYE", R"({"reason":"drained"})"});
  registered.Send({"BYE", R"({"reason":"drained"})"});

  ExpectStillServing(ids.size());
}

// The control socket is REQ/REP: every request gets one reply, a bad one an error reply naming
// why, counted per reason.
TEST_F(HostileFrames, TheControlSocketAnswersEveryRequest) {
  StackProcess& stack = *stack_;
  const auto control_endpoint = stack.Endpoints().at("control").get<std::string>();
  for (const std::string& bad :
       {std::string("\xff"), std::string(), std::string("status"), std::string("not json"), std::string("[]"),
        std::string(R"({"op":5})"), std::string(R"({"op":"statuss"})"),
        std::string(R"({"op":"trace","event":"../../etc/passwd"})"), std::string(R"({"op":"outcome"})"),
        std::string(R"({"op":"job.run","schedule":7})"), std::string(R"({"op":"job.status","job":{"a":1}})"),
        std::string(R"({"op":"job.x"})"), kTwoMiB}) {
    const auto reply = Request(ctx_, stack, control_endpoint, bad);
    ASSERT_TRUE(reply) << "no reply to a bad control request of " << bad.size() << " bytes";
    const auto j = nlohmann::json::parse(*reply, nullptr, false);
    ASSERT_TRUE(j.is_object()) << *reply;
    EXPECT_EQ(j.value("ok", true), false) << *reply;
    EXPECT_TRUE(j.contains("error")) << *reply;
  }
  const auto list = Request(ctx_, stack, control_endpoint, R"({"op":"job.list"})");
  ASSERT_TRUE(list);
  EXPECT_EQ(nlohmann::json::parse(*list).value("ok", false), true) << *list;
  const auto status = Request(ctx_, stack, control_endpoint, R"({"op":"status"})");
  ASSERT_TRUE(status);
  EXPECT_TRUE(nlohmann::json::parse(*status).contains("functions")) << *status;
  // /metrics reads the status snapshot, refreshed every 100 ms.
  EXPECT_TRUE(WaitFor([&] { return ProtocolErrors(stack, "control", "not-utf8") >= 1; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return ProtocolErrors(stack, "control", "not-json") >= 2; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return ProtocolErrors(stack, "control", "unknown-command") >= 2; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return ProtocolErrors(stack, "control", "wrong-type") >= 4; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return ProtocolErrors(stack, "control", "out-of-range") >= 1; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return ProtocolErrors(stack, "control", "missing-field") >= 1; }, seconds(10)));

  ExpectStillServing(0);
}

}  // namespace
}  // namespace runnel::testing
