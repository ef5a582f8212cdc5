// The message codecs of core/ (worker_messages.hpp, control_messages.hpp, decode.hpp,
// protocol_errors.hpp): round trips, and for hostile bytes a DecodeError with the right reason and
// a message naming what is wrong, never an exception.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "runnel/core/control_messages.hpp"
#include "runnel/core/protocol_errors.hpp"
#include "runnel/core/worker_messages.hpp"

namespace runnel {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

template <typename T>
DecodeErrc Reason(const Decoded<T>& d) {
  EXPECT_FALSE(d.ok());
  return d.ok() ? DecodeErrc::kEmpty : d.error().reason;
}

template <typename T>
std::string Message(const Decoded<T>& d) {
  return d.ok() ? std::string("(decoded)") : d.error().message;
}

TEST(Utf8, AcceptsWellFormedAndRejectsTheRest) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // cut off
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
}

TEST(WorkerMessages, CommandsByName) {
  for (const auto c :
       {wire::Command::kHello, wire::Command::kResults, wire::Command::kHeartbeat, wire::Command::kDraining,
        wire::Command::kBye, wire::Command::kCapacity, wire::Command::kWelcome, wire::Command::kReject,
        wire::Command::kTasks, wire::Command::kExit}) {
    EXPECT_EQ(wire::ParseCommand(wire::CommandName(c)), c);
  }
  EXPECT_FALSE(wire::ParseCommand(""));
  EXPECT_FALSE(wire::ParseCommand("hello"));
  EXPECT_FALSE(wire::ParseCommand(std::string("HELLO\0", 6)));
}

TEST(WorkerMessages, HelloRoundTrip) {
  wire::Hello h{1, "thumbnail", "host-12", 4242, 256, false};
  auto d = wire::DecodeHello(wire::Encode(h));
  ASSERT_TRUE(d) << Message(d);
  EXPECT_EQ(*d, h);
  h.draining = true;
  h.capacity = 0;
  EXPECT_EQ(*wire::DecodeHello(wire::Encode(h)), h);
}

// The HELLO that stopped a dispatcher thread with json type_error.302 (issue 12).
TEST(WorkerMessages, WrongTypedHelloIsAnErrorNamingTheField) {
  const auto d =
      wire::DecodeHello(R"({"v":1,"function":"echo","worker":"w","pid":"notanint","capacity":"many"})");
  EXPECT_EQ(Reason(d), DecodeErrc::kWrongType);
  EXPECT_THAT(Message(d), HasSubstr("'pid' must be an integer, not a string"));
}

TEST(WorkerMessages, HelloErrors) {
  EXPECT_EQ(Reason(wire::DecodeHello("")), DecodeErrc::kEmpty);
  EXPECT_EQ(Reason(wire::DecodeHello("{not json")), DecodeErrc::kNotJson);
  EXPECT_EQ(Reason(wire::DecodeHello("[1,2]")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(wire::DecodeHello("\"\xff\"")), DecodeErrc::kNotUtf8);
  EXPECT_EQ(Reason(wire::DecodeHello(std::string(wire::kMaxControlBody + 1, ' '))), DecodeErrc::kOversized);
  const auto missing = wire::DecodeHello(R"({"v":1,"function":"echo","worker":"w","pid":1})");
  EXPECT_EQ(Reason(missing), DecodeErrc::kMissingField);
  EXPECT_THAT(Message(missing), HasSubstr("'capacity' is missing"));
  EXPECT_EQ(Reason(wire::DecodeHello(R"({"v":1,"function":"echo","worker":"w","pid":-1,"capacity":1})")),
            DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(wire::DecodeHello(R"({"v":1,"function":"echo","worker":"w","pid":1,"capacity":1e3})")),
            DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(wire::DecodeHello(
                R"({"v":1,"function":"echo","worker":"w","pid":1,"capacity":18446744073709551615})")),
            DecodeErrc::kOutOfRange);
  EXPECT_EQ(
      Reason(wire::DecodeHello(R"({"v":1,"function":"echo","worker":"a\u0007b","pid":1,"capacity":1})")),
      DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(wire::DecodeHello(R"({"v":1,"function":"","worker":"w","pid":1,"capacity":1})")),
            DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(wire::DecodeHello(
                R"({"v":1,"function":"echo","worker":"w","pid":1,"capacity":1,"draining":1})")),
            DecodeErrc::kWrongType);
  // Unknown fields are ignored (readers ignore fields they do not know).
  EXPECT_TRUE(wire::DecodeHello(R"({"v":1,"function":"echo","worker":"w","pid":1,"capacity":1,"x":[]})"));
}

TEST(WorkerMessages, WelcomeRoundTripAndDefaults) {
  wire::Welcome w;
  w.function = "echo";
  w.heartbeat_ms = 200;
  w.timeout_ms = 30'000;
  w.params = {{"size", 3}};
  w.max_payload = 1 << 20;
  w.memory_mb = 512;
  w.output_dir = "/tmp/out";
  w.concurrency = 4;
  w.handler = "builtin:echo";
  w.handler_dir = "/srv";
  w.batch = wire::WelcomeBatch{50, 200};
  auto d = wire::DecodeWelcome(wire::Encode(w));
  ASSERT_TRUE(d) << Message(d);
  EXPECT_EQ(*d, w);
  auto minimal = wire::DecodeWelcome(R"({"v":1,"function":"echo"})");
  ASSERT_TRUE(minimal) << Message(minimal);
  EXPECT_FALSE(minimal->handler);
  EXPECT_FALSE(minimal->batch);
  EXPECT_EQ(minimal->heartbeat_ms, 1000);
}

TEST(WorkerMessages, WelcomeErrors) {
  EXPECT_EQ(Reason(wire::DecodeWelcome(R"({"v":1,"function":"echo","params":[1]})")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(wire::DecodeWelcome(R"({"v":1,"function":"echo","heartbeat_ms":0})")),
            DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(wire::DecodeWelcome(R"({"v":1,"function":"echo","batch":5})")), DecodeErrc::kWrongType);
  const auto batch = wire::DecodeWelcome(R"({"v":1,"function":"echo","batch":{"size":0,"window_ms":1}})");
  EXPECT_EQ(Reason(batch), DecodeErrc::kOutOfRange);
  EXPECT_THAT(Message(batch), HasSubstr("batch"));
  EXPECT_EQ(Reason(wire::DecodeWelcome(R"({"v":1,"function":"echo","handler":7})")), DecodeErrc::kWrongType);
}

TEST(WorkerMessages, WelcomeOutputsRoundTripAndAbsence) {
  wire::Welcome w;
  w.function = "image.thumbnail";
  w.outputs = OutputTarget{"https://store:9000/b/runnel",
                           {{"Authorization", Secret("Bearer t")}, {"X-A", Secret("1")}},
                           std::chrono::milliseconds(5000)};
  const std::string body = wire::Encode(w);
  EXPECT_THAT(body,
              HasSubstr(R"("outputs":{"headers":{"Authorization":"Bearer t","X-A":"1"},"timeout_ms":5000,)"
                        R"("url":"https://store:9000/b/runnel"})"));
  auto d = wire::DecodeWelcome(body);
  ASSERT_TRUE(d) << Message(d);
  EXPECT_EQ(*d, w);
  auto without = wire::DecodeWelcome(R"({"v":1,"function":"echo"})");
  ASSERT_TRUE(without) << Message(without);
  EXPECT_FALSE(without->outputs) << "no outputs: files stay in output_dir";
  auto slash =
      wire::DecodeWelcome(R"({"v":1,"function":"echo","outputs":{"url":"http://s/b/","timeout_ms":100}})");
  ASSERT_TRUE(slash) << Message(slash);
  EXPECT_EQ(slash->outputs->url, "http://s/b");
  EXPECT_TRUE(slash->outputs->headers.empty());
}

TEST(WorkerMessages, WelcomeOutputsAreHeldToTheConfigsRules) {
  const auto decode = [](const std::string& outputs) {
    return wire::DecodeWelcome(R"({"v":1,"function":"echo","outputs":)" + outputs + "}");
  };
  EXPECT_EQ(Reason(decode("5")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(decode(R"({"timeout_ms":1000})")), DecodeErrc::kMissingField);
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b"})")), DecodeErrc::kMissingField) << "timeout_ms is required";
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b","timeout_ms":0})")), DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b","timeout_ms":3600001})")), DecodeErrc::kOutOfRange);
  const auto ftp = decode(R"({"url":"file:///etc","timeout_ms":1000})");
  EXPECT_EQ(Reason(ftp), DecodeErrc::kOutOfRange);
  EXPECT_THAT(Message(ftp), HasSubstr("is not an http:// or https:// URL"));
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b?x=1","timeout_ms":1000})")), DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/)" + std::string(3000, 'a') + R"(","timeout_ms":1000})")),
            DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b","timeout_ms":1000,"headers":[]})")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b","timeout_ms":1000,"headers":{"A":1}})")),
            DecodeErrc::kWrongType);
  const auto split = decode(R"({"url":"http://s/b","timeout_ms":1000,"headers":{"A":"x\r\nHost: evil"}})");
  EXPECT_EQ(Reason(split), DecodeErrc::kOutOfRange) << "a CR LF would split the request";
  EXPECT_THAT(Message(split), Not(HasSubstr("evil"))) << "a header's value is never shown";
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b","timeout_ms":1000,"headers":{"Content-Length":"1"}})")),
            DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(decode(R"({"url":"http://s/b","timeout_ms":1000,"headers":{"A":"1","a":"2"}})")),
            DecodeErrc::kOutOfRange);
  std::string many = R"({"url":"http://s/b","timeout_ms":1000,"headers":{)";
  for (int i = 0; i < 33; ++i) many += fmt::format(R"({}"H{}":"v")", i == 0 ? "" : ",", i);
  EXPECT_EQ(Reason(decode(many + "}}")), DecodeErrc::kOutOfRange);
}

TEST(WorkerMessages, HeartbeatCapacityReasonDraining) {
  EXPECT_EQ(*wire::DecodeHeartbeat(""), wire::Heartbeat{});
  const wire::Heartbeat beat{3, 2, 1024};
  EXPECT_EQ(*wire::DecodeHeartbeat(wire::Encode(beat)), beat);
  EXPECT_EQ(Reason(wire::DecodeHeartbeat(R"({"rss_kb":"lots"})")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(wire::DecodeHeartbeat(R"({"in_flight":-1})")), DecodeErrc::kOutOfRange);

  EXPECT_EQ(wire::DecodeCapacity(wire::Encode(wire::Capacity{512}))->capacity, 512);
  EXPECT_EQ(Reason(wire::DecodeCapacity(R"({"capacity":0})")), DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(wire::DecodeCapacity(R"({"capacity":"many"})")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(wire::DecodeCapacity("")), DecodeErrc::kEmpty);

  EXPECT_EQ(wire::DecodeBye(wire::Encode(wire::Reason{"drained"}))->reason, "drained");
  EXPECT_EQ(wire::DecodeBye("")->reason, "");
  EXPECT_EQ(Reason(wire::DecodeBye(R"({"reason":5})")), DecodeErrc::kWrongType);
  EXPECT_EQ(wire::DecodeReject(R"({"reason":"wrong function"})")->reason, "wrong function");
  EXPECT_EQ(Reason(wire::DecodeExit("\xfe")), DecodeErrc::kNotUtf8);

  EXPECT_TRUE(wire::DecodeDraining(""));
  EXPECT_EQ(Reason(wire::DecodeDraining("x")), DecodeErrc::kBadFrames);
}

TEST(WorkerMessages, TaskAndResultHeadersAsValues) {
  wire::TaskHeader t;
  t.token = 99;
  t.topic = "in";
  EXPECT_EQ(*wire::TryDecodeTask(wire::Encode(t)), t);
  EXPECT_EQ(Reason(wire::TryDecodeTask("")), DecodeErrc::kBadHeader);
  EXPECT_EQ(Reason(wire::TryDecodeTask(wire::Encode(t).substr(0, 5))), DecodeErrc::kBadHeader);
  wire::ResultHeader r;
  r.token = 7;
  EXPECT_EQ(*wire::TryDecodeResult(wire::Encode(r)), r);
  const auto bad = wire::TryDecodeResult("R\x01");
  EXPECT_EQ(Reason(bad), DecodeErrc::kBadHeader);
  EXPECT_THAT(Message(bad), HasSubstr("truncated in field 'token'"));
}

TEST(ControlRequests, EveryOpRoundTrips) {
  for (const ControlRequest& r :
       {ControlRequest::Status(), ControlRequest::Trace("01HZX3-img:7.a_b"),
        ControlRequest::OutcomeOf(std::string(kMaxEventIdBytes, 'a')), ControlRequest::JobRun("nightly"),
        ControlRequest::JobStatus("nightly-20260101T000000Z"), ControlRequest::JobList()}) {
    auto d = DecodeControlRequest(Encode(r));
    ASSERT_TRUE(d) << Message(d);
    EXPECT_EQ(*d, r);
  }
  EXPECT_EQ(Encode(ControlRequest::Status()), R"({"op":"status"})");
  EXPECT_EQ(Encode(ControlRequest::Trace("e1")), R"({"event":"e1","op":"trace"})");
  EXPECT_EQ(ControlOpsKnown(), "status, trace, outcome, job.run, job.status, job.list");
  EXPECT_TRUE(ControlRequest::JobList().IsJobOp());
  EXPECT_FALSE(ControlRequest::OutcomeOf("e").IsJobOp());
}

// trace and outcome take an event id, with precise errors; a field another op takes is ignored.
TEST(ControlRequests, AnEventOpNeedsAnEventId) {
  const auto missing = DecodeControlRequest(R"({"op":"outcome"})");
  EXPECT_EQ(Reason(missing), DecodeErrc::kMissingField);
  EXPECT_THAT(Message(missing), HasSubstr("'event'"));
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":"trace","event":""})")), DecodeErrc::kOutOfRange);
  const auto spaced = DecodeControlRequest(R"({"op":"outcome","event":"a b"})");
  EXPECT_EQ(Reason(spaced), DecodeErrc::kOutOfRange);
  EXPECT_THAT(Message(spaced), HasSubstr("'a b' is not an event id (1..128 of A-Z a-z 0-9 . _ : -)"));
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":"outcome","event":")" +
                                        std::string(kMaxEventIdBytes + 1, 'a') + R"("})")),
            DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":"outcome","event":"caf\u00e9"})")), DecodeErrc::kOutOfRange);
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":"trace","event":7})")), DecodeErrc::kWrongType);
  EXPECT_TRUE(DecodeControlRequest(R"({"op":"status","event":"x"})"));
}

// The request that stopped the autoscaler thread with json type_error.316 (issue 12), and others.
TEST(ControlRequests, HostileBytesGetPreciseErrors) {
  EXPECT_EQ(Reason(DecodeControlRequest("\xff\xfe")), DecodeErrc::kNotUtf8);
  EXPECT_EQ(Reason(DecodeControlRequest("")), DecodeErrc::kEmpty);
  EXPECT_EQ(Reason(DecodeControlRequest(std::string(kMaxRequestBytes + 1, 's'))), DecodeErrc::kOversized);
  const auto text = DecodeControlRequest("status");
  EXPECT_EQ(Reason(text), DecodeErrc::kNotJson);
  EXPECT_THAT(Message(text), HasSubstr("a request is a JSON object with \"op\""));
  EXPECT_EQ(Reason(DecodeControlRequest("[]")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":5})")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(DecodeControlRequest(R"({})")), DecodeErrc::kMissingField);
  const auto unknown = DecodeControlRequest(R"({"op":"job.delete"})");
  EXPECT_EQ(Reason(unknown), DecodeErrc::kUnknownCommand);
  EXPECT_THAT(Message(unknown),
              HasSubstr("unknown op 'job.delete' (status, trace, outcome, job.run, job.status, job.list)"));
  // A long unknown op is quoted shortly.
  EXPECT_LT(Message(DecodeControlRequest(R"({"op":")" + std::string(60, 'x') + R"("})")).size(), 200u);
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":"job.run","schedule":5})")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":"job.run"})")), DecodeErrc::kMissingField);
  EXPECT_EQ(Reason(DecodeControlRequest(R"({"op":"job.status","job":[]})")), DecodeErrc::kWrongType);
}

TEST(ControlReplies, OkErrorAndMalformed) {
  const auto ok = DecodeControlReply(ControlOkReply({{"job", "j1"}, {"items", 3}}));
  ASSERT_TRUE(ok) << Message(ok);
  EXPECT_TRUE(ok->ok);
  EXPECT_EQ(ok->body.at("items"), 3);
  EXPECT_FALSE(ok->body.contains("ok")) << "the body is the answer's fields only";
  const auto failed = DecodeControlReply(R"({"ok":false,"error":"no schedule 'x'"})");
  ASSERT_TRUE(failed);
  EXPECT_FALSE(failed->ok);
  EXPECT_EQ(failed->error, "no schedule 'x'");
  EXPECT_EQ(Reason(DecodeControlReply(R"({"ok":"yes"})")), DecodeErrc::kWrongType);
  EXPECT_EQ(Reason(DecodeControlReply(R"({"functions":[]})")), DecodeErrc::kMissingField);
  EXPECT_EQ(Reason(DecodeControlReply("<html>")), DecodeErrc::kNotJson);
}

TEST(ControlReplies, ErrorRepliesAreValidJsonWhateverTheMessage) {
  const auto reply = nlohmann::json::parse(ControlErrorReply("bad \xff byte"));
  EXPECT_FALSE(reply.at("ok").get<bool>());
  EXPECT_THAT(reply.at("error").get<std::string>(), HasSubstr("bad "));
  EXPECT_FALSE(nlohmann::json::parse(ControlErrorReply("\xc3")).at("ok").get<bool>());
}

TEST(ProtocolErrors, CountsEveryErrorAndLogsAtMostOncePerSecondPerPeer) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger log("test", sink);
  log.set_pattern("%v");
  ProtocolErrors errors;
  const auto t0 = ProtocolErrors::Clock::now();
  const DecodeError wrong{DecodeErrc::kWrongType, "HELLO: 'pid' must be an integer"};
  for (int i = 0; i < 5; ++i) errors.Report("dispatcher/echo", std::string("\0\x8b\x45", 3), wrong, log, t0);
  errors.Report("dispatcher/echo", "other-peer", {DecodeErrc::kNotJson, "HELLO: not JSON"}, log, t0);
  errors.Report("control", "tcp://127.0.0.1", {DecodeErrc::kNotUtf8, "request is not valid UTF-8 text"}, log,
                t0);
  errors.Report("dispatcher/echo", std::string("\0\x8b\x45", 3), wrong, log,
                t0 + std::chrono::milliseconds(1500));

  const std::vector<ProtocolErrors::Count> expected = {
      {"control", "not-utf8", 1}, {"dispatcher/echo", "not-json", 1}, {"dispatcher/echo", "wrong-type", 6}};
  EXPECT_EQ(errors.Snapshot(), expected);
  EXPECT_EQ(errors.Total("dispatcher/echo"), 7);
  EXPECT_EQ(errors.Total("control"), 1);
  EXPECT_EQ(errors.Total("results"), 0);
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4) << text;  // 1 + 1 + 1 for t0, 1 after a second
  EXPECT_THAT(text, HasSubstr("from 0x008b45 (wrong-type)"));
  EXPECT_THAT(text, HasSubstr("4 more from this peer in the last second, not logged"));
}

}  // namespace
}  // namespace runnel
