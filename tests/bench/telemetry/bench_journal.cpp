// What the event journal (runnel up's traces, histograms and error counters) costs the dispatcher
// per event, in thread CPU time, against a baseline measured in the same run: the dispatcher's own
// unavoidable per-event work on the same records (decoding the envelope from the headers and
// encoding the outcome's meta JSON). The journal's share is reported as a ratio to that.
//
//   bench_telemetry_journal [--events N] [--quick]
//
// Per event the journal sees what an ok event with one attempt produces: Received, Dispatched,
// Answered, Finished; Flush runs every 512 events (the dispatcher flushes every 100 ms, i.e. every
// few thousand events at its measured rates, so this is the costlier side). The trace store's bound
// is the default (100,000), so most of the run also pays for eviction.
#include <fmt/format.h>
#include <prometheus/registry.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "runnel/core/envelope.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/telemetry/event_journal.hpp"

namespace {

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return fmt::format("{} {} {}", a, b, c);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t events = 1'000'000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) events = 100'000;
    if (std::strcmp(argv[i], "--events") == 0 && i + 1 < argc) events = std::strtoull(argv[++i], nullptr, 10);
  }
  // The records: what the dispatcher holds per event.
  std::vector<runnel::kafka::Message> records(4096);
  // A distinct id per event (as in real traffic), made before the clocks start.
  std::vector<std::string> ids(events);
  for (std::size_t i = 0; i < events; ++i) ids[i] = fmt::format("01BENCH{:019}", i);
  for (std::size_t i = 0; i < records.size(); ++i) {
    runnel::Envelope env;
    env.id = runnel::NewEventId();
    env.trace_id = runnel::NewTraceId();
    records[i].topic = "echo";
    records[i].partition = static_cast<std::int32_t>(i % 2);
    records[i].offset = static_cast<std::int64_t>(i);
    records[i].value = "0123456789abcdef";
    records[i].headers = env.Encode();
    records[i].timestamp_ms = 1'700'000'000'000;
  }
  runnel::Outcome ok;
  ok.function = "echo";
  ok.status = runnel::OutcomeStatus::kOk;
  ok.worker = "echo-1";
  ok.output = "0123456789abcdef";

  // Baseline: decode the envelope, encode the outcome meta (both happen for every event).
  std::size_t sink = 0;
  const double base_start = ThreadCpuSeconds();
  for (std::size_t i = 0; i < events; ++i) {
    const auto& r = records[i % records.size()];
    const auto env = runnel::Envelope::Decode(r.headers);
    runnel::Outcome o = ok;
    o.id = env.id;
    o.topic = r.topic;
    o.partition = r.partition;
    o.offset = r.offset;
    sink += o.MetaJson().size();
  }
  const double base_s = ThreadCpuSeconds() - base_start;

  auto registry = std::make_shared<prometheus::Registry>();
  auto store = std::make_shared<runnel::telemetry::TraceStore>();
  runnel::telemetry::EventJournal journal("echo", store,
                                          std::make_shared<runnel::telemetry::EventMetrics>(registry));
  const double journal_start = ThreadCpuSeconds();
  for (std::size_t i = 0; i < events; ++i) {
    const auto& r = records[i % records.size()];
    journal.Received(i, ids[i], r);
    journal.Dispatched(i, 1, "echo-1");
    journal.Answered(i, "echo-1", 120, true, "", "");
    journal.Finished(i, ok, "");
    if (i % 512 == 511) journal.Flush();
  }
  journal.Flush();
  const double journal_s = ThreadCpuSeconds() - journal_start;

  const double base_ns = base_s * 1e9 / static_cast<double>(events);
  const double journal_ns = journal_s * 1e9 / static_cast<double>(events);
  fmt::print("events {}  load average {}  (sink {})\n", events, LoadAverage(), sink % 10);
  fmt::print("baseline (envelope decode + outcome meta): {:8.0f} ns CPU/event\n", base_ns);
  fmt::print("event journal (4 hooks + flush share):      {:8.0f} ns CPU/event\n", journal_ns);
  fmt::print("ratio journal / baseline: {:.2f}; traces kept {}\n", journal_ns / base_ns, store->Size());
  return 0;
}
