// iot.ingest lines/s against a raw simdjson parse of the same NDJSON events (every field read).
// The raw parse is the ceiling: iot.ingest parses the same way, then validates, aggregates,
// checks thresholds and anomalies and renders its result. Target: ratio >= 0.8.
//
//   bench_iot_ingest [--quick] [--lines N] [--devices N] [--event-lines N] [--batch N] [--reps N]
//                    [--ingest-only]   (skips the raw parses, for profiling)
#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/logger.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "iot/ingest.hpp"
#include "runnel/functions/function.hpp"

namespace {

using runnel::functions::Context;
using runnel::functions::Event;
using runnel::functions::Outcome;
using runnel::functions::OutputStore;
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
    for (const Outcome& outcome : function.HandleBatch(std::span<const Event>(events.data() + i, n), ctx)) {
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
    void Add(double w, double c) {
      wall = std::min(wall, w);
      cpu = std::min(cpu, c);
    }
  } many_best, line_best, ingest_best;
  IngestResult last{};
  for (int rep = 0; rep < o.reps; ++rep) {
    const RawResult many = o.ingest_only ? RawResult{1, 1, o.lines, 0} : RawIterateMany(padded);
    const RawResult line = o.ingest_only ? RawResult{1, 1, o.lines, 0} : RawPerLine(padded);
    last = Ingest(*function, events, o.batch);
    if (many.docs != o.lines || line.docs != o.lines || last.failed != 0) {
      fmt::print(stderr, "mismatch: iterate_many {} docs, per-line {} docs, ingest {} failed events\n",
                 many.docs, line.docs, last.failed);
      return 1;
    }
    many_best.Add(many.seconds, many.cpu_seconds);
    line_best.Add(line.seconds, line.cpu_seconds);
    ingest_best.Add(last.seconds, last.cpu_seconds);
  }
  const auto rate = [&](double seconds) { return static_cast<double>(o.lines) / seconds; };
  const auto row = [&](std::string_view name, const Best& b) {
    fmt::print("  {:<27}: {:>11.0f} lines/s ({:>6.1f} MB/s) by CPU time; {:>11.0f} lines/s by wall time\n",
               name, rate(b.cpu), static_cast<double>(bytes) / b.cpu / 1e6, rate(b.wall));
  };
  fmt::print("best of {} runs:\n", o.reps);
  row("raw simdjson iterate_many", many_best);
  row("raw simdjson per line", line_best);
  row("iot.ingest (HandleBatch)", ingest_best);
  fmt::print("  ({:.1f} MB of results per run)\n", static_cast<double>(last.output_bytes) / 1e6);
  const double ratio = many_best.cpu / ingest_best.cpu;
  fmt::print(
      "ratio iot.ingest / raw iterate_many = {:.2f} (CPU), {:.2f} (wall); / raw per line = {:.2f} (CPU)\n",
      ratio, many_best.wall / ingest_best.wall, line_best.cpu / ingest_best.cpu);
  fmt::print("target ratio >= 0.80 against iterate_many by CPU time: {}\n", ratio >= 0.8 ? "met" : "NOT met");
  return 0;
}
