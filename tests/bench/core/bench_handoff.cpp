// Several stacks per function (`scaling.shared`), against `runnel kafka` (a process of its own):
//  1. handoff after a SIGKILL: the killed stack's partitions owned by the survivor (status), from the
//     kill; the group's session.timeout.ms (6 s here) is the floor;
//  2. handoff after a graceful leave (SIGTERM, which drains): the same, from the signal;
//  3. events/s of one function served by one stack and by two (both on this machine's cores), with
//     the CPU seconds per event of every process (stacks, workers, broker) from /proc.
// Usage: bench_core_handoff [--quick]   (--quick: 2,000 events instead of 20,000, one trial)
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/test_kafka.hpp"
#include "runnel/testing/wait.hpp"

using namespace runnel;
using namespace runnel::testing;
using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

namespace {

constexpr int kPartitions = 6;

std::string Yaml(const TestKafka& kafka, const std::string& topic) {
  return fmt::format(R"(
kafka:
  bootstrap: "{}"
  options: {{session.timeout.ms: "6000", heartbeat.interval.ms: "500"}}
functions:
  - name: echo
    topic: {}
    results_topic: {}.results
    partitions: {}
    scaling: {{shared: true, min: 2, max: 2}}
)",
                     kafka.Bootstrap(), topic, topic, kPartitions);
}

std::size_t Owned(const StackProcess& s) {
  const auto f = s.FunctionStatus("echo");
  return f.contains("partitions_owned") && f["partitions_owned"].is_array() ? f["partitions_owned"].size()
                                                                            : 0;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU seconds (user + system) every process on the machine has used: the run's processes are the
// only busy ones, and children that exited are counted by their parents' cutime.
double MachineCpuSeconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  long long user = 0, nice = 0, system = 0;
  stat >> cpu >> user >> nice >> system;
  return static_cast<double>(user + nice + system) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::vector<std::pair<std::string, std::optional<std::string>>> Events(int from, int count) {
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (int i = from; i < from + count; ++i)
    out.emplace_back(fmt::format("event {}", i), fmt::format("k{}", i % 64));
  return out;
}

// Publishes `count` events, then waits until the group has committed all of them.
std::pair<double, double> Run(const TestKafka& kafka, const std::string& topic, int from, int count) {
  const auto events = Events(from, count);
  const double cpu0 = MachineCpuSeconds();
  const auto t0 = Clock::now();
  (void)PublishEvents(kafka.Kafka(), topic, events);
  if (!CommittedReachesEnd(kafka.Kafka(), topic, "runnel.echo", seconds(300))) {
    fmt::print(stderr, "the run did not finish within 300 s\n");
    std::exit(1);
  }
  const double s = Seconds(Clock::now() - t0);
  return {count / s, (MachineCpuSeconds() - cpu0) / count * 1e6};
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int events = quick ? 2000 : 20000;
  TestKafka kafka;
  const std::string topic = kafka.Topic("echo");
  const std::string yaml = Yaml(kafka, topic);

  {
    StackProcess one(yaml);
    WaitFor([&] { return Owned(one) == kPartitions; }, seconds(60));
    (void)Run(kafka, topic, 0, 200);  // warm: workers joined, metadata known
    const auto [rate, cpu_us] = Run(kafka, topic, 200, events);
    fmt::print("one stack:  {:8.0f} events/s, {:6.1f} us CPU per event (machine)\n", rate, cpu_us);

    auto two = std::make_unique<StackProcess>(yaml);
    if (!WaitFor([&] { return Owned(one) > 0 && Owned(*two) > 0 && Owned(one) + Owned(*two) == kPartitions; },
                 seconds(60))) {
      fmt::print(stderr, "the second stack got no partitions\n");
      return 1;
    }
    const auto [rate2, cpu2] = Run(kafka, topic, 200 + events, events);
    fmt::print("two stacks: {:8.0f} events/s, {:6.1f} us CPU per event (machine)\n", rate2, cpu2);

    const auto kill_at = Clock::now();
    two->Process().Signal(SIGKILL);
    (void)two->Process().Wait(seconds(10));
    two.reset();
    WaitFor([&] { return Owned(one) == kPartitions; }, seconds(120), std::chrono::milliseconds(50));
    fmt::print("handoff after SIGKILL:        {:5.2f} s (session.timeout.ms 6 s)\n",
               Seconds(Clock::now() - kill_at));

    StackProcess three(yaml);
    WaitFor([&] { return Owned(one) > 0 && Owned(three) > 0 && Owned(one) + Owned(three) == kPartitions; },
            seconds(60));
    const auto leave_at = Clock::now();
    three.Process().Signal(SIGTERM);
    WaitFor([&] { return Owned(one) == kPartitions; }, seconds(120), std::chrono::milliseconds(50));
    fmt::print("handoff after a graceful leave: {:5.2f} s (SIGTERM drains, then leaves the group)\n",
               Seconds(Clock::now() - leave_at));
    (void)three.Process().Wait(seconds(30));
  }
  return 0;
}
