// The telemetry pieces without a stack: an event journal turning dispatcher steps into a trace and
// histogram samples, status JSON as metric families, and JSON log lines
// that stay valid for any message.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "runnel/telemetry/event_journal.hpp"
#include "runnel/telemetry/metrics_server.hpp"
#include "runnel/telemetry/status_metrics.hpp"
#include "runnel/telemetry/trace_store.hpp"
#include "runnel/testing/http_get.hpp"

namespace runnel::telemetry {
namespace {

using ::testing::HasSubstr;

kafka::Message Record(std::int64_t offset) {
  kafka::Message m;
  m.topic = "thumbs";
  m.partition = 3;
  m.offset = offset;
  m.key = "cam-1";
  m.timestamp_ms = 1'000;
  return m;
}

const prometheus::MetricFamily* Family(const std::vector<prometheus::MetricFamily>& all,
                                       const std::string& name) {
  for (const auto& f : all) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

TEST(EventJournal, ARetriedEventBecomesOneTraceWithBothAttemptsAfterAFlush) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto store = std::make_shared<TraceStore>(10);
  EventJournal journal("thumb", store, std::make_shared<EventMetrics>(registry));
  journal.Received(7, "01EVENT", Record(42));
  journal.Dispatched(7, 1, "thumb-1");
  journal.Answered(7, "thumb-1", 2'500, false, "transient", "disk busy");
  journal.RetryScheduled(7, 2, std::chrono::milliseconds(200));
  EXPECT_TRUE(store->Find("01EVENT").empty()) << "nothing reaches the store before a flush";
  journal.Flush();
  auto found = store->Find("01EVENT");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].status, "in progress");

  journal.Dispatched(7, 2, "thumb-2");
  journal.Answered(7, "thumb-2", 4'000, true, "", "");
  Outcome ok;
  ok.status = OutcomeStatus::kOk;
  ok.attempts = 2;
  journal.Finished(7, ok, "");
  journal.Flush();
  found = store->Find("01EVENT");
  ASSERT_EQ(found.size(), 1u);
  const auto j = found[0].ToJson();
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["topic"], "thumbs");
  EXPECT_EQ(j["partition"], 3);
  EXPECT_EQ(j["offset"], 42);
  EXPECT_EQ(j["key"], "cam-1");
  EXPECT_EQ(j["retries"], 1);
  ASSERT_EQ(j["attempts"].size(), 2u);
  EXPECT_EQ(j["attempts"][0]["result"], "error");
  EXPECT_EQ(j["attempts"][0]["error"], "disk busy");
  EXPECT_EQ(j["attempts"][0]["retry_in_ms"], 200);
  EXPECT_EQ(j["attempts"][0]["duration_ms"], 2.5);
  EXPECT_EQ(j["attempts"][1]["worker"], "thumb-2");
  EXPECT_EQ(j["attempts"][1]["result"], "ok");
  EXPECT_GE(j["latency_ms"].get<std::int64_t>(), 0);

  const auto families = registry->Collect();
  const auto* duration = Family(families, "runnel_function_duration_seconds");
  ASSERT_NE(duration, nullptr);
  std::uint64_t samples = 0;
  for (const auto& m : duration->metric) samples += m.histogram.sample_count;
  EXPECT_EQ(samples, 2u);
  const auto* errors = Family(families, "runnel_dispatcher_errors_total");
  ASSERT_NE(errors, nullptr);
  ASSERT_EQ(errors->metric.size(), 1u);
  EXPECT_EQ(errors->metric[0].counter.value, 1);
}

TEST(EventJournal, ARefusedEventCountsAsAnErrorOfItsKindAndNamesItsDeadLetterTopic) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto store = std::make_shared<TraceStore>(10);
  EventJournal journal("thumb", store, std::make_shared<EventMetrics>(registry));
  journal.Received(1, "thumbs-3-5", Record(5));
  Outcome bad;
  bad.status = OutcomeStatus::kError;
  bad.error_kind = "malformed-envelope";
  bad.error = "header runnel-hop is not a number";
  journal.Finished(1, bad, "thumbs.dlq");
  journal.Flush();
  const auto found = store->Find("thumbs-3-5");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].status, "error");
  EXPECT_EQ(found[0].dead_letter_topic, "thumbs.dlq");
  EXPECT_TRUE(found[0].attempts.empty());
  const auto families = registry->Collect();
  const auto* errors = Family(families, "runnel_dispatcher_errors_total");
  ASSERT_NE(errors, nullptr);
  ASSERT_EQ(errors->metric.size(), 1u);
  EXPECT_EQ(errors->metric[0].label[1].value, "malformed-envelope");
}

// The HTTP gateway's waiting calls: an outcome with a reply-to reaches the call sink in Finished,
// output included, before any flush; one without a reply-to never does.
TEST(EventJournal, AnOutcomeWithAReplyToReachesTheCallSinkAsItFinishes) {
  auto store = std::make_shared<TraceStore>(10);
  std::vector<Outcome> seen;
  EventJournal journal("echo", store,
                       std::make_shared<EventMetrics>(std::make_shared<prometheus::Registry>()), {},
                       [&seen](const Outcome& o) { seen.push_back(o); });
  journal.Received(1, "01CALL", Record(1));
  journal.Received(2, "01PLAIN", Record(2));
  Outcome call;
  call.id = "01CALL";
  call.reply_to = "gateway.sync";
  call.output = "the output";
  journal.Finished(1, call, "");
  Outcome plain;
  plain.id = "01PLAIN";
  journal.Finished(2, plain, "");
  ASSERT_EQ(seen.size(), 1u) << "handed over at Finished, not at the next flush";
  EXPECT_EQ(seen[0].id, "01CALL");
  EXPECT_EQ(seen[0].output, "the output");
  journal.Flush();
  EXPECT_EQ(seen.size(), 1u);
}

TEST(StatusMetrics, CountersAndGaugesFromTheStatusJson) {
  const auto status = nlohmann::json::parse(R"({"functions": [{
      "name": "echo", "lag": 7, "oldest_age_ms": 1500, "received": 10, "succeeded": 8, "errors": 1,
      "dead_lettered": 1, "desired": 2, "running": 2,
      "usage": {"invocations": 12, "worker_seconds": 3.5, "cpu_seconds": 0.25, "peak_rss_kb": 2048, "workers_started": 2},
      "workers": [{"id": "echo-1", "rss_kb": 1024, "cpu_s": 0.125, "in_flight": 1}]}]})");
  const auto families = StatusMetrics(status);
  const auto* lag = Family(families, "runnel_dispatcher_lag_events");
  ASSERT_NE(lag, nullptr);
  EXPECT_EQ(lag->type, prometheus::MetricType::Gauge);
  EXPECT_EQ(lag->metric[0].gauge.value, 7);
  EXPECT_EQ(Family(families, "runnel_dispatcher_lag_seconds")->metric[0].gauge.value, 1.5);
  const auto* completed = Family(families, "runnel_dispatcher_completed_events_total");
  ASSERT_NE(completed, nullptr);
  EXPECT_EQ(completed->type, prometheus::MetricType::Counter);
  ASSERT_EQ(completed->metric.size(), 3u) << "one series per outcome, in one family";
  EXPECT_EQ(Family(families, "runnel_dispatcher_dead_letters_total")->metric[0].counter.value, 2);
  EXPECT_EQ(Family(families, "runnel_usage_peak_memory_bytes")->metric[0].gauge.value, 2048 * 1024);
  const auto* rss = Family(families, "runnel_worker_resident_memory_bytes");
  ASSERT_NE(rss, nullptr);
  EXPECT_EQ(rss->metric[0].gauge.value, 1024 * 1024);
  EXPECT_EQ(rss->metric[0].label[1].name, "slot");
  EXPECT_EQ(rss->metric[0].label[1].value, "0");
  EXPECT_TRUE(StatusMetrics(nlohmann::json::object()).empty());
}

TEST(StatusMetrics, ProtocolErrorsPerSocketAndReason) {
  const auto status = nlohmann::json::parse(R"({"functions": [], "protocol_errors": [
      {"socket": "dispatcher/echo", "reason": "wrong-type", "count": 3},
      {"socket": "status", "reason": "not-utf8", "count": 1},
      {"socket": 5, "reason": "ignored: not a string", "count": 1}]})");
  const auto families = StatusMetrics(status);
  const auto* errors = Family(families, "runnel_protocol_errors_total");
  ASSERT_NE(errors, nullptr);
  EXPECT_EQ(errors->type, prometheus::MetricType::Counter);
  ASSERT_EQ(errors->metric.size(), 2u);
  EXPECT_EQ(errors->metric[0].label[0].name, "socket");
  EXPECT_EQ(errors->metric[0].label[0].value, "dispatcher/echo");
  EXPECT_EQ(errors->metric[0].label[1].name, "reason");
  EXPECT_EQ(errors->metric[0].label[1].value, "wrong-type");
  EXPECT_EQ(errors->metric[0].counter.value, 3);
  EXPECT_EQ(errors->metric[1].label[0].value, "status");
}

// Documented families are served from the start (tests/e2e/observability_test.cpp checks every one),
// so the protocol error family has its TYPE before any error.
TEST(MetricsServer, ServesTheProtocolErrorFamilyBeforeAnyError) {
  MetricsServer server("127.0.0.1:0", std::make_shared<prometheus::Registry>(),
                       [] { return nlohmann::json::parse(R"({"functions": [], "protocol_errors": []})"); });
  const auto r = runnel::testing::HttpGet(server.Url());
  ASSERT_TRUE(r);
  EXPECT_THAT(r->body, HasSubstr("# TYPE runnel_protocol_errors_total counter"));
}

TEST(StatusMetrics, EveryComponentsHealthAndTheSnapshotsAge) {
  const auto status = nlohmann::json::parse(R"({"functions": [], "age_ms": 2500, "components": [
      {"name": "dispatcher echo", "up": true},
      {"name": "autoscaler", "up": false, "reason": "failpoint autoscaler.loop"}]})");
  const auto families = StatusMetrics(status);
  const auto* up = Family(families, "runnel_component_up");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->type, prometheus::MetricType::Gauge);
  ASSERT_EQ(up->metric.size(), 2u);
  EXPECT_EQ(up->metric[0].label[0].name, "component");
  EXPECT_EQ(up->metric[0].label[0].value, "dispatcher echo");
  EXPECT_EQ(up->metric[0].gauge.value, 1);
  EXPECT_EQ(up->metric[1].label[0].value, "autoscaler");
  EXPECT_EQ(up->metric[1].gauge.value, 0) << "a component that failed is down";
  const auto* age = Family(families, "runnel_status_age_seconds");
  ASSERT_NE(age, nullptr);
  EXPECT_EQ(age->metric[0].gauge.value, 2.5);
}

TEST(JsonLogs, EveryLineParsesWhateverTheMessageHoldsAndCarriesTheEventInScope) {
  // Capture stderr (where loggers write) into a file for the duration of the test.
  char path[] = "/tmp/runnel-log-test-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  log::SetFormat(log::Format::kJson);
  auto logger = log::Get("unit-json");
  {
    const log::EventScope about("01ODD", "4bf92f3577b34da6a3ce929d0e0e4736");
    logger->warn("odd \"text\" \\ \t \x01 \xff\xfe and é");
  }
  logger->info("not about an event");
  logger->flush();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  log::SetFormat(log::Format::kHuman);
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line, nullptr, false));
  std::remove(path);
  ASSERT_EQ(lines.size(), 2u);
  ASSERT_TRUE(lines[0].is_object());
  EXPECT_EQ(lines[0]["level"], "warning");
  EXPECT_EQ(lines[0]["logger"], "unit-json");
  EXPECT_EQ(lines[0]["event"], "01ODD");
  EXPECT_EQ(lines[0]["trace"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_THAT(lines[0]["message"].get<std::string>(), HasSubstr("odd \"text\" \\ \t \x01 \xEF\xBF\xBD"));
  EXPECT_THAT(lines[0]["ts"].get<std::string>(), ::testing::EndsWith("Z"));
  ASSERT_TRUE(lines[1].is_object());
  EXPECT_FALSE(lines[1].contains("event"));
  EXPECT_FALSE(lines[1].contains("trace"));
}

TEST(MetricsServer, PortZeroBindsAFreePortAndServesTheStatusFamilies) {
  MetricsServer server("127.0.0.1:0", std::make_shared<prometheus::Registry>(), [] {
    return nlohmann::json::parse(R"({"functions": [{"name": "echo", "received": 3}]})");
  });
  ASSERT_GT(server.Port(), 0);
  EXPECT_EQ(server.Url(), fmt::format("http://127.0.0.1:{}/metrics", server.Port()));
  const auto r = runnel::testing::HttpGet(server.Url());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->content_type, HasSubstr("text/plain"));
  EXPECT_THAT(r->body, HasSubstr("# TYPE runnel_dispatcher_received_events_total counter"));
  EXPECT_THAT(r->body, HasSubstr("runnel_dispatcher_received_events_total{function=\"echo\"} 3"));
}

TEST(MetricsServer, ABadOrBusyAddressIsOneClearError) {
  auto status = [] { return nlohmann::json::object(); };
  for (const char* bad : {"9464", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", ":9464"}) {
    try {
      MetricsServer server(bad, std::make_shared<prometheus::Registry>(), status);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("is not HOST:PORT")) << bad;
    }
  }
  MetricsServer first("127.0.0.1:0", std::make_shared<prometheus::Registry>(), status);
  const std::string taken = fmt::format("127.0.0.1:{}", first.Port());
  try {
    MetricsServer second(taken, std::make_shared<prometheus::Registry>(), status);
    ADD_FAILURE() << taken << " was bound twice";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot serve metrics on " + taken));
  }
}

StackConfig LoadYaml(const std::string& yaml) {
  const auto file =
      std::filesystem::temp_directory_path() / fmt::format("runnel-telemetry-{}.yaml", ::getpid());
  std::ofstream(file) << yaml;
  struct Remove {  // NOLINT(cppcoreguidelines-special-member-functions): an aggregate used once
    std::filesystem::path f;
    ~Remove() { std::filesystem::remove(f); }
  } remove{file};
  return LoadStackConfig(file);
}

TEST(TelemetryConfig, MetricsAddressAndTraceBound) {
  const auto defaults = LoadYaml("functions:\n  - name: echo\n");
  EXPECT_EQ(defaults.metrics_listen, "127.0.0.1:0");
  EXPECT_EQ(defaults.trace_events, TraceStore::kDefaultMaxEvents);
  const auto set = LoadYaml("metrics: 0.0.0.0:9464\ntrace_events: 500\nfunctions:\n  - name: echo\n");
  EXPECT_EQ(set.metrics_listen, "0.0.0.0:9464");
  EXPECT_EQ(set.trace_events, 500u);
  try {
    LoadYaml("metrics: localhost\nfunctions:\n  - name: echo\n");
    ADD_FAILURE() << "a metrics address without a port was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr(":1: metrics: 'localhost' is not HOST:PORT"));
  }
  try {
    LoadYaml("trace_events: 0\nfunctions:\n  - name: echo\n");
    ADD_FAILURE() << "trace_events 0 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("trace_events"));
  }
}

}  // namespace
}  // namespace runnel::telemetry
