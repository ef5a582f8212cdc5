// Autoscaler benchmarks through a real `runnel up` (embedded broker):
//  1. spawn floor: fork+exec of the slim `runnel-worker` (what the autoscaler starts) until its
//     HELLO reaches a ZeroMQ ROUTER; the same for `runnel worker`, the full binary, for comparison;
//     and the start of a standby `runnel-worker --standby` (loaded beforehand) until its HELLO;
//  2. scale from zero: publish -> result (results feed) on an idle function with no worker;
//     the same with a worker already running, for comparison;
//  3. reaction: a sudden backlog -> the desired worker count joined;
//  4. idle worker RSS per built-in function.
// Usage: bench_autoscale [--quick] [--only=spawn|zero|reaction|rss]
//   --quick: fewer trials, for CI smoke runs; --only: one measurement
// BENCH_YAML_EXTRA is appended to each stack's config, e.g. "kafka: {options: {debug: fetch}}";
// BENCH_VERBOSE=1 prints every trial as it ends; BENCH_PRODUCER_DEBUG sets librdkafka's `debug` in
// the scale-from-zero bench's producer (e.g. "broker,msg,protocol").
#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/envelope.hpp"
#include "runnel/core/log.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

using namespace runnel;
using namespace runnel::testing;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string WithExtra(std::string yaml) {
  if (const char* extra = std::getenv("BENCH_YAML_EXTRA")) yaml += fmt::format("{}\n", extra);
  return yaml;
}

// Wall-clock time with milliseconds, to line trials up with the stack's log.
std::string NowText() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:%H:%M:%S}.{:03d}", fmt::gmtime(std::chrono::system_clock::to_time_t(now)), ms);
}

bool Verbose() {
  static const bool kVerbose = std::getenv("BENCH_VERBOSE") != nullptr;
  return kVerbose;
}

std::string Summary(std::vector<double> v) {
  if (v.empty()) return "no samples";
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
  };
  return fmt::format("p50 {:.1f} ms  p95 {:.1f} ms  min {:.1f}  max {:.1f}  (n={})", pct(0.5), pct(0.95),
                     v.front(), v.back(), v.size());
}

// The stack's status over its control socket (what `runnel status --json` prints).
class Control {
 public:
  explicit Control(const testing::StackProcess& stack)
      : stack_(stack), endpoint_(stack.Endpoints()["control"].get<std::string>()) {}
  nlohmann::json Function(const std::string& name) {
    zmq::socket_t req(ctx_, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    stack_.Secure(req);
    req.connect(endpoint_);
    req.send(zmq::str_buffer(R"({"op":"status"})"), zmq::send_flags::none);
    zmq::pollitem_t items[] = {{req.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, milliseconds(2000));
    if ((items[0].revents & ZMQ_POLLIN) == 0) return nlohmann::json::object();  // no answer in time
    zmq::message_t reply;
    (void)req.recv(reply);
    // The parsed document must outlive the loop: `for (f : parse(...)["functions"])` iterates a
    // temporary destroyed before the first iteration (a use-after-free that made waits on this
    // status run to their deadline, which looked like the stack stalling).
    const auto status = nlohmann::json::parse(reply.to_string_view(), nullptr, false);
    if (!status.is_object() || !status.contains("functions")) return nlohmann::json::object();
    for (const auto& f : status["functions"]) {
      if (f.value("name", "") == name) return f;
    }
    return nlohmann::json::object();
  }

 private:
  zmq::context_t ctx_{1};
  const testing::StackProcess& stack_;
  std::string endpoint_;
};

// `args`: the worker command before its flags, e.g. {"/path/runnel-worker"}.
// `cpu`, when given, gets each child's CPU time (user + system) until it was killed after HELLO:
// what a start costs whatever the machine's load.
std::vector<double> SpawnFloor(const std::vector<std::string>& args, int trials,
                               std::vector<double>* cpu = nullptr) {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::vector<std::string> argv_text = args;
  argv_text.insert(argv_text.end(), {"--function", "echo", "--dispatcher", endpoint});
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<double> out;
  for (int i = 0; i < trials; ++i) {
    const auto t0 = Clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 1, milliseconds(5000)) > 0 &&
        zmq::recv_multipart(router, std::back_inserter(frames))) {
      out.push_back(Ms(Clock::now() - t0));
    }
    ::kill(pid, SIGKILL);
    struct rusage usage {};
    ::wait4(pid, nullptr, 0, &usage);
    if (cpu != nullptr) {
      cpu->push_back(static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3);
    }
  }
  return out;
}

// The standby start (what the local backend does with standby_workers): `runnel-worker --standby`
// started and loaded beforehand (it names itself runnel-standby once it waits on stdin); timed
// from the byte that starts it to its HELLO at a ROUTER.
std::vector<double> StandbyStart(const std::string& worker_bin, int trials) {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::vector<std::string> argv_text = {worker_bin,     "--function", "echo",
                                        "--dispatcher", endpoint,     "--standby"};
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<double> out;
  for (int i = 0; i < trials; ++i) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) break;
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::dup2(fds[1], 0);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    const bool loaded = WaitFor(
        [&] {
          std::string comm;
          std::getline(std::ifstream(fmt::format("/proc/{}/comm", pid)), comm);
          return comm == "runnel-standby";
        },
        seconds(5), milliseconds(1));
    const auto t0 = Clock::now();
    const char go = 'g';
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    if (loaded && ::send(fds[0], &go, 1, MSG_NOSIGNAL) == 1 && zmq::poll(items, 1, milliseconds(5000)) > 0 &&
        zmq::recv_multipart(router, std::back_inserter(frames))) {
      out.push_back(Ms(Clock::now() - t0));
    }
    ::close(fds[0]);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return out;
}

// Publish one event, wait for its outcome on the results feed.
double OneRoundTrip(kafka::Producer& producer, zmq::socket_t& results, const std::string& topic) {
  Envelope env;
  env.id = NewEventId();
  const auto t0 = Clock::now();
  producer.Produce({topic, kafka::kAnyPartition, std::nullopt, "ping", env.Encode()}, nullptr);
  producer.Flush(seconds(10));
  for (;;) {
    zmq::pollitem_t items[] = {{results.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 1, milliseconds(10'000)) == 0) return -1;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(results, std::back_inserter(frames));
    for (std::size_t i = 1; i + 1 < frames.size(); i += 2) {  // [topic] then [meta][output] per outcome
      if (frames[i].to_string_view().find(env.id) != std::string_view::npos) return Ms(Clock::now() - t0);
    }
  }
}

void ScaleFromZero(int trials) {
  StackProcess stack(WithExtra(R"(
heartbeat: 200ms
functions:
  - name: echo
    partitions: 1
    scaling: {min: 0, max: 1, idle_to_zero: 100ms}
  - name: sleep
    partitions: 1
    scaling: {min: 1, max: 1}
)"));
  Control control(stack);
  zmq::context_t ctx(1);
  zmq::socket_t results(ctx, zmq::socket_type::sub);
  results.set(zmq::sockopt::subscribe, "");
  stack.Secure(results);
  results.connect(stack.Endpoints()["results"].get<std::string>());
  auto kafka = stack.Kafka();
  kafka.options["socket.nagle.disable"] = "true";
  if (const char* debug = std::getenv("BENCH_PRODUCER_DEBUG")) kafka.options["debug"] = debug;
  kafka::Producer::Options popt;
  popt.linger = milliseconds(0);
  kafka::Producer producer(kafka, popt);
  std::vector<double> cold, warm;
  // Warm-up: the subscription in place, and the producer knowing both topics. librdkafka 2.0.2
  // looks up a topic it has not produced to yet only on its main thread's 1 s timer, so without
  // this the first trial measured up to a second of the producer's metadata lookup (debug=topic:
  // "NOINFO ... Topic echo metadata information unknown" 0.9 s after "New local topic: echo").
  OneRoundTrip(producer, results, "sleep");
  WaitFor([&] { return control.Function("sleep").value("joined", 0) == 1; }, seconds(20), milliseconds(20));
  OneRoundTrip(producer, results, "echo");
  for (int i = 0; i < trials; ++i) {
    WaitFor(
        [&] {
          auto f = control.Function("echo");
          // Idle again: no worker, and the standby process (when the stack keeps one) replaced.
          return f.value("desired", 1) == 0 && f.contains("workers") && f["workers"].empty() &&
                 (!f.contains("standby") || f["standby"].value("state", "") == "ready");
        },
        seconds(20), milliseconds(100));
    if (Verbose()) fmt::print("  trial {} starts at {}\n", i, NowText());
    cold.push_back(OneRoundTrip(producer, results, "echo"));
    warm.push_back(OneRoundTrip(producer, results, "sleep"));
    if (Verbose()) fmt::print("  trial {}: cold {:.1f} ms, warm {:.1f} ms\n", i, cold.back(), warm.back());
  }
  if (Verbose()) fmt::print(stderr, "the stack's log:\n{}", stack.Process().Stderr());
  fmt::print("scale from zero, publish -> result (echo, no worker running): {}\n", Summary(cold));
  fmt::print("same path, worker already running (sleep 0 ms, warm):        {}\n", Summary(warm));
}

// Workers that joined the dispatcher of `sleep` so far, from the stack's log.
std::ptrdiff_t Joins(StackProcess& stack) {
  static const std::regex kJoined(R"(dispatcher sleep: worker \S+ \(pid \d+\) joined)");
  const std::string err = stack.Process().Stderr();
  return std::distance(std::sregex_iterator(err.begin(), err.end(), kJoined), std::sregex_iterator());
}

void Reaction(int trials) {
  StackProcess stack(WithExtra(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 4
    concurrency: 4
    scaling: {min: 0, max: 6, target_drain: 1s, idle_to_zero: 500ms, stabilization: 500ms}
)"));
  Control control(stack);
  std::vector<double> to_desired, to_first;
  // One producer for every trial, and a first trial that is not counted: a new producer (or one
  // that has not produced to the topic yet) spends up to 1 s looking the topic up (see
  // ScaleFromZero), which earlier runs counted as the autoscaler's reaction.
  auto kafka = stack.Kafka();
  kafka::Producer producer(kafka);
  auto publish_backlog = [&] {
    for (int n = 0; n < 2000; ++n) {
      Envelope env;
      env.id = NewEventId();
      producer.Produce({"sleep", kafka::kAnyPartition, std::nullopt, R"({"ms":50})", env.Encode()}, nullptr);
    }
    producer.Flush(seconds(60));
  };
  for (int i = -1; i < trials; ++i) {
    WaitFor(
        [&] {
          auto f = control.Function("sleep");
          return f.value("desired", 1) == 0 && f.contains("workers") && f["workers"].empty();
        },
        seconds(30), milliseconds(20));
    // Joins are read from the stack's log (the dispatcher logs each), not by polling its status
    // socket: polling it every few milliseconds during the burst slowed the stack down itself.
    const auto before = Joins(stack);
    const auto t0 = Clock::now();
    if (Verbose()) fmt::print("  trial {} starts at {}\n", i, NowText());
    publish_backlog();  // returns once the broker has them all
    double first = -1;
    WaitFor(
        [&] {
          const auto joined = Joins(stack) - before;
          if (first < 0 && joined >= 1) first = Ms(Clock::now() - t0);
          return joined >= 6;
        },
        seconds(20), milliseconds(5));
    const double all = Ms(Clock::now() - t0);
    if (Verbose())
      fmt::print("  trial {}{}: first {:.1f} ms, all {:.1f} ms\n", i, i < 0 ? " (warm-up)" : "", first, all);
    if (i < 0) continue;
    to_desired.push_back(all);
    to_first.push_back(first);
  }
  if (Verbose()) fmt::print(stderr, "the stack's log:\n{}", stack.Process().Stderr());
  fmt::print("reaction, 2000-event backlog -> first worker joined:          {}\n", Summary(to_first));
  fmt::print("reaction, 2000-event backlog -> desired 6 workers joined:     {}\n", Summary(to_desired));
}

long RssKb(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void IdleRss() {
  std::string yaml = "heartbeat: 200ms\nfunctions:\n";
  const auto names = functions::Builtins().Names();
  for (const auto& name : names) {
    yaml += fmt::format("  - name: {}\n    partitions: 1\n    scaling: {{min: 1, max: 1}}\n", name);
    if (name == "image.convert") yaml += "    params: {format: png}\n";  // its one required param
  }
  StackProcess stack(yaml);
  for (const auto& name : names) (void)stack.WaitForWorkers(name, 1, seconds(30));  // from the stack's log
  // Idle means after a few heartbeats with nothing to do.
  std::this_thread::sleep_for(seconds(2));
  for (const auto& name : names) {
    const auto pids = stack.WorkerPids(name);
    for (const auto& [id, pid] : pids)
      fmt::print("idle worker RSS {:<18} {:6.1f} MiB\n", name, static_cast<double>(RssKb(pid)) / 1024.0);
  }
  // What standby_workers costs: the process each function keeps loaded (not started).
  Control control(stack);
  for (const auto& name : names) {
    const auto f = control.Function(name);
    const int pid = f.contains("standby") ? f["standby"].value("pid", 0) : 0;
    if (pid > 0)
      fmt::print("idle standby RSS {:<17} {:6.1f} MiB\n", name, static_cast<double>(RssKb(pid)) / 1024.0);
  }
}

double LoadAverage() {
  double one = -1;
  std::ifstream("/proc/loadavg") >> one;
  return one;
}

}  // namespace

// NOLINTNEXTLINE(bugprone-exception-escape): a bench that throws is meant to abort with the error
int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure as soon as it is measured
  log::ConfigureFromEnv();                   // RUNNEL_LOG, e.g. kafka=debug with BENCH_PRODUCER_DEBUG
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg.starts_with("--only=")) {
      only = arg.substr(7);
    } else {
      fmt::print(stderr, "usage: bench_autoscale [--quick] [--only=spawn|zero|reaction|rss]\n");
      return 2;
    }
  }
  auto run = [&](std::string_view what) { return only.empty() || only == what; };
  const int trials = quick ? 5 : 30;
  fmt::print("runnel autoscaler benchmark ({} trials){}, load average {:.2f} on {} cores\n", trials,
             quick ? " --quick" : "", LoadAverage(), std::thread::hardware_concurrency());
  if (run("spawn")) {
    const std::string worker_bin =
        (std::filesystem::path(RunnelBin()).parent_path() / "runnel-worker").string();
    std::vector<double> slim_cpu, full_cpu;
    const auto slim = SpawnFloor({worker_bin}, trials, &slim_cpu);
    const auto full = SpawnFloor({RunnelBin(), "worker"}, trials, &full_cpu);
    fmt::print("spawn floor, fork+exec `runnel-worker` -> HELLO at a ROUTER:   {}\n", Summary(slim));
    fmt::print("  its CPU time (user + system):                               {}\n", Summary(slim_cpu));
    fmt::print("the same with `runnel worker` (the full binary):              {}\n", Summary(full));
    fmt::print("  its CPU time (user + system):                               {}\n", Summary(full_cpu));
    fmt::print("standby start, byte on stdin -> HELLO (runnel-worker loaded): {}\n",
               Summary(StandbyStart(worker_bin, trials)));
  }
  if (run("zero")) ScaleFromZero(trials);
  if (run("reaction")) Reaction(quick ? 2 : 10);
  if (run("rss")) IdleRss();
  fmt::print("load average at the end: {:.2f}\n", LoadAverage());
  return 0;
}
