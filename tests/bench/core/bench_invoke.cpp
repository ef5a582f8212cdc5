// `runnel invoke` on a warm stack, the whole CLI process: wall time from exec to exit, per call.
//
// `runnel up` (embedded broker, function echo, one worker started by the stack itself) runs as a
// child; after a few warm-up calls, each of --calls calls runs `runnel invoke echo --data ...` as
// its own process, one at a time. The baseline in the same run is `runnel status --json`, a CLI
// process that asks the same stack one question over its control socket: process start, config
// and keys, one round trip. What invoke costs beyond it is the Kafka producer, the results feed
// and the event's way through the stack.
//
//   build/tests/bench/core/bench_core_invoke [--calls N]
#include "bench_stack.hpp"

namespace runnel::bench {
namespace {

struct Figures {
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
  int over_500ms = 0;
};

Figures Summarize(std::vector<double> v) {
  Figures f;
  std::sort(v.begin(), v.end());
  f.p50 = Percentile(v, 50);
  f.p95 = Percentile(v, 95);
  f.p99 = Percentile(v, 99);
  f.max = v.back();
  f.over_500ms = static_cast<int>(std::count_if(v.begin(), v.end(), [](double ms) { return ms > 500; }));
  return f;
}

// Wall milliseconds of one CLI process; throws when it fails.
double TimeCommand(const std::vector<std::string>& argv, const std::string& expect_out) {
  const auto t0 = Clock::now();
  const auto r = testing::RunCommand(argv, std::chrono::seconds(30));
  const double ms = Millis(Clock::now() - t0);
  if (r.exit_code != 0 || (!expect_out.empty() && r.out != expect_out)) {
    throw std::runtime_error(
        fmt::format("{} {}: exit {}, out '{}', err {}", argv[0], argv[1], r.exit_code, r.out, r.err));
  }
  return ms;
}

}  // namespace
}  // namespace runnel::bench

int main(int argc, char** argv) {
  using namespace runnel;
  using namespace runnel::bench;
  try {
    int calls = 200;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--calls" && i + 1 < argc) {
        calls = std::stoi(argv[++i]);
      } else {
        throw std::runtime_error("usage: bench_core_invoke [--calls N]");
      }
    }
    if (calls < 1) throw std::runtime_error("--calls must be at least 1");
    Stack stack("bench-invoke", "functions:\n  - name: echo\n    partitions: 2\n    workers: 1\n");
    const std::string state = stack.StatePath().string();
    const auto invoke = [&](int i) {
      const std::string data = fmt::format("call-{}", i);
      return TimeCommand({testing::RunnelBin(), "invoke", "echo", "--data", data, "--state-dir", state},
                         data);
    };
    for (int i = 0; i < 5; ++i) invoke(-1 - i);  // the worker joined, every connection warm
    std::vector<double> invokes, statuses;
    for (int i = 0; i < calls; ++i) {
      invokes.push_back(invoke(i));
      statuses.push_back(TimeCommand({testing::RunnelBin(), "status", "--json", "--state-dir", state}, ""));
    }
    const Figures inv = Summarize(invokes);
    const Figures st = Summarize(statuses);
    std::printf("runnel invoke on a warm stack, %d calls, whole CLI process (ms):\n", calls);
    std::printf("  %-22s p50 %7.1f  p95 %7.1f  p99 %7.1f  max %7.1f  over 500 ms: %d\n", "invoke echo",
                inv.p50, inv.p95, inv.p99, inv.max, inv.over_500ms);
    std::printf("  %-22s p50 %7.1f  p95 %7.1f  p99 %7.1f  max %7.1f  over 500 ms: %d\n", "status (baseline)",
                st.p50, st.p95, st.p99, st.max, st.over_500ms);
    std::printf("  invoke p50 / status p50: %.2f\n", inv.p50 / st.p50);
    std::printf("target invoke p99 < 100 ms: %s\n", inv.p99 < 100 ? "met" : "NOT met");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_core_invoke: %s\n", e.what());
    return 1;
  }
}
