// End-to-end throughput of no-op (echo) events through a real stack, against the raw librdkafka
// consume rate of the same records on the same broker, in the same run.
//
// Per worker count, on a fresh `runnel up` (embedded broker, function echo, no workers of its own):
//   1. subscribe to the results feed and make sure the subscription is live (a warm-up worker
//      answers warm-up events until one shows on the feed; then it drains and leaves);
//   2. preload N events (16-byte values, no key, no headers, round-robin over the partitions) and
//      check the broker kept them all (log start not past the first one);
//   3. baseline: a plain librdkafka consumer (rd_kafka_consume_batch_queue, assign at the first
//      bench offset, same fetch settings as the dispatcher) reads the N records; also Runnel's own
//      kafka::Consumer, for reference;
//   4. start W `runnel worker` processes and time until every event has its final outcome: all N
//      outcomes seen on the results feed (the end is the arrival of the last one), and the
//      dispatcher's committed offsets at the end of every partition (the at-least-once guarantee:
//      nothing below is unfinished). If the feed dropped outcomes, the commit time is used.
//
// The dispatcher reads up to its buffer (20,000 records) before the clock starts, while it has no
// worker; the summary says what that is worth at the measured raw rate.
//
//   build/tests/bench/core/bench_core_throughput [--quick] [--events N] [--partitions P]
//                                                [--workers 1,2,4] [--capacity C]
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>

#include "bench_stack.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/producer.hpp"

namespace runnel::bench {
namespace {

constexpr const char* kFunction = "echo";
constexpr std::size_t kValueBytes = 16;
constexpr std::size_t kDispatcherBuffer = 20'000;  // Dispatcher::Options::max_buffered

struct Args {
  bool quick = false;
  std::int64_t events = 200'000;
  int partitions = 2;
  std::vector<int> workers = {1, 2, 4};
  int capacity = 0;  // 0: the worker's default
};

Args Parse(int argc, char** argv) {
  Args a;
  bool events_given = false;
  bool workers_given = false;
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
    } else if (arg == "--partitions") {
      a.partitions = std::stoi(value());
    } else if (arg == "--capacity") {
      a.capacity = std::stoi(value());
    } else if (arg == "--workers") {
      a.workers.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');) a.workers.push_back(std::stoi(item));
      workers_given = true;
    } else {
      throw std::runtime_error(
          "usage: bench_core_throughput [--quick] [--events N] [--partitions P] [--workers 1,2,4] "
          "[--capacity C]");
    }
  }
  if (a.quick) {
    if (!events_given) a.events = 20'000;
    if (!workers_given) a.workers = {1, 2};
  }
  if (a.events < a.partitions || a.partitions < 1)
    throw std::runtime_error("need at least one event per partition");
  a.events -= a.events % a.partitions;  // the same count on every partition
  return a;
}

// BENCH_YAML_EXTRA is appended to the stack's config, e.g. "kafka: {options: {debug: fetch}}".
std::string Yaml(const Args& a) {
  const char* extra = std::getenv("BENCH_YAML_EXTRA");
  return fmt::format(
      "heartbeat: 30s\n"
      "functions:\n"
      "  - name: {}\n"
      "    partitions: {}\n"
      "    workers: 0\n"
      "{}\n",
      kFunction, a.partitions, extra != nullptr ? extra : "");
}

struct RawRate {
  double seconds = 0;       // assign -> last record (the connection to the broker already open)
  double from_first_s = 0;  // first record -> last record
  std::int64_t records = 0;
  double FromAssign() const { return seconds > 0 ? static_cast<double>(records) / seconds : 0; }
  double FromFirst() const { return from_first_s > 0 ? static_cast<double>(records - 1) / from_first_s : 0; }
  // The stricter (higher) of the two is the baseline.
  double Rate() const { return std::max(FromAssign(), FromFirst()); }
};

// A plain librdkafka consumer, no Runnel code: assign at `base`, read `count` records per
// partition with rd_kafka_consume_batch_queue. Same fetch settings as the dispatcher's consumer.
RawRate RawLibrdkafkaConsume(const kafka::KafkaOptions& kafka, const std::vector<std::int64_t>& base,
                             std::int64_t per_partition) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(err);
  };
  set("bootstrap.servers", kafka.bootstrap);
  set("group.id", "bench.raw");
  set("enable.auto.commit", "false");
  set("enable.auto.offset.store", "false");
  set("enable.partition.eof", "false");
  set("fetch.wait.max.ms", "5");
  set("socket.nagle.disable", "true");
  set("log_level", "3");
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(err);
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(base.size()));
  for (std::size_t p = 0; p < base.size(); ++p) {
    rd_kafka_topic_partition_list_add(list, kFunction, static_cast<std::int32_t>(p))->offset = base[p];
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  const std::int64_t want = per_partition * static_cast<std::int64_t>(base.size());
  std::vector<rd_kafka_message_t*> batch(1024);
  std::int64_t got = 0;
  std::size_t bytes = 0;
  // Open the connection first, as the dispatcher's is open when its clock starts.
  std::int64_t low = 0, high = 0;
  (void)rd_kafka_query_watermark_offsets(rk, kFunction, 0, &low, &high, 5000);
  std::optional<Clock::time_point> first;
  const auto t0 = Clock::now();
  rd_kafka_assign(rk, list);
  const auto give_up = t0 + std::chrono::seconds(120);
  while (got < want && Clock::now() < give_up) {
    const ssize_t n = rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[static_cast<std::size_t>(i)];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!first) first = Clock::now();
        ++got;
        bytes += m->len;
      }
      rd_kafka_message_destroy(m);
    }
  }
  const auto t1 = Clock::now();
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (got < want)
    throw std::runtime_error(fmt::format("raw consumer read {} of {} records in 120 s", got, want));
  (void)bytes;
  return {Seconds(t1 - t0), Seconds(t1 - *first), got};
}

// The same read through Runnel's kafka::Consumer (copies each record into a kafka::Message).
RawRate RunnelConsume(const kafka::KafkaOptions& kafka, const std::vector<std::int64_t>& base,
                      std::int64_t per_partition) {
  kafka::Consumer consumer(kafka,
                           kafka::Consumer::Options{"bench.runnel-consumer", "earliest", milliseconds(5)});
  std::vector<kafka::TopicPartitionOffset> assign;
  for (std::size_t p = 0; p < base.size(); ++p)
    assign.push_back({kFunction, static_cast<std::int32_t>(p), base[p]});
  const std::int64_t want = per_partition * static_cast<std::int64_t>(base.size());
  std::int64_t got = 0;
  (void)consumer.Watermarks(kFunction, 0);
  std::optional<Clock::time_point> first;
  const auto t0 = Clock::now();
  consumer.Assign(assign);
  const auto give_up = t0 + std::chrono::seconds(120);
  while (got < want && Clock::now() < give_up) {
    const auto n = consumer.PollBatch(1024, milliseconds(100)).size();
    if (n > 0 && !first) first = Clock::now();
    got += static_cast<std::int64_t>(n);
  }
  const auto t1 = Clock::now();
  if (got < want)
    throw std::runtime_error(fmt::format("kafka::Consumer read {} of {} records in 120 s", got, want));
  return {Seconds(t1 - t0), Seconds(t1 - *first), got};
}

struct Round {
  int workers = 0;
  std::int64_t events = 0;
  double publish_s = 0;
  RawRate raw;
  RawRate runnel_consumer;
  double feed_last_s = 0;   // worker start -> last outcome on the feed
  double feed_first_s = 0;  // worker start -> first outcome on the feed
  double commit_s = 0;      // worker start -> committed offsets at the end
  std::int64_t seen = 0;    // distinct outcomes on the feed
  std::int64_t not_ok = 0;  // outcomes whose status was not ok
  double end_s = 0;         // the end used for the rate
  double raw_cpu_s = 0;     // CPU of the raw consume: this process + runnel up (the embedded broker)
  double stack_cpu_s = 0;   // CPU of runnel up + workers during the end-to-end phase
  double bench_cpu_s = 0;   // CPU of this process (the feed subscriber) during it
  std::string load;         // load average after the round
  double RawCpuUs() const { return 1e6 * raw_cpu_s / static_cast<double>(events); }
  double E2eCpuUs() const { return 1e6 * (stack_cpu_s + bench_cpu_s) / static_cast<double>(events); }
  double Rate() const { return end_s > 0 ? static_cast<double>(events) / end_s : 0; }
  double Ratio() const { return raw.Rate() > 0 ? Rate() / raw.Rate() : 0; }
};

Round RunRound(const Args& a, int workers, zmq::context_t& ctx) {
  Round r;
  r.workers = workers;
  r.events = a.events;
  Stack stack(fmt::format("bench-throughput-w{}", workers), Yaml(a));
  const auto kafka = stack.Kafka();
  kafka::Admin admin(kafka);
  const std::string group = "runnel." + std::string(kFunction);
  Feed feed(ctx, stack, std::string(kFunction) + "/");
  FeedOutcome outcome;

  // 1. Workers up, and warm: warm-up events until every worker has answered one on the feed
  //    (which also proves the feed's subscription is live).
  std::vector<std::string> extra;
  if (a.capacity > 0) extra = {"--capacity", std::to_string(a.capacity)};
  std::vector<std::unique_ptr<WorkerProcess>> procs;
  std::set<std::string> answered;
  for (int w = 0; w < workers; ++w) {
    const std::string id = fmt::format("bench-{}", w);
    procs.push_back(std::make_unique<WorkerProcess>(stack, kFunction, id, extra));
  }
  {
    kafka::Producer producer(kafka,
                             kafka::Producer::Options{"all", milliseconds(0), milliseconds(10'000), nullptr});
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (answered.size() < static_cast<std::size_t>(workers) && Clock::now() < until) {
      for (int i = 0; i < 4 * workers; ++i) {
        producer.Produce({kFunction, kafka::kAnyPartition, std::nullopt, "warm-up", {}},
                         [](const kafka::Delivery&) {});
      }
      const auto round_until = Clock::now() + milliseconds(100);
      while (Clock::now() < round_until) {
        if (!feed.Next(outcome, milliseconds(20))) continue;
        if (auto worker = MetaString(outcome.meta, "worker")) answered.emplace(*worker);
      }
    }
    if (answered.size() < static_cast<std::size_t>(workers)) {
      throw std::runtime_error(fmt::format("only {} of {} workers answered warm-up events in 60 s:\n{}",
                                           answered.size(), workers, stack.Stderr()));
    }
  }
  // Every warm-up event done and committed; the bench events start at the current ends.
  std::vector<std::int64_t> base(static_cast<std::size_t>(a.partitions), 0);
  const bool settled = testing::WaitFor(
      [&] {
        for (const auto& p : admin.Offsets(kFunction, group)) {
          if (p.committed.value_or(0) != p.end) return false;
          base[static_cast<std::size_t>(p.partition)] = p.end;
        }
        return true;
      },
      std::chrono::seconds(10), milliseconds(20));
  if (!settled) throw std::runtime_error("warm-up events were not committed within 10 s");
  while (feed.Next(outcome, milliseconds(100))) {
  }

  // 2. Preload, with the workers frozen (the stack's heartbeat is long enough not to lose them).
  for (auto& p : procs) p->Freeze();
  const std::int64_t per_partition = a.events / a.partitions;
  {
    const std::string value(kValueBytes, 'x');
    const auto t0 = Clock::now();
    Preload(kafka, a.events, [&](std::int64_t i) {
      return kafka::Record{kFunction, static_cast<std::int32_t>(i % a.partitions), std::nullopt, value, {}};
    });
    r.publish_s = Seconds(Clock::now() - t0);
  }
  for (const auto& p : admin.Offsets(kFunction, group)) {
    const auto b = base[static_cast<std::size_t>(p.partition)];
    if (p.log_start > b || p.end != b + per_partition) {
      throw std::runtime_error(
          fmt::format("partition {}: log start {} end {}, expected start <= {} and end {}: the embedded "
                      "broker's cap dropped "
                      "events; use fewer --events or more --partitions",
                      p.partition, p.log_start, p.end, b, b + per_partition));
    }
  }

  // 3. Baselines, while the dispatcher sits paused with its buffer full and the workers frozen.
  const double cpu_before_raw = CpuSeconds(0) + CpuSeconds(stack.Pid());
  r.raw = RawLibrdkafkaConsume(kafka, base, per_partition);
  r.raw_cpu_s = CpuSeconds(0) + CpuSeconds(stack.Pid()) - cpu_before_raw;
  r.runnel_consumer = RunnelConsume(kafka, base, per_partition);

  // 4. End to end: the clock starts when the workers are thawed.
  std::vector<std::vector<std::uint8_t>> seen(
      static_cast<std::size_t>(a.partitions),
      std::vector<std::uint8_t>(static_cast<std::size_t>(per_partition), 0));
  std::optional<Clock::time_point> first, last, committed;
  // Counts an outcome of a bench event seen for the first time; false for anything else.
  auto accept = [&](const FeedOutcome& got) {
    const std::string_view meta = got.meta;
    const auto partition = MetaInt(meta, "partition");
    const auto offset = MetaInt(meta, "offset");
    if (!partition || !offset || *partition < 0 || *partition >= a.partitions) return false;
    const auto index = *offset - base[static_cast<std::size_t>(*partition)];
    if (index < 0 || index >= per_partition) return false;
    auto& bit = seen[static_cast<std::size_t>(*partition)][static_cast<std::size_t>(index)];
    if (bit != 0) return false;
    bit = 1;
    const auto at = Clock::now();
    if (!first) first = at;
    last = at;
    ++r.seen;
    if (MetaString(meta, "status") != std::optional<std::string_view>("ok")) ++r.not_ok;
    return true;
  };
  // Every partition holds bench events here, so a partition with nothing committed is behind.
  auto all_committed = [&] { return AllCommitted(admin, kFunction, group); };
  auto stack_cpu = [&] {
    double sum = CpuSeconds(stack.Pid());
    for (auto& p : procs) sum += CpuSeconds(p->Pid());
    return sum;
  };
  const double stack_cpu_before = stack_cpu();
  const double bench_cpu_before = CpuSeconds(0);
  if (std::getenv("BENCH_PIDS") != nullptr) {
    std::string pids = std::to_string(stack.Pid());
    for (auto& p : procs) pids += fmt::format(",{}", p->Pid());
    std::fprintf(stderr, "bench: end-to-end phase starts; pids %s\n", pids.c_str());
  }
  const auto t0 = Clock::now();
  for (auto& p : procs) p->Thaw();
  // Until every outcome is on the feed (the commit check then runs at once), else until the
  // commits reach the end; the commit is checked every 100 ms meanwhile.
  const auto give_up = t0 + std::chrono::seconds(300);
  auto next_commit_check = t0 + milliseconds(100);
  while (Clock::now() < give_up) {
    if (r.seen < a.events && feed.Next(outcome, milliseconds(20))) {
      if (accept(outcome) && r.seen == a.events) next_commit_check = Clock::now();
      continue;
    }
    const auto now = Clock::now();
    if (now < next_commit_check) continue;
    if (all_committed()) {
      committed = Clock::now();
      // Outcomes still on their way through the feed: wait a moment for them.
      while (r.seen < a.events && Clock::now() < *committed + std::chrono::seconds(1)) {
        if (feed.Next(outcome, milliseconds(50))) accept(outcome);
      }
      break;
    }
    next_commit_check = now + milliseconds(r.seen == a.events ? 5 : 100);
  }
  if (!committed) {
    throw std::runtime_error(
        fmt::format("not every event was committed within 300 s ({} of {} outcomes seen)", r.seen, a.events));
  }
  r.stack_cpu_s = stack_cpu() - stack_cpu_before;
  r.bench_cpu_s = CpuSeconds(0) - bench_cpu_before;
  r.load = LoadAverage();
  r.commit_s = Seconds(*committed - t0);
  if (first) r.feed_first_s = Seconds(*first - t0);
  if (last) r.feed_last_s = Seconds(*last - t0);
  r.end_s = r.seen == a.events ? r.feed_last_s : r.commit_s;
  for (auto& p : procs) p->Stop();
  if (std::getenv("BENCH_STACK_STDERR") != nullptr) std::fprintf(stderr, "%s\n", stack.Stderr().c_str());
  return r;
}

}  // namespace
}  // namespace runnel::bench

int main(int argc, char** argv) {
  using namespace runnel::bench;
  try {
    const Args a = Parse(argc, argv);
    std::printf(
        "core throughput: %lld echo events (%zu-byte values, no key, no headers), %d partitions, "
        "embedded broker, `runnel up` + `runnel worker` processes%s\n",
        static_cast<long long>(a.events), kValueBytes, a.partitions, a.quick ? " [--quick]" : "");
    std::printf("machine: %s\n\n", MachineLine().c_str());
    std::fflush(stdout);
    zmq::context_t ctx(1);
    std::vector<Round> rounds;
    for (int w : a.workers) {
      const Round r = RunRound(a, w, ctx);
      std::printf(
          "workers %d: preload %.2f s (%.0f/s); raw librdkafka %.0f ev/s (%.3f s from assign, %.3f s from "
          "the first record), kafka::Consumer %.0f ev/s; "
          "end to end from the thaw: first outcome %.3f s, last outcome %.3f s, committed %.3f s; %lld/%lld "
          "outcomes on the "
          "feed, %lld not ok; CPU per event: raw consume %.2f us, end to end %.2f us (stack %.2f s, bench "
          "%.2f s); load %s\n",
          w, r.publish_s, static_cast<double>(r.events) / r.publish_s, r.raw.Rate(), r.raw.seconds,
          r.raw.from_first_s, r.runnel_consumer.Rate(), r.feed_first_s, r.feed_last_s, r.commit_s,
          static_cast<long long>(r.seen), static_cast<long long>(r.events), static_cast<long long>(r.not_ok),
          r.RawCpuUs(), r.E2eCpuUs(), r.stack_cpu_s, r.bench_cpu_s, r.load.c_str());
      std::fflush(stdout);
      rounds.push_back(r);
    }
    std::printf("\nsummary (end = %s)\n",
                "last outcome on the results feed, every event's outcome seen; commit when not");
    std::printf("%-8s %12s %17s %7s %16s %13s %13s %9s\n", "workers", "e2e ev/s", "raw consume ev/s", "ratio",
                "steady e2e ev/s", "e2e CPU us/ev", "raw CPU us/ev", "CPU ratio");
    bool met = true;
    for (const auto& r : rounds) {
      const double steady = r.feed_last_s > r.feed_first_s
                                ? static_cast<double>(r.seen - 1) / (r.feed_last_s - r.feed_first_s)
                                : 0;
      std::printf("%-8d %12.0f %17.0f %7.2f %16.0f %13.2f %13.2f %9.2f%s\n", r.workers, r.Rate(),
                  r.raw.Rate(), r.Ratio(), steady, r.E2eCpuUs(), r.RawCpuUs(), r.RawCpuUs() / r.E2eCpuUs(),
                  r.seen == r.events ? "" : "  (feed dropped outcomes: end = commit)");
      met = met && r.not_ok == 0;
    }
    double best = 0;
    for (const auto& r : rounds) best = std::max(best, r.Ratio());
    const double head_start_ms =
        rounds.empty() ? 0
                       : 1000.0 * static_cast<double>(std::min<std::int64_t>(kDispatcherBuffer, a.events)) /
                             rounds[0].raw.Rate();
    std::printf("best ratio %.2f (target >= 0.50): %s\n", best, best >= 0.5 ? "met" : "NOT met");
    std::printf(
        "note: the dispatcher buffered up to %zu records before the clock started (~%.0f ms of raw "
        "consume)\n",
        kDispatcherBuffer, head_start_ms);
    if (!met) {
      std::printf("some outcomes were not ok\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_core_throughput: %s\n", e.what());
    return 1;
  }
}
