// Observability through a real `runnel up`: the metrics endpoint scraped while events flow (names
// and types as docs/metrics.md documents them, values that move), JSON logs that parse line by line
// with the event id where a line is about one event, and `runnel trace` on a retried-then-succeeded
// event and on a dead-lettered one.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "runnel/testing/http_get.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;
using std::chrono::milliseconds;
using std::chrono::seconds;

// One scrape in the Prometheus text format: family types from `# TYPE`, and samples by their full
// series text (name{labels}).
struct Scrape {
  std::map<std::string, std::string> types;
  std::map<std::string, double> samples;

  double Value(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? -1 : it->second;
  }
};

Scrape Parse(const std::string& text) {
  Scrape s;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      s.types[name] = type;
    } else if (!line.empty() && line[0] != '#') {
      const auto space = line.rfind(' ');
      s.samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
  }
  return s;
}

std::optional<Scrape> ScrapeStack(const StackProcess& stack) {
  const auto r = HttpGet(stack.Endpoints().value("metrics", ""));
  if (!r || r->status != 200) return std::nullopt;
  return Parse(r->body);
}

// name -> type of every family docs/metrics.md lists in its table.
std::map<std::string, std::string> DocumentedFamilies() {
  std::ifstream in(SourceDir() / "docs" / "metrics.md");
  static const std::regex kRow(R"(^\| `(runnel_[a-z_]+)` \| (counter|gauge|histogram) \|)");
  std::map<std::string, std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (std::smatch m; std::regex_search(line, m, kRow)) out[m[1].str()] = m[2].str();
  }
  return out;
}

nlohmann::json TraceJson(const StackProcess& stack, const std::string& id) {
  const auto r =
      RunCommand({RunnelBin(), "trace", id, "--json", "--state-dir", stack.StateDir().string()}, seconds(10));
  if (r.exit_code != 0) return nlohmann::json();
  return nlohmann::json::parse(r.out, nullptr, false);
}

// The trace once the event has a final outcome (traces are up to ~100 ms behind).
nlohmann::json FinishedTrace(const StackProcess& stack, const std::string& id) {
  nlohmann::json trace;
  WaitFor(
      [&] {
        trace = TraceJson(stack, id);
        return trace.is_object() && trace.contains("traces") && !trace["traces"].empty() &&
               trace["traces"][0].value("status", "") != "in progress";
      },
      seconds(20), milliseconds(50));
  return trace;
}

TEST(Observability, MetricsMoveAsEventsFlowWithTheDocumentedNamesAndTypes) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 2
    results_topic: sleep.results
    retries: {max_attempts: 2, backoff: 20ms}
)");
  const std::string url = stack.Endpoints().value("metrics", "");
  ASSERT_THAT(url, StartsWith("http://127.0.0.1:")) << "the endpoint binds the loopback interface by default";
  const std::string fn = R"({function="sleep"})";
  // The status families appear with the autoscaler's first tick (100 ms), at zero.
  std::optional<Scrape> before;
  ASSERT_TRUE(WaitFor(
      [&] {
        before = ScrapeStack(stack);
        return before &&
               before->samples.contains(fmt::format("{}{}", "runnel_dispatcher_received_events_total", fn));
      },
      seconds(10), milliseconds(50)))
      << "no runnel_dispatcher_received_events_total from " << url;
  EXPECT_EQ(before->Value(fmt::format("{}{}", "runnel_dispatcher_received_events_total", fn)), 0);
  EXPECT_EQ(before->types["runnel_dispatcher_received_events_total"], "counter");

  Events events;
  for (int i = 0; i < 40; ++i) events.emplace_back(R"({"ms":5})", std::nullopt);
  events.emplace_back(R"({"fail":"always","permanent":true})", std::nullopt);
  const auto ids = PublishEvents(stack.Kafka(), "sleep", events);
  ASSERT_EQ(ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), seconds(60)).size(), ids.size());

  // The status snapshot behind most families is refreshed every tick: wait for it to catch up.
  std::optional<Scrape> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = ScrapeStack(stack);
        // All 41 outcomes are on the results topic already; the snapshot may still miss the last
        // one (the dead letter finishes last), so wait for every final count, not just the oks.
        return after &&
               after->Value(R"(runnel_dispatcher_completed_events_total{function="sleep",outcome="ok"})") ==
                   40 &&
               after->Value(R"(runnel_function_duration_seconds_count{function="sleep",outcome="ok"})") ==
                   40 &&
               after->Value(R"(runnel_dispatcher_completed_events_total{function="sleep",outcome="error"})") +
                       after->Value(fmt::format("{}{}", "runnel_dispatcher_dead_letters_total", fn)) >=
                   2;
      },
      seconds(10), milliseconds(100)))
      << "the counters did not reach the 41 outcomes (40 ok, 1 dead letter)";
  EXPECT_EQ(after->Value(fmt::format("{}{}", "runnel_dispatcher_received_events_total", fn)), 41);
  EXPECT_EQ(after->Value(R"(runnel_dispatcher_completed_events_total{function="sleep",outcome="error"})"), 1);
  EXPECT_EQ(after->Value(fmt::format("{}{}", "runnel_dispatcher_dead_letters_total", fn)), 1);
  EXPECT_EQ(after->Value(R"(runnel_dispatcher_errors_total{function="sleep",kind="bad-input"})"), 1);
  EXPECT_GE(after->Value(fmt::format("{}{}", "runnel_usage_invocations_total", fn)), 41);
  EXPECT_GE(after->Value(fmt::format("{}{}", "runnel_usage_workers_started_total", fn)), 1);
  EXPECT_GT(after->Value(fmt::format("{}{}", "runnel_usage_worker_seconds_total", fn)), 0);
  EXPECT_GT(after->Value(fmt::format("{}{}", "runnel_usage_peak_memory_bytes", fn)), 1 << 20);
  EXPECT_GE(after->Value(fmt::format("{}{}", "runnel_autoscaler_workers_desired", fn)), 1);
  // Each ok attempt slept 5 ms: the histogram's sum says so.
  EXPECT_GE(after->Value(R"(runnel_function_duration_seconds_sum{function="sleep",outcome="ok"})"),
            40 * 0.005);
  bool worker_memory = false;
  for (const auto& [series, value] : after->samples) {
    if (series.starts_with("runnel_worker_resident_memory_bytes{")) worker_memory = value > (1 << 20);
  }
  EXPECT_TRUE(worker_memory) << "no worker with its resident memory";

  // Every family is documented with its type, and every documented family is served.
  const auto documented = DocumentedFamilies();
  ASSERT_GE(documented.size(), 20u) << "docs/metrics.md's table did not parse";
  std::set<std::string> served;
  for (const auto& [name, type] : after->types) {
    if (!name.starts_with("runnel_")) continue;
    served.insert(name);
    ASSERT_TRUE(documented.contains(name)) << name << " is served but not in docs/metrics.md";
    EXPECT_EQ(documented.at(name), type) << name;
    EXPECT_TRUE(type != "counter" || name.ends_with("_total")) << name << ": a counter must end in _total";
  }
  for (const auto& [name, type] : documented)
    EXPECT_TRUE(served.contains(name)) << name << " is documented, not served";
}

// What the compose stack relies on (deploy/docker-compose.yml): `--metrics` and `--output-dir` win
// over the config's keys, so any config mounted there is scraped and writes into the data volume.
// Here the config's `metrics` port is taken by this test: the stack only comes up if the flag wins.
TEST(Observability, MetricsAndOutputDirFlagsWinOverTheConfig) {
  const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  ASSERT_EQ(::getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const auto outputs =
      std::filesystem::temp_directory_path() / fmt::format("runnel-flag-outputs-{}", ::getpid());
  {
    StackProcess stack(fmt::format(R"(
metrics: 127.0.0.1:{}
output_dir: config-outputs
functions:
  - name: echo
)",
                                   ntohs(addr.sin_port)),
                       {}, {"--metrics", "127.0.0.1:0", "--output-dir", outputs.string()});
    EXPECT_EQ(stack.Endpoints().value("output_dir", ""), outputs.string());
    const std::string url = stack.Endpoints().value("metrics", "");
    ASSERT_THAT(url, StartsWith("http://127.0.0.1:"));
    EXPECT_NE(url, fmt::format("http://127.0.0.1:{}/metrics", ntohs(addr.sin_port)));
    const auto r = runnel::testing::HttpGet(url);
    ASSERT_TRUE(r);
    EXPECT_THAT(r->body, HasSubstr("runnel_build_info{"));
  }
  ::close(taken);
  std::filesystem::remove_all(outputs);
}

TEST(Observability, TraceShowsARetryThatSucceededAndADeadLetter) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 2
    results_topic: sleep.results
    retries: {max_attempts: 3, backoff: 50ms}
)");
  const auto ids =
      PublishEvents(stack.Kafka(), "sleep",
                    {{R"({"ms":1,"fail":"first try fails","fail_attempts":1})", std::string("k1")},
                     {R"({"fail":"fails every time"})", std::string("k2")}});
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", 2, seconds(60));
  ASSERT_EQ(outcomes.size(), 2u);
  std::map<std::string, Outcome> by_id;
  for (const auto& o : outcomes) by_id[o.id] = o;
  ASSERT_EQ(by_id.at(ids[0]).status, OutcomeStatus::kOk);
  ASSERT_EQ(by_id.at(ids[1]).status, OutcomeStatus::kDeadLetter);

  const auto retried = FinishedTrace(stack, ids[0]);
  ASSERT_TRUE(retried.is_object()) << "no trace of " << ids[0];
  ASSERT_EQ(retried["traces"].size(), 1u);
  const auto& r = retried["traces"][0];
  EXPECT_EQ(r.value("status", ""), "ok");
  EXPECT_EQ(r.value("function", ""), "sleep");
  EXPECT_EQ(r.value("topic", ""), "sleep");
  EXPECT_EQ(r.value("partition", -1), by_id.at(ids[0]).partition);
  EXPECT_EQ(r.value("offset", std::int64_t{-1}), by_id.at(ids[0]).offset);
  EXPECT_EQ(r.value("key", ""), "k1");
  EXPECT_EQ(r.value("retries", 0), 1);
  ASSERT_EQ(r["attempts"].size(), 2u);
  const auto& first = r["attempts"][0];
  EXPECT_EQ(first.value("attempt", 0), 1);
  EXPECT_EQ(first.value("result", ""), "error");
  EXPECT_EQ(first.value("error_kind", ""), "transient");
  EXPECT_EQ(first.value("error", ""), "first try fails");
  EXPECT_GT(first.value("retry_in_ms", -1), 0);
  EXPECT_THAT(first.value("worker", ""), StartsWith("sleep-"));
  const auto& second = r["attempts"][1];
  EXPECT_EQ(second.value("attempt", 0), 2);
  EXPECT_EQ(second.value("result", ""), "ok");
  EXPECT_GE(second.value("duration_ms", 0.0), 1.0);
  EXPECT_GE(second.value("start_ms", std::int64_t{0}), first.value("start_ms", std::int64_t{0}) + 40)
      << "the second attempt started before the backoff";
  EXPECT_FALSE(r.contains("dead_letter_topic"));

  const auto dead = FinishedTrace(stack, ids[1]);
  ASSERT_TRUE(dead.is_object()) << "no trace of " << ids[1];
  const auto& d = dead["traces"][0];
  EXPECT_EQ(d.value("status", ""), "dead-letter");
  EXPECT_EQ(d.value("dead_letter_topic", ""), "sleep.dlq");
  EXPECT_EQ(d.value("error_kind", ""), "transient");
  EXPECT_THAT(d.value("error", ""), HasSubstr("fails every time"));
  EXPECT_THAT(d.value("error", ""), HasSubstr("gave up after 3 attempts"));
  ASSERT_EQ(d["attempts"].size(), 3u);
  for (const auto& a : d["attempts"]) EXPECT_EQ(a.value("result", ""), "error");
  EXPECT_EQ(d.value("retries", 0), 2);

  // The text form says the same in words.
  const auto text =
      RunCommand({RunnelBin(), "trace", ids[1], "--state-dir", stack.StateDir().string()}, seconds(10));
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("dead-letter after 3 attempts, 2 retries"));
  EXPECT_THAT(text.out, HasSubstr("dead letter on sleep.dlq"));

  // An id the stack never saw: one line, exit 1.
  const auto unknown = RunCommand(
      {RunnelBin(), "trace", "01NOSUCHEVENT", "--state-dir", stack.StateDir().string()}, seconds(10));
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no trace of event '01NOSUCHEVENT'"));
  EXPECT_EQ(std::count(unknown.err.begin(), unknown.err.end(), '\n'), 1) << unknown.err;
}

TEST(Observability, TraceWithoutAStackSaysSoInOneLine) {
  const auto dir = TempDir("no-stack");
  const auto r = RunCommand({RunnelBin(), "trace", "01ANY", "--state-dir", dir.string()}, seconds(10));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.exit_code, 5);  // no stack running (cli/src/exit_codes.hpp)
  EXPECT_THAT(r.err, HasSubstr("no running Runnel stack"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// Every line an object with ts, level, logger, message; `event` on lines about one event.
void ExpectJsonLines(const std::string& text, const std::string& source, std::map<std::string, int>& events) {
  std::istringstream in(text);
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++lines;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << source << ": not a JSON object: " << line;
    for (const char* key : {"ts", "level", "logger", "message"}) {
      EXPECT_TRUE(j.contains(key) && j[key].is_string()) << source << ": no " << key << ": " << line;
    }
    if (j.contains("event")) {
      ++events[j["event"].get<std::string>()];
      // The dispatcher's lines say the id in words too (a function's own lines need not).
      if (j.value("logger", "") == "broker") {
        EXPECT_THAT(j.value("message", ""), HasSubstr(j["event"].get<std::string>()))
            << source << ": " << line;
      }
    } else if (j.value("logger", "") == "broker") {
      EXPECT_THAT(j.value("message", ""), Not(HasSubstr("event 01")))
          << source << ": a line about an event without its id";
    }
  }
  EXPECT_GT(lines, 0) << source << " has no log lines";
}

TEST(Observability, JsonLogsParseLineByLineWithTheEventId) {
  // The odd message travels into the dispatcher's error line: quotes, backslashes, control
  // characters, non-ASCII. (Bytes that are not UTF-8 cannot get here: the payload must parse as
  // JSON for the function to fail with it; the formatter replaces them, as JsonText does.)
  const std::string odd = "bad \"quoted\" \\ back\\slash \t tab \x01 ctl é ünïcödé\nnewline";
  nlohmann::json payload = {{"fail", odd}, {"permanent", true}};
  const std::string payload_text = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto stack = std::make_unique<StackProcess>(R"(
heartbeat: 200ms
functions:
  - name: sleep
    results_topic: sleep.results
)",
                                              std::map<std::string, std::string>{},
                                              std::vector<std::string>{"--log-format", "json"});
  const auto ids =
      PublishEvents(stack->Kafka(), "sleep", {{payload_text, std::nullopt}, {R"({"ms":1})", std::nullopt}});
  ASSERT_EQ(ReadOutcomes(stack->Kafka(), "sleep.results", 2, seconds(60)).size(), 2u);
  const auto state = stack->StateDir();
  std::string worker_logs;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(state / "logs")) {
    if (entry.is_regular_file()) {
      std::ifstream in(entry.path());
      worker_logs += std::string(std::istreambuf_iterator<char>(in), {});
    }
  }
  stack->Process().Signal(SIGINT);
  ASSERT_TRUE(stack->Process().Wait(seconds(30))) << "runnel up did not stop";
  std::map<std::string, int> events;
  ExpectJsonLines(stack->Process().Stderr(), "runnel up's stderr", events);
  ExpectJsonLines(worker_logs, "the worker's log", events);
  EXPECT_GE(events[ids[0]], 1) << "the failed event's line has no event id";
  // The stack's own start line is not about an event, and says where metrics are served.
  EXPECT_THAT(stack->Process().Stdout(), HasSubstr("metrics: http://127.0.0.1:"));
}

}  // namespace
}  // namespace runnel::testing
