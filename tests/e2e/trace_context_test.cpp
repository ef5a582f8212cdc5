// W3C trace context through a real `runnel up`: a `traceparent` published with kafka-python (a
// third-party client) comes back on the outcome, the results-topic record, a pipeline's next event
// and a dead-letter record with the same trace id and a child span; an exec function sees
// TRACEPARENT; an event without one gets a fresh trace (docs/protocol.md §1.5).
#include "runnel/core/trace_context.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>
#include <set>

#include "runnel/kafka/consumer.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {
namespace {

constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kParent = "00f067aa0ba902b7";

// Publishes one record with kafka-python: value and headers (name=value, one per argument).
void PublishWithKafkaPython(const std::string& bootstrap, const std::string& topic, const std::string& value,
                            std::vector<std::string> headers) {
  std::vector<std::string> argv = {
      "/usr/bin/python3",
      "-c",
      "import sys\n"
      "from kafka import KafkaProducer\n"
      "p = KafkaProducer(bootstrap_servers=sys.argv[1])\n"
      "hs = [(h.split('=', 1)[0], h.split('=', 1)[1].encode()) for h in sys.argv[4:]]\n"
      "p.send(sys.argv[2], value=sys.argv[3].encode(), headers=hs).get(timeout=30)\n"
      "p.flush()\n",
      bootstrap,
      topic,
      value};
  for (auto& h : headers) argv.push_back(std::move(h));
  const RunResult r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// The child span of a `traceparent` value of trace kTrace, or "" when it is not one.
std::string ChildSpan(const std::string& traceparent) {
  const auto tp = ParseTraceparent(traceparent);
  if (!tp || tp->trace_id != kTrace) return {};
  return tp->parent_id;
}

TEST(TraceContext, ATraceparentFromKafkaPythonComesBackOnEveryRecordWithAChildSpan) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 1
    results_topic: echo.results
    next: show
  - name: show
    workers: 1
    handler: exec:/usr/bin/printenv TRACEPARENT
    results_topic: show.results
  - name: sleep
    workers: 1
    results_topic: sleep.results
    retries: {max_attempts: 1}
)");
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, std::chrono::seconds(20)));
  ASSERT_TRUE(stack.WaitForWorkers("show", 1, std::chrono::seconds(20)));
  ASSERT_TRUE(stack.WaitForWorkers("sleep", 1, std::chrono::seconds(20)));
  const std::string bootstrap = stack.Kafka().bootstrap;
  const std::string traceparent = fmt::format("00-{}-{}-01", kTrace, kParent);
  PublishWithKafkaPython(
      bootstrap, "echo", "hello",
      {"runnel-id=traced-1", "traceparent=" + traceparent, "tracestate=congo=t61rcWkgMzE"});

  // The outcome and the results-topic record: same trace, a span of the dispatcher's own.
  const auto results = ReadRecords(stack.Kafka(), "echo.results", 1, std::chrono::seconds(30));
  ASSERT_EQ(results.size(), 1u);
  const auto outcome = nlohmann::json::parse(HeaderValue(results[0], "runnel-result"));
  EXPECT_EQ(outcome.value("trace", ""), kTrace);
  const std::string span = ChildSpan(HeaderValue(results[0], "traceparent"));
  EXPECT_EQ(span.size(), 16u) << HeaderValue(results[0], "traceparent");
  EXPECT_NE(span, kParent);
  EXPECT_EQ(outcome.value("span", ""), span);

  // The pipeline's next event: the same trace, a child of that span, tracestate untouched.
  const auto next = ReadRecords(stack.Kafka(), "show", 1, std::chrono::seconds(30));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(HeaderValue(next[0], "traceparent"), fmt::format("00-{}-{}-01", kTrace, span));
  EXPECT_EQ(HeaderValue(next[0], "runnel-trace"), kTrace);
  EXPECT_EQ(HeaderValue(next[0], "tracestate"), "congo=t61rcWkgMzE");

  // The exec function that event reaches sees TRACEPARENT: same trace, a span of its own attempt.
  const auto shown = ReadOutcomes(stack.Kafka(), "show.results", 1, std::chrono::seconds(30));
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].trace_id, kTrace);
  const std::string seen = shown[0].output.substr(0, shown[0].output.find('\n'));
  EXPECT_EQ(seen, fmt::format("00-{}-{}-01", kTrace, shown[0].span_id));
  EXPECT_NE(shown[0].span_id, span);

  // A dead-letter record carries it too.
  PublishWithKafkaPython(bootstrap, "sleep", R"({"fail":"on purpose"})", {"traceparent=" + traceparent});
  const auto letters = ReadRecords(stack.Kafka(), "sleep.dlq", 1, std::chrono::seconds(30));
  ASSERT_EQ(letters.size(), 1u);
  const std::string dead_span = ChildSpan(HeaderValue(letters[0], "traceparent"));
  EXPECT_EQ(dead_span.size(), 16u) << HeaderValue(letters[0], "traceparent");
  EXPECT_NE(dead_span, kParent);
}

TEST(TraceContext, AnEventWithoutOneOrWithAnInvalidOneGetsAFreshTrace) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 1
    results_topic: echo.results
)");
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, std::chrono::seconds(20)));
  const std::string bootstrap = stack.Kafka().bootstrap;
  PublishWithKafkaPython(bootstrap, "echo", "plain", {"runnel-id=plain-1"});
  PublishWithKafkaPython(bootstrap, "echo", "bad",
                         {"runnel-id=bad-1", fmt::format("traceparent=00-{}-0000000000000000-01", kTrace)});
  const auto results = ReadRecords(stack.Kafka(), "echo.results", 2, std::chrono::seconds(30));
  ASSERT_EQ(results.size(), 2u);
  std::set<std::string> traces;
  for (const auto& r : results) {
    const auto tp = ParseTraceparent(HeaderValue(r, "traceparent"));
    ASSERT_TRUE(tp.has_value()) << HeaderValue(r, "traceparent");
    EXPECT_NE(tp->trace_id, kTrace) << "an invalid traceparent is not believed";
    EXPECT_EQ(nlohmann::json::parse(HeaderValue(r, "runnel-result")).value("status", ""), "ok");
    traces.insert(tp->trace_id);
  }
  EXPECT_EQ(traces.size(), 2u) << "each event starts a trace of its own";
}

}  // namespace
}  // namespace runnel::testing
