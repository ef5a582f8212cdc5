// What the stack keeps so a caller never depends on the lossy results feed alone: the outcomes of
// synchronous calls (reply-to) with their output, within their bounds, answered as `outcome <event
// id>`; and the outcomes of job items, handed to the job sink on each flush.
#include <gmock/gmock.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>

#include "runnel/core/outcome.hpp"
#include "runnel/telemetry/event_journal.hpp"
#include "runnel/telemetry/stack_telemetry.hpp"
#include "runnel/telemetry/trace_store.hpp"

namespace runnel::telemetry {
namespace {

using ::testing::HasSubstr;

kafka::Message Record(std::int64_t offset) {
  kafka::Message m;
  m.topic = "echo";
  m.partition = 0;
  m.offset = offset;
  m.timestamp_ms = 1'000;
  return m;
}

Outcome Finished(const std::string& id, std::string output, std::string reply_to = "", std::string job = "") {
  Outcome o;
  o.id = id;
  o.function = "echo";
  o.status = OutcomeStatus::kOk;
  o.topic = "echo";
  o.partition = 0;
  o.content_type = "text/plain";
  o.output = std::move(output);
  o.files_json = R"([{"path":"/out/a.txt"}])";
  o.reply_to = std::move(reply_to);
  o.job_id = std::move(job);
  return o;
}

// Runs one event through a journal: consumed, one attempt, finished with `o`, flushed.
void RunEvent(EventJournal& journal, std::uint64_t slot, const Outcome& o) {
  journal.Received(slot, o.id, Record(static_cast<std::int64_t>(slot)));
  journal.Dispatched(slot, 1, "echo-1");
  journal.Answered(slot, "echo-1", 1'000, o.status == OutcomeStatus::kOk, o.error_kind, o.error);
  journal.Finished(slot, o, o.status == OutcomeStatus::kOk ? "" : "echo.dlq");
  journal.Flush();
}

TEST(KeptOutcomes, ReplacedOnRedeliveryAndForgottenOldestFirstBeyondTheCount) {
  TraceStore store(3);
  store.Update([](TraceStore::Batch& b) {
    for (const char* id : {"a", "b", "c"}) b.Keep("echo", id, {std::string("meta-") + id, "out", true, 3});
    b.Keep("echo", "a", {"meta-a2", "again", true, 5});  // a again: now the newest
    b.Keep("echo", "d", {"meta-d", "out", true, 3});     // 4 outcomes: the oldest (b) goes
  });
  EXPECT_FALSE(store.Kept("echo", "b"));
  ASSERT_TRUE(store.Kept("echo", "a"));
  EXPECT_EQ(store.Kept("echo", "a")->output, "again");
  EXPECT_TRUE(store.Kept("echo", "c"));
  EXPECT_TRUE(store.Kept("echo", "d"));
  EXPECT_FALSE(store.Kept("other", "d")) << "kept per function";
  EXPECT_EQ(store.KeptBytes(), std::string("meta-a2again").size() + 2 * std::string("meta-cout").size());
}

TEST(KeptOutcomes, TheTotalBytesStayWithinTheirBound) {
  TraceStore store(1'000);
  const std::string output(TraceStore::kKeptOutputMax, 'x');
  const std::size_t count = TraceStore::kKeptBytesMax / TraceStore::kKeptOutputMax + 8;
  for (std::size_t i = 0; i < count; ++i) {
    store.Update([&](TraceStore::Batch& b) {
      b.Keep("echo", std::to_string(i), {"{}", output, true, output.size()});
    });
    EXPECT_LE(store.KeptBytes(), TraceStore::kKeptBytesMax);
  }
  EXPECT_FALSE(store.Kept("echo", "0")) << "the oldest went";
  EXPECT_TRUE(store.Kept("echo", std::to_string(count - 1))) << "the newest stays";
}

TEST(EventJournal, KeepsTheOutcomeOfASynchronousCallOnlyAndNotAnOutputOverItsBound) {
  auto store = std::make_shared<TraceStore>(10);
  EventJournal journal("echo", store,
                       std::make_shared<EventMetrics>(std::make_shared<prometheus::Registry>()));
  RunEvent(journal, 1, Finished("call", "pong", "invoke.call"));
  RunEvent(journal, 2, Finished("plain", "pong"));
  RunEvent(journal, 3, Finished("big", std::string(TraceStore::kKeptOutputMax + 1, 'x'), "invoke.big"));

  const auto call = store->Kept("echo", "call");
  ASSERT_TRUE(call);
  EXPECT_EQ(call->output, "pong");
  EXPECT_TRUE(call->output_kept);
  const auto meta = nlohmann::json::parse(call->meta);
  EXPECT_EQ(meta["content_type"], "text/plain");
  EXPECT_EQ(meta["reply_to"], "invoke.call");
  EXPECT_FALSE(store->Kept("echo", "plain")) << "no reply-to: only its trace";
  const auto big = store->Kept("echo", "big");
  ASSERT_TRUE(big);
  EXPECT_FALSE(big->output_kept);
  EXPECT_TRUE(big->output.empty());
  EXPECT_EQ(big->output_bytes, TraceStore::kKeptOutputMax + 1);
}

TEST(EventJournal, HandsJobItemsToTheJobSinkOnFlushAndNothingElse) {
  auto store = std::make_shared<TraceStore>(10);
  std::vector<Outcome> sunk;
  EventJournal journal("echo", store,
                       std::make_shared<EventMetrics>(std::make_shared<prometheus::Registry>()),
                       [&](std::vector<Outcome>& batch) {
                         for (auto& o : batch) sunk.push_back(std::move(o));
                       });
  journal.Received(1, "item-1", Record(1));
  Outcome failed = Finished("item-1", "", "", "nightly-1");
  failed.status = OutcomeStatus::kDeadLetter;
  failed.error_kind = "bad-input";
  failed.error = "not an image";
  journal.Finished(1, failed, "echo.dlq");
  EXPECT_TRUE(sunk.empty()) << "handed on in Flush, not on the hot path";
  journal.Flush();
  RunEvent(journal, 2, Finished("not-a-job", "x"));
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_EQ(sunk[0].id, "item-1");
  EXPECT_EQ(sunk[0].job_id, "nightly-1");
  EXPECT_EQ(sunk[0].status, OutcomeStatus::kDeadLetter);
  EXPECT_EQ(sunk[0].error, "not an image");
  EXPECT_TRUE(sunk[0].output.empty());
}

TEST(StackTelemetry, AnswersOutcomeWithTheKeptOutcomeAndItsOutput) {
  StackTelemetry telemetry(10);
  auto journal = telemetry.JournalFor("echo");
  RunEvent(static_cast<EventJournal&>(*journal), 1, Finished("call", "pong", "invoke.call"));
  RunEvent(static_cast<EventJournal&>(*journal), 2,
           Finished("binary", std::string("\x00\xff", 2), "invoke.binary"));
  journal->Received(3, "running", Record(3));
  journal->Flush();

  const auto ok = nlohmann::json::parse(telemetry.Answer(ControlRequest::OutcomeOf("call")));
  EXPECT_EQ(ok["id"], "call");
  ASSERT_EQ(ok["outcomes"].size(), 1u);
  const auto& o = ok["outcomes"][0];
  EXPECT_EQ(o["function"], "echo");
  EXPECT_EQ(o["status"], "ok");
  EXPECT_EQ(o["output"], "pong");
  EXPECT_EQ(o["output_kept"], true);
  const Outcome back = Outcome::FromFrames(o["meta"].dump(), o["output"]);
  EXPECT_EQ(back.id, "call");
  EXPECT_EQ(back.content_type, "text/plain");
  EXPECT_EQ(back.files_json, R"([{"path":"/out/a.txt"}])");

  const auto binary = nlohmann::json::parse(telemetry.Answer(ControlRequest::OutcomeOf("binary")));
  EXPECT_FALSE(binary["outcomes"][0].contains("output"));
  EXPECT_EQ(Base64Decode(binary["outcomes"][0]["output_base64"].get<std::string>()),
            std::string("\x00\xff", 2));

  const auto running = nlohmann::json::parse(telemetry.Answer(ControlRequest::OutcomeOf("running")));
  EXPECT_EQ(running["outcomes"][0]["status"], "in progress");
  EXPECT_FALSE(running["outcomes"][0].contains("meta"));

  const auto missing = nlohmann::json::parse(telemetry.Answer(ControlRequest::OutcomeOf("nope")));
  EXPECT_FALSE(missing["ok"].get<bool>());
  EXPECT_THAT(missing["error"].get<std::string>(), HasSubstr("no trace of event 'nope'"));
  const auto status = nlohmann::json::parse(telemetry.Answer(ControlRequest::Status()));
  EXPECT_FALSE(status["ok"].get<bool>()) << "status is not telemetry's to answer";
  EXPECT_THAT(status["error"].get<std::string>(), HasSubstr("'status' is not a question about an event"));
  const auto trace = nlohmann::json::parse(telemetry.Answer(ControlRequest::Trace("call")));
  EXPECT_TRUE(trace["ok"].get<bool>());
  EXPECT_TRUE(trace.contains("traces"));
}

TEST(StackTelemetry, JournalsGetTheJobSinkSetBeforeThem) {
  StackTelemetry telemetry(10);
  std::size_t sunk = 0;
  telemetry.CountJobs([&](std::vector<Outcome>& batch) { sunk += batch.size(); });
  auto journal = telemetry.JournalFor("echo");
  RunEvent(static_cast<EventJournal&>(*journal), 1, Finished("item", "x", "", "job-1"));
  EXPECT_EQ(sunk, 1u);
}

}  // namespace
}  // namespace runnel::telemetry
