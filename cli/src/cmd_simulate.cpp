// `runnel simulate`: publishes readings from N simulated IoT devices to a function of the running
// stack (iot.ingest by default) at one or more rates, and prints once a second what was sent and
// what the stack's autoscaler is doing about it, so the workers can be watched following the rate.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "control_request.hpp"
#include "flag_checks.hpp"
#include "kafka_client.hpp"
#include "runnel/core/error.hpp"
#include "sensor_simulator.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

// "iot.ingest: lag 120, workers 3 running of 3 desired" from the stack's status, or why not.
std::string StatusLine(const StackClient& stack, const std::string& function) {
  try {
    const auto status = QueryStatus(stack.Access(), std::chrono::milliseconds(500));
    for (const auto& f : status.at("functions")) {
      if (f.value("name", "") != function) continue;
      return fmt::format("lag {:>6}  in {:>7.0f}/s  done {:>7.0f}/s  workers {} running, {} desired",
                         f.value("lag", 0), f.value("arrival_per_s", 0.0), f.value("completion_per_s", 0.0),
                         f.value("running", 0), f.value("desired", 0));
    }
    return "(the stack reports no status for " + function + ")";
  } catch (const Error& e) {
    return fmt::format("(no status: {})", e.what());
  }
}

}  // namespace

Command AddSimulate(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string function = "iot.ingest";
    int devices = 20;
    std::vector<double> rates{200};
    double duration = 10;
    std::uint64_t seed = 1;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "simulate",
      "Publish readings from simulated IoT devices to the running stack at given rates; show the scaling");
  sub->add_option("--function", flags->function, "The function fed (its topic)")->capture_default_str();
  sub->add_option("--devices", flags->devices, "Simulated devices (each reading is keyed by its device)")
      ->check(WholeNumber(1, 100000))
      ->capture_default_str();
  sub->add_option("--rate", flags->rates,
                  "Readings per second in all; a comma-separated list runs each rate for --duration in turn "
                  "(e.g. 200,3000,0)")
      ->delimiter(',')
      ->check(Number(0, 1e6))
      ->capture_default_str();
  sub->add_option("--duration", flags->duration, "How long each rate runs (default 10s)")
      ->transform(DurationSeconds())
      ->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--seed", flags->seed, "Seed of the simulated values")
      ->check(WholeNumber(0))
      ->capture_default_str();
  AddKafkaClientFlags(sub, common);
  return {sub, [flags, &common] {
            const StackClient stack(StackAccess::Resolve(common));
            const std::string topic = stack.Function(flags->function).topic;
            SensorSimulator simulator(flags->devices, flags->seed);
            auto producer = stack.Producer({topic});
            fmt::print("{} device(s) -> {} (topic {}): {} reading(s)/s, {} s each\n", flags->devices,
                       flags->function, topic, fmt::join(flags->rates, ", "), flags->duration);
            std::fflush(stdout);
            PublishReport total;
            int offset = 0;
            const auto started = std::chrono::steady_clock::now();
            for (const double rate : flags->rates) {
              const auto duration = std::chrono::milliseconds(std::llround(flags->duration * 1000));
              const auto report = PublishAtRate(
                  *producer, topic, simulator, rate, duration, [&](int second, std::int64_t sent) {
                    fmt::print("{:>4} s  rate {:>6}/s  sent {:>8}   {}\n", offset + second, rate,
                               total.sent + sent, StatusLine(stack, flags->function));
                    std::fflush(stdout);
                  });
              total.sent += report.sent;
              total.failed += report.failed;
              offset += static_cast<int>(std::lround(flags->duration));
            }
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            fmt::print("published {} reading(s) from {} device(s) in {:.1f} s; {} not acknowledged\n",
                       total.sent, flags->devices, seconds, total.failed);
            if (total.failed > 0)
              throw Error(fmt::format("{} reading(s) not acknowledged by Kafka", total.failed), true);
            return 0;
          }};
}

}  // namespace runnel::cli
