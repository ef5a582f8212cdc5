// iot.ingest end to end through a real stack with a burst of readings, one event per call against
// runnel.yaml's `batch: {size: 100}`, in the same run on the same machine.
//
// Per round, on a fresh `runnel up` (embedded broker, iot.ingest with the round's batch, no workers
// of its own) and one `runnel worker` (default capacity, default concurrency 8):
//   1. warm-up readings until the worker answers on the results feed, then wait for their commit;
//   2. freeze the worker, preload N readings (one JSON reading per event, no key, round-robin over
//      the partitions; the dispatcher reads them while the worker cannot take them);
//   3. thaw the worker and time until every event's outcome is on the feed (or, if the feed
//      dropped some, until the committed offsets reach the end), with the CPU time of `runnel up`
//      and the worker over that span.
// Rounds alternate (1, 100, 1, 100, ...) so both sizes see the same load; the summary takes each
// size's median.
//
//   build/tests/bench/core/bench_core_batch [--quick] [--events N] [--repeat R] [--batches 1,100]
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "bench_stack.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/producer.hpp"

namespace runnel::bench {
namespace {

constexpr const char* kFunction = "iot.ingest";
constexpr int kPartitions = 2;

struct Args {
  bool quick = false;
  std::int64_t events = 40'000;
  int repeat = 2;
  std::vector<int> batches = {1, 100};
};

Args Parse(int argc, char** argv) {
  Args a;
  bool events_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--quick") {
      a.quick = true;
    } else if (arg == "--events") {
      a.events = std::stoll(value());
      events_given = true;
    } else if (arg == "--repeat") {
      a.repeat = std::max(1, std::stoi(value()));
    } else if (arg == "--batches") {
      a.batches.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');) a.batches.push_back(std::stoi(item));
    } else {
      throw std::runtime_error(
          "usage: bench_core_batch [--quick] [--events N] [--repeat R] [--batches 1,100]");
    }
  }
  if (a.quick && !events_given) a.events = 8'000;
  a.events -= a.events % kPartitions;
  if (a.events < kPartitions) throw std::runtime_error("need at least one event per partition");
  return a;
}

std::string Yaml(int batch) {
  return fmt::format(
      "heartbeat: 30s\n"
      "functions:\n"
      "  - name: {}\n"
      "    partitions: {}\n"
      "    workers: 0\n"
      "    params: {{window_ms: 600000, max_lateness_ms: 3600000}}\n"
      "    batch: {{size: {}, window: 50ms}}\n",
      kFunction, kPartitions, batch);
}

std::string Reading(std::int64_t i, std::int64_t now_ms) {
  return fmt::format(R"({{"device":"dev-{}","ts":{},"metrics":{{"temp":{},"hum":{}}}}})", i % 50, now_ms,
                     18 + i % 9, 40 + i % 13);
}

struct Round {
  int batch = 1;
  std::int64_t events = 0;
  std::int64_t seen = 0;
  std::int64_t not_ok = 0;
  double end_s = 0;  // thaw -> every outcome on the feed (commit time when the feed dropped some)
  double cpu_s = 0;  // runnel up + the worker over that span
  std::string load;
  double Rate() const { return end_s > 0 ? static_cast<double>(events) / end_s : 0; }
  double CpuUs() const { return 1e6 * cpu_s / static_cast<double>(events); }
};

Round RunRound(const Args& a, int batch, zmq::context_t& ctx) {
  Round r;
  r.batch = batch;
  r.events = a.events;
  Stack stack(fmt::format("bench-batch-{}", batch), Yaml(batch));
  const auto kafka = stack.Kafka();
  kafka::Admin admin(kafka);
  const std::string group = std::string("runnel.") + kFunction;
  Feed feed(ctx, stack, std::string(kFunction) + "/");
  FeedOutcome outcome;
  WorkerProcess worker(stack, kFunction, "bench-0");
  const auto now_ms = [] {
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  {
    kafka::Producer producer(kafka,
                             kafka::Producer::Options{"all", milliseconds(0), milliseconds(10'000), nullptr});
    bool answered = false;
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (!answered && Clock::now() < until) {
      producer.Produce({kFunction, kafka::kAnyPartition, std::nullopt, Reading(0, now_ms()), {}},
                       [](const kafka::Delivery&) {});
      const auto round_until = Clock::now() + milliseconds(200);
      while (!answered && Clock::now() < round_until) answered = feed.Next(outcome, milliseconds(20));
    }
    if (!answered)
      throw std::runtime_error("the worker answered no warm-up reading in 60 s:\n" + stack.Stderr());
  }
  auto all_committed = [&] { return AllCommitted(admin, kFunction, group); };
  if (!testing::WaitFor(all_committed, std::chrono::seconds(10), milliseconds(20))) {
    throw std::runtime_error("warm-up readings were not committed within 10 s");
  }
  while (feed.Next(outcome, milliseconds(100))) {
  }

  worker.Freeze();
  const auto ts = now_ms();
  Preload(kafka, a.events, [&](std::int64_t i) {
    return kafka::Record{
        kFunction, static_cast<std::int32_t>(i % kPartitions), std::nullopt, Reading(i, ts), {}};
  });

  const double cpu_before = CpuSeconds(stack.Pid()) + CpuSeconds(worker.Pid());
  const auto t0 = Clock::now();
  worker.Thaw();
  std::optional<Clock::time_point> last, committed;
  const auto give_up = t0 + std::chrono::seconds(300);
  auto next_commit_check = t0 + milliseconds(100);
  while (Clock::now() < give_up) {
    if (r.seen < a.events && feed.Next(outcome, milliseconds(20))) {
      ++r.seen;
      if (outcome.meta.find(R"("status":"ok")") == std::string_view::npos) ++r.not_ok;
      last = Clock::now();
      if (r.seen == a.events) break;
      continue;
    }
    if (Clock::now() < next_commit_check) continue;
    if (all_committed()) {
      committed = Clock::now();
      break;
    }
    next_commit_check = Clock::now() + milliseconds(100);
  }
  if (r.seen < a.events && !committed) {
    throw std::runtime_error(
        fmt::format("{} of {} outcomes in 300 s and not all committed", r.seen, a.events));
  }
  r.cpu_s = CpuSeconds(stack.Pid()) + CpuSeconds(worker.Pid()) - cpu_before;
  r.end_s = Seconds((r.seen == a.events ? *last : *committed) - t0);
  r.load = LoadAverage();
  worker.Stop();
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
}

}  // namespace
}  // namespace runnel::bench

int main(int argc, char** argv) {
  using namespace runnel::bench;
  try {
    const Args a = Parse(argc, argv);
    std::printf(
        "iot.ingest batches end to end: %lld readings (one per event, no key) per round, %d partitions, "
        "embedded broker, `runnel up` + one `runnel worker` (concurrency 8), batch window 50 ms%s\n",
        static_cast<long long>(a.events), kPartitions, a.quick ? " [--quick]" : "");
    std::printf("machine: %s\n\n", MachineLine().c_str());
    std::fflush(stdout);
    zmq::context_t ctx(1);
    std::map<int, std::vector<Round>> rounds;
    for (int rep = 0; rep < a.repeat; ++rep) {
      for (int batch : a.batches) {
        const Round r = RunRound(a, batch, ctx);
        std::printf(
            "batch %4d: %8.0f events/s (%.3f s), CPU %.2f us/event (stack + worker), %lld/%lld outcomes "
            "on the feed, %lld not ok; load %s\n",
            r.batch, r.Rate(), r.end_s, r.CpuUs(), static_cast<long long>(r.seen),
            static_cast<long long>(r.events), static_cast<long long>(r.not_ok), r.load.c_str());
        std::fflush(stdout);
        rounds[batch].push_back(r);
      }
    }
    std::printf("\nsummary (medians of %d round(s) each)\n%-6s %12s %14s %12s %12s\n", a.repeat, "batch",
                "events/s", "CPU us/event", "rate ratio", "CPU ratio");
    const auto& base = rounds.at(a.batches.front());
    std::vector<double> base_rate, base_cpu;
    for (const auto& r : base) {
      base_rate.push_back(r.Rate());
      base_cpu.push_back(r.CpuUs());
    }
    for (int batch : a.batches) {
      std::vector<double> rate, cpu;
      for (const auto& r : rounds.at(batch)) {
        rate.push_back(r.Rate());
        cpu.push_back(r.CpuUs());
      }
      std::printf("%-6d %12.0f %14.2f %12.2f %12.2f\n", batch, Median(rate), Median(cpu),
                  Median(rate) / Median(base_rate), Median(cpu) / Median(base_cpu));
    }
    std::printf("(ratios against batch %d, measured in the same run)\n", a.batches.front());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_core_batch: %s\n", e.what());
    return 1;
  }
}
