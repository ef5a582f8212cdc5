// iot.ingest lines/s against raw simdjson parses of the same NDJSON events. Target: ratio >= 0.8.
//
// Baselines, all over the same padded payloads, one event at a time:
// - On-Demand iterate_many reading every field of every reading into plain values (device string,
//   timestamp, each metric's name and number) and summing them: the target's baseline. It is the
//   parse iot.ingest itself runs (same API, same simdjson kernels) and yields every value ingest
//   needs, so the ratio measures what ingest adds: validation, interning, analysis, the result.
// - DOM parse_many, reading the same fields from the tape: a full parse (stage 1 + stage 2 building
//   the tape), for reference.
// - On-Demand, one iterate() per line, reading every field (what ingest does for irregular events).
// - On-Demand iterate_many that only counts the documents: stage 1 (structural indexing) without
//   reading a value. Not a parse; printed to show how much of a parse stage 1 is.
// Every baseline's sum is printed, and the full parses must agree, so none can be optimised away.
//
//   bench_iot_ingest [--quick] [--lines N] [--devices N] [--event-lines N] [--batch N] [--reps N]
//                    [--ingest-only]   (skips the raw parses, for profiling)
#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/logger.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iot/ingest.hpp"
#include "runnel/functions/function.hpp"

namespace {

using runnel::functions::Context;
using runnel::functions::Event;
using runnel::functions::OutputStore;
using runnel::functions::ResultOrError;
namespace od = simdjson::ondemand;

constexpr std::int64_t kStartMs = 1'700'000'000'000;

// Time this thread spent on a CPU: unlike wall time it does not count the time other processes
// held the CPU, so shared machines give stable ratios. Wall time is reported too.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Timer {
  std::chrono::steady_clock::time_point wall_start = std::chrono::steady_clock::now();
  double cpu_start = ThreadCpuSeconds();
  double Wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  }
  double Cpu() const { return ThreadCpuSeconds() - cpu_start; }
};

class BenchContext final : public Context {
 public:
  BenchContext() : logger_("bench"), outputs_(std::filesystem::temp_directory_path()) {}
  const nlohmann::json& Params() const override { return params_; }
  std::chrono::steady_clock::time_point Deadline() const override {
    return std::chrono::steady_clock::time_point::max();
  }
  spdlog::logger& Log() override { return logger_; }
  OutputStore& Outputs() override { return outputs_; }
  void Emit(std::string_view, std::string_view, std::string, runnel::Headers) override {}

 private:
  nlohmann::json params_ = nlohmann::json::object();
  spdlog::logger logger_;
  OutputStore outputs_;
};

struct Options {
  std::size_t lines = 1'000'000;
  std::size_t devices = 1000;
  std::size_t event_lines = 1000;
  std::size_t batch = 100;
  int reps = 5;
  bool ingest_only = false;  // for profiling: skip the raw parses
};

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto next = [&]() -> std::size_t {
      if (i + 1 >= argc) {
        fmt::print(stderr, "{} needs a value\n", arg);
        std::exit(2);
      }
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (arg == "--quick") {
      o.lines = 100'000;
      o.reps = 3;
    } else if (arg == "--lines") {
      o.lines = next();
    } else if (arg == "--devices") {
      o.devices = next();
    } else if (arg == "--event-lines") {
      o.event_lines = next();
    } else if (arg == "--batch") {
      o.batch = next();
    } else if (arg == "--ingest-only") {
      o.ingest_only = true;
    } else if (arg == "--reps") {
      o.reps = static_cast<int>(next());
    } else {
      fmt::print(stderr,
                 "usage: bench_iot_ingest [--quick] [--lines N] [--devices N] [--event-lines N] [--batch N] "
                 "[--reps N] [--ingest-only]\n");
      std::exit(2);
    }
  }
  return o;
}

// NDJSON events: `devices` sensors each reporting about once a second (one line per ms overall),
// three metrics (two numbers and a bool), nested form.
std::vector<Event> MakeEvents(const Options& o) {
  std::mt19937 rng(20240501);
  std::normal_distribution<double> temp(21.0, 2.0);
  std::normal_distribution<double> hum(45.0, 5.0);
  std::vector<Event> events;
  std::string payload;
  for (std::size_t i = 0; i < o.lines; ++i) {
    fmt::format_to(
        std::back_inserter(payload),
        "{{\"device\":\"dev-{:05}\",\"ts\":{},\"metrics\":{{\"temp\":{:.2f},\"hum\":{:.1f},\"door\":{}}}}}\n",
        rng() % o.devices, kStartMs + static_cast<std::int64_t>(i), temp(rng), hum(rng),
        rng() % 10 == 0 ? "true" : "false");
    if ((i + 1) % o.event_lines == 0 || i + 1 == o.lines) {
      Event event;
      event.envelope.id = fmt::format("ev-{}", events.size());
      event.envelope.content_type = "application/x-ndjson";
      event.payload = std::move(payload);
      payload.clear();
      events.push_back(std::move(event));
    }
  }
  return events;
}

// Reads every field of every reading, as any consumer of the data must.
double ReadReading(od::object object) {
  double sum = 0;
  for (auto field : object) {
    std::string_view key = field.unescaped_key();
    od::value value = field.value();
    if (key == "device") {
      sum += static_cast<double>(std::string_view(value.get_string()).size());
    } else if (key == "ts") {
      sum += static_cast<double>(std::int64_t(value.get_int64()) & 0xff);
    } else if (key == "metrics") {
      for (auto metric : value.get_object()) {
        sum += static_cast<double>(std::string_view(metric.unescaped_key()).size());
        od::value v = metric.value();
        sum += v.type() == od::json_type::boolean ? (bool(v.get_bool()) ? 1.0 : 0.0) : double(v.get_double());
      }
    }
  }
  return sum;
}

struct RawResult {
  double seconds;
  double cpu_seconds;
  std::size_t docs;
  double checksum;
};

// simdjson's NDJSON stream API over each event.
RawResult RawIterateMany(const std::vector<simdjson::padded_string>& payloads) {
  od::parser parser;
  RawResult r{0, 0, 0, 0};
  const Timer timer;
  for (const auto& payload : payloads) {
    od::document_stream stream = parser.iterate_many(payload).value();
    for (auto doc : stream) {
      r.checksum += ReadReading(doc.get_object());
      ++r.docs;
    }
  }
  r.seconds = timer.Wall();
  r.cpu_seconds = timer.Cpu();
  return r;
}

// One iterate() per line, as iot.ingest does (so one bad line cannot hide the next).
RawResult RawPerLine(const std::vector<simdjson::padded_string>& payloads) {
  od::parser parser;
  RawResult r{0, 0, 0, 0};
  const Timer timer;
  for (const auto& payload : payloads) {
    const char* p = payload.data();
    const char* const end = p + payload.size();
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (nl == nullptr) nl = end;
      const auto length = static_cast<std::size_t>(nl - p);
      const auto capacity = static_cast<std::size_t>(end - p) + simdjson::SIMDJSON_PADDING;
      od::document doc = parser.iterate(simdjson::padded_string_view(p, length, capacity));
      r.checksum += ReadReading(doc.get_object());
      ++r.docs;
      p = nl + 1;
    }
  }
  r.seconds = timer.Wall();
  r.cpu_seconds = timer.Cpu();
  return r;
}

// The same fields read from a DOM element, so its sum equals ReadReading's.
double ReadDomReading(simdjson::dom::object object) {
  double sum = 0;
  for (auto [key, value] : object) {
    if (key == "device") {
      sum += static_cast<double>(std::string_view(value.get_string()).size());
    } else if (key == "ts") {
      sum += static_cast<double>(std::int64_t(value.get_int64()) & 0xff);
    } else if (key == "metrics") {
      for (auto [name, v] : simdjson::dom::object(value.get_object())) {
        sum += static_cast<double>(name.size());
        sum += v.is_bool() ? (bool(v.get_bool()) ? 1.0 : 0.0) : double(v.get_double());
      }
    }
  }
  return sum;
}

// simdjson's DOM NDJSON stream over each event: stage 1 and the full stage 2 (the tape).
RawResult RawDomParseMany(const std::vector<simdjson::padded_string>& payloads) {
  simdjson::dom::parser parser;
  RawResult r{0, 0, 0, 0};
  const Timer timer;
  for (const auto& payload : payloads) {
    simdjson::dom::document_stream stream = parser.parse_many(payload).value();
    for (auto doc : stream) {
      r.checksum += ReadDomReading(doc.get_object());
      ++r.docs;
    }
  }
  r.seconds = timer.Wall();
  r.cpu_seconds = timer.Cpu();
  return r;
}

// On-Demand iterate_many touching no value: stage 1 runs over the event, every document is skipped.
RawResult RawStage1Only(const std::vector<simdjson::padded_string>& payloads) {
  od::parser parser;
  RawResult r{0, 0, 0, 0};
  const Timer timer;
  for (const auto& payload : payloads) {
    od::document_stream stream = parser.iterate_many(payload).value();
    for (auto doc : stream) {
      r.checksum += doc.error() == simdjson::SUCCESS ? 1.0 : 0.0;
      ++r.docs;
    }
  }
  r.seconds = timer.Wall();
  r.cpu_seconds = timer.Cpu();
  return r;
}

struct IngestResult {
  double seconds;
  double cpu_seconds;
  std::size_t output_bytes;
  std::size_t failed;
};

IngestResult Ingest(runnel::functions::Function& function, const std::vector<Event>& events,
                    std::size_t batch) {
  BenchContext ctx;
  IngestResult r{0, 0, 0, 0};
  const Timer timer;
  for (std::size_t i = 0; i < events.size(); i += batch) {
    const std::size_t n = std::min(batch, events.size() - i);
    for (const ResultOrError& outcome :
         function.HandleBatch(std::span<const Event>(events.data() + i, n), ctx)) {
      if (outcome.result) {
        r.output_bytes += outcome.result->output.size();
      } else {
        ++r.failed;
      }
    }
  }
  r.seconds = timer.Wall();
  r.cpu_seconds = timer.Cpu();
  return r;
}

}  // namespace

// NOLINTNEXTLINE(bugprone-exception-escape): a bench that throws is meant to abort with the error
int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  const std::vector<Event> events = MakeEvents(o);
  std::vector<simdjson::padded_string> padded;
  std::size_t bytes = 0;
  for (const Event& event : events) {
    padded.emplace_back(event.payload);
    bytes += event.payload.size();
  }
  const nlohmann::json params = {
      {"thresholds", {{"temp", {{"above", 27.0}, {"below", 15.0}}}}},
      {"schema",
       {{"metrics",
         {{"temp", {{"type", "number"}, {"min", -50}, {"max", 150}}}, {"door", {{"type", "bool"}}}}}}}};
  const std::int64_t now = kStartMs + static_cast<std::int64_t>(o.lines);
  auto function = runnel::functions::iot::MakeIngestFunction(params, [now] { return now; });

  fmt::print(
      "iot.ingest benchmark: {} lines in {} events of {} lines, {} devices, 3 metrics, {:.1f} MB, "
      "batches of {} events; simdjson {}.{}.{} (built-in kernel: {}, runtime DOM kernel: {})\n",
      o.lines, events.size(), o.event_lines, o.devices, static_cast<double>(bytes) / 1e6, o.batch,
      simdjson::SIMDJSON_VERSION_MAJOR, simdjson::SIMDJSON_VERSION_MINOR, simdjson::SIMDJSON_VERSION_REVISION,
      simdjson::builtin_implementation()->name(), simdjson::get_active_implementation()->name());

  struct Best {
    double wall = 1e9;
    double cpu = 1e9;
    double checksum = 0;
    void Add(const RawResult& r) {
      wall = std::min(wall, r.seconds);
      cpu = std::min(cpu, r.cpu_seconds);
      checksum = r.checksum;
    }
  };
  struct Baseline {
    std::string_view name;
    RawResult (*run)(const std::vector<simdjson::padded_string>&);
    Best best;
  };
  // The first is the target's baseline (see the top of this file).
  std::vector<Baseline> baselines = {
      {"On-Demand iterate_many, all fields", RawIterateMany, {}},
      {"DOM parse_many, all fields", RawDomParseMany, {}},
      {"On-Demand per line, all fields", RawPerLine, {}},
      {"On-Demand iterate_many, stage 1 only", RawStage1Only, {}},
  };
  Best ingest_best;
  IngestResult last{};
  for (int rep = 0; rep < o.reps; ++rep) {
    for (Baseline& baseline : o.ingest_only ? std::span<Baseline>() : std::span<Baseline>(baselines)) {
      const RawResult r = baseline.run(padded);
      if (r.docs != o.lines) {
        fmt::print(stderr, "mismatch: {} saw {} documents of {}\n", baseline.name, r.docs, o.lines);
        return 1;
      }
      baseline.best.Add(r);
    }
    last = Ingest(*function, events, o.batch);
    if (last.failed != 0) {
      fmt::print(stderr, "mismatch: ingest failed {} events\n", last.failed);
      return 1;
    }
    ingest_best.Add(RawResult{last.seconds, last.cpu_seconds, o.lines, 0});
  }
  const auto rate = [&](double seconds) { return static_cast<double>(o.lines) / seconds; };
  const auto row = [&](std::string_view name, const Best& b) {
    fmt::print("  {:<38}: {:>11.0f} lines/s ({:>6.1f} MB/s) by CPU time; {:>11.0f} lines/s by wall time\n",
               name, rate(b.cpu), static_cast<double>(bytes) / b.cpu / 1e6, rate(b.wall));
  };
  fmt::print("best of {} runs:\n", o.reps);
  row("iot.ingest (HandleBatch)", ingest_best);
  fmt::print("  ({:.1f} MB of results per run)\n", static_cast<double>(last.output_bytes) / 1e6);
  if (o.ingest_only) return 0;
  for (const Baseline& baseline : baselines) row(baseline.name, baseline.best);
  // The three full parses read the same values: their sums must agree.
  for (std::size_t i = 1; i < 3; ++i) {
    if (std::abs(baselines[i].best.checksum - baselines[0].best.checksum) >
        1e-9 * std::abs(baselines[0].best.checksum)) {
      fmt::print(stderr, "mismatch: {} sums to {}, {} to {}\n", baselines[i].name, baselines[i].best.checksum,
                 baselines[0].name, baselines[0].best.checksum);
      return 1;
    }
  }
  fmt::print("sums: full parses {:.6e} each, stage 1 only {:.0f} documents\n", baselines[0].best.checksum,
             baselines[3].best.checksum);
  fmt::print("ratio iot.ingest / baseline (CPU time; wall time in brackets):\n");
  for (const Baseline& baseline : baselines) {
    fmt::print("  / {:<38} = {:.2f} ({:.2f})\n", baseline.name, baseline.best.cpu / ingest_best.cpu,
               baseline.best.wall / ingest_best.wall);
  }
  const double ratio = baselines[0].best.cpu / ingest_best.cpu;
  fmt::print("target ratio >= 0.80 against {} by CPU time: {}\n", baselines[0].name,
             ratio >= 0.8 ? "met" : "NOT met");
  return 0;
}
