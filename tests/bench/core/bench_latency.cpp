// Warm publish -> result latency at light load through a real stack.
//
// `runnel up` (embedded broker, function echo, one worker started by the stack itself) runs as a
// child. This client subscribes to the results feed, publishes warm-up events until one shows on
// the feed (so the subscription is live and every connection is warm), then publishes events one
// at a time with kafka::Producer (acks=all, linger --linger-ms) and waits for each one's outcome
// before the next, after a random pause of 0..--gap-ms (so publishes do not lock onto the
// consumer's fetch cycle). Latency: from just before Produce to the outcome's arrival on the feed.
// Also reported: the producer's acknowledgement time, and the worker's own call time (duration_us).
//
//   build/tests/bench/core/bench_core_latency [--quick] [--events N] [--linger-ms L] [--gap-ms G]
//                                             [--fetch-wait-ms F]
// --fetch-wait-ms sets fetch.wait.max.ms for the whole stack (kafka.options) to show what the
// consumer's fetch wait costs; without it the stack's defaults apply.
#include <mutex>
#include <random>

#include "bench_stack.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/kafka/producer.hpp"

namespace runnel::bench {
namespace {

constexpr const char* kFunction = "echo";

struct Args {
  bool quick = false;
  int events = 2000;
  int linger_ms = 0;
  int gap_ms = 5;
  int fetch_wait_ms = -1;  // -1: the stack's default
};

Args Parse(int argc, char** argv) {
  Args a;
  bool events_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> int {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return std::stoi(argv[++i]);
    };
    if (arg == "--quick") {
      a.quick = true;
    } else if (arg == "--events") {
      a.events = value();
      events_given = true;
    } else if (arg == "--linger-ms") {
      a.linger_ms = value();
    } else if (arg == "--gap-ms") {
      a.gap_ms = value();
    } else if (arg == "--fetch-wait-ms") {
      a.fetch_wait_ms = value();
    } else {
      throw std::runtime_error(
          "usage: bench_core_latency [--quick] [--events N] [--linger-ms L] [--gap-ms G] [--fetch-wait-ms "
          "F]");
    }
  }
  if (a.quick && !events_given) a.events = 200;
  if (a.events < 1 || a.linger_ms < 0 || a.gap_ms < 0) throw std::runtime_error("bad arguments");
  return a;
}

std::string Yaml(const Args& a) {
  std::string yaml;
  if (a.fetch_wait_ms >= 0)
    yaml += fmt::format("kafka:\n  options:\n    fetch.wait.max.ms: \"{}\"\n", a.fetch_wait_ms);
  yaml += fmt::format(
      "functions:\n"
      "  - name: {}\n"
      "    partitions: 2\n"
      "    workers: 1\n",
      kFunction);
  return yaml;
}

struct Stats {
  double p50 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.p50 = Percentile(v, 50);
  s.p95 = Percentile(v, 95);
  s.p99 = Percentile(v, 99);
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

}  // namespace
}  // namespace runnel::bench

int main(int argc, char** argv) {
  using namespace runnel;
  using namespace runnel::bench;
  try {
    const Args a = Parse(argc, argv);
    std::printf(
        "core latency: %d echo events one at a time, producer linger %d ms, pause 0..%d ms between events, "
        "fetch.wait.max.ms %s; embedded broker, `runnel up` with 1 worker%s\n",
        a.events, a.linger_ms, a.gap_ms,
        a.fetch_wait_ms >= 0 ? std::to_string(a.fetch_wait_ms).c_str() : "default (dispatcher 5)",
        a.quick ? " [--quick]" : "");
    std::printf("machine: %s\n\n", MachineLine().c_str());
    std::fflush(stdout);

    Stack stack("bench-latency", Yaml(a));
    zmq::context_t ctx(1);
    Feed feed(ctx, stack, std::string(kFunction) + "/");
    // The acknowledgement time of the event in flight (the delivery report runs on the producer's thread).
    std::mutex ack_mu;
    std::optional<Clock::time_point> acked;
    bool ack_ok = true;
    // After the state its delivery reports touch: destroyed (and flushed) first.
    kafka::Producer producer(stack.Kafka(), kafka::Producer::Options{"all", milliseconds(a.linger_ms),
                                                                     milliseconds(10'000), nullptr});
    FeedOutcome outcome;

    const std::string payload(16, 'x');
    auto publish = [&](const std::string& id) {
      Envelope env;
      env.id = id;
      {
        std::lock_guard lock(ack_mu);
        acked.reset();
      }
      producer.Produce({kFunction, kafka::kAnyPartition, std::nullopt, payload, env.Encode()},
                       [&](const kafka::Delivery& d) {
                         std::lock_guard lock(ack_mu);
                         acked = Clock::now();
                         ack_ok = d.Ok();
                       });
    };
    // Waits for the outcome of `id`; its arrival time (`outcome` holds it), or nullopt after `deadline`.
    auto await = [&](const std::string& id, milliseconds deadline) -> std::optional<Clock::time_point> {
      const auto until = Clock::now() + deadline;
      while (Clock::now() < until) {
        if (!feed.Next(outcome, milliseconds(10))) continue;
        const auto at = Clock::now();
        if (MetaString(outcome.meta, "id") == std::optional<std::string_view>(id)) return at;
      }
      return std::nullopt;
    };

    // Warm-up: until an outcome arrives (the subscription is live, the worker connected), then 50 more.
    bool live = false;
    for (int i = 0; i < 100 && !live; ++i) {
      const std::string id = fmt::format("warm-{}", i);
      publish(id);
      live = await(id, milliseconds(300)).has_value();
    }
    if (!live) throw std::runtime_error("no warm-up outcome on the results feed in 30 s:\n" + stack.Stderr());
    for (int i = 0; i < 50; ++i) {
      const std::string id = fmt::format("warm-more-{}", i);
      publish(id);
      (void)await(id, milliseconds(2000));
    }
    (void)producer.Flush(std::chrono::seconds(5));

    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> gap_us(0, a.gap_ms * 1000);
    std::vector<double> total_ms, ack_ms, call_ms;
    int lost = 0;
    const auto t_start = Clock::now();
    for (int i = 0; i < a.events; ++i) {
      if (a.gap_ms > 0) std::this_thread::sleep_for(std::chrono::microseconds(gap_us(rng)));
      const std::string id = fmt::format("lat-{}", i);
      const auto t0 = Clock::now();
      publish(id);
      const auto got = await(id, milliseconds(2000));
      if (!got) {
        ++lost;
        continue;
      }
      total_ms.push_back(Millis(*got - t0));
      if (auto us = MetaInt(outcome.meta, "duration_us"))
        call_ms.push_back(static_cast<double>(*us) / 1000.0);
      // The acknowledgement normally comes before the result; wait briefly when it has not.
      (void)testing::WaitFor(
          [&] {
            std::lock_guard lock(ack_mu);
            return acked.has_value();
          },
          milliseconds(1000), milliseconds(0));
      std::lock_guard lock(ack_mu);
      if (acked && ack_ok) ack_ms.push_back(Millis(*acked - t0));
    }
    const double wall = Seconds(Clock::now() - t_start);

    const Stats t = Summarize(total_ms);
    const Stats k = Summarize(ack_ms);
    const Stats c = Summarize(call_ms);
    std::printf("%zu of %d events answered in %.1f s (%d without an outcome within 2 s)\n", total_ms.size(),
                a.events, wall, lost);
    std::printf("%-32s %8s %8s %8s %8s %8s\n", "ms", "p50", "p95", "p99", "max", "mean");
    std::printf("%-32s %8.2f %8.2f %8.2f %8.2f %8.2f\n", "publish -> result on the feed", t.p50, t.p95, t.p99,
                t.max, t.mean);
    std::printf("%-32s %8.2f %8.2f %8.2f %8.2f %8.2f\n", "publish -> Kafka ack (acks=all)", k.p50, k.p95,
                k.p99, k.max, k.mean);
    std::printf("%-32s %8.3f %8.3f %8.3f %8.3f %8.3f\n", "echo call in the worker", c.p50, c.p95, c.p99,
                c.max, c.mean);
    std::printf("p99 %.2f ms (target < 10 ms): %s\n", t.p99, lost == 0 && t.p99 < 10.0 ? "met" : "NOT met");
    return lost == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_core_latency: %s\n", e.what());
    return 1;
  }
}
