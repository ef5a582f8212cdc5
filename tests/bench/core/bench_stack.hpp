// What the core-path benchmarks share: a real `runnel up` child started from a generated config
// (embedded broker, 127.0.0.1 only), `runnel worker` children, the results feed, and a few cheap
// readers of the meta JSON. Every process started here ends with its object: a graceful signal
// and a bounded wait first, then ChildProcess kills its whole group.
#pragma once

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/kafka.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::bench {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
inline double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// `runnel up --config <dir>/runnel.yaml --state-dir <dir>/state` as a child process.
class Stack {
 public:
  Stack(const std::string& tag, const std::string& yaml) : dir_(testing::TempDir(tag)) {
    const auto config = dir_ / "runnel.yaml";
    std::ofstream(config) << yaml;
    up_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::RunnelBin(), "up", "--config", config.string(), "--state-dir",
                                 (dir_ / "state").string()},
        // BENCH_RUNNEL_LOG sets the stack's log levels (BENCH_STACK_STDERR prints them at the end).
        std::map<std::string, std::string>{{"RUNNEL_LOG", std::getenv("BENCH_RUNNEL_LOG") != nullptr
                                                              ? std::getenv("BENCH_RUNNEL_LOG")
                                                              : "warn"}});
    if (!up_->WaitForOutput("runnel stack up", std::chrono::seconds(30))) {
      throw std::runtime_error(fmt::format("runnel up did not start:\n{}\n{}", up_->Stdout(), up_->Stderr()));
    }
    endpoints_ = StateDir(dir_ / "state").ReadEndpoints();
    keys_ = security::LocalClientKeysFor(dir_ / "state", endpoints_);
  }

  ~Stack() {
    up_->Signal(SIGINT);
    if (!up_->Wait(std::chrono::seconds(30)))
      std::fprintf(stderr, "bench: runnel up did not stop in 30 s; killed\n");
    up_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  kafka::KafkaOptions Kafka() const {
    return {endpoints_.at("kafka").get<std::string>(), "runnel-bench", {}};
  }
  std::string Dispatcher(const std::string& function) const {
    return endpoints_.at("dispatchers").at(function).get<std::string>();
  }
  std::string Results() const { return endpoints_.at("results").get<std::string>(); }
  // Where a process on the stack's host connects, as its own workers and commands do: the local
  // ipc:// endpoints (no CURVE) when the stack has them.
  // BENCH_LOCAL_TCP=1 makes them use the TCP endpoints instead (with CURVE when it is on), as a
  // worker on another host does.
  std::string LocalDispatcher(const std::string& function) const {
    if (std::getenv("BENCH_LOCAL_TCP") != nullptr) return Dispatcher(function);
    const auto local =
        endpoints_.value("local", nlohmann::json::object()).value("dispatchers", nlohmann::json::object());
    return local.contains(function) ? local.at(function).get<std::string>() : Dispatcher(function);
  }
  std::string LocalResults() const {
    if (std::getenv("BENCH_LOCAL_TCP") != nullptr) return Results();
    const std::string local = endpoints_.value("local", nlohmann::json::object()).value("results", "");
    return local.empty() ? Results() : local;
  }
  // CURVE, as the stack's own workers and commands use it: the local keys (nullopt when off).
  const std::optional<security::ClientKeys>& Keys() const { return keys_; }
  std::vector<std::string> WorkerKeyArgs() const {
    if (!keys_) return {};
    return {"--keys", security::KeyDir(dir_ / "state").string()};
  }
  std::string Stderr() const { return up_->Stderr(); }
  std::filesystem::path StatePath() const { return dir_ / "state"; }
  pid_t Pid() const { return up_->Pid(); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<testing::ChildProcess> up_;
  nlohmann::json endpoints_;
  std::optional<security::ClientKeys> keys_;
};

// `runnel worker --function F --dispatcher EP` as a child; SIGTERM drains it on destruction.
class WorkerProcess {
 public:
  WorkerProcess(const Stack& stack, const std::string& function, const std::string& id,
                std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {testing::RunnelBin(),
                                     "worker",
                                     "--function",
                                     function,
                                     "--dispatcher",
                                     stack.LocalDispatcher(function),
                                     "--id",
                                     id};
    const auto keys = stack.WorkerKeyArgs();
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    child_ = std::make_unique<testing::ChildProcess>(
        std::move(argv),
        // BENCH_RUNNEL_LOG sets the stack's log levels (BENCH_STACK_STDERR prints them at the end).
        std::map<std::string, std::string>{{"RUNNEL_LOG", std::getenv("BENCH_RUNNEL_LOG") != nullptr
                                                              ? std::getenv("BENCH_RUNNEL_LOG")
                                                              : "warn"}});
  }
  ~WorkerProcess() { Stop(); }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // SIGSTOP / SIGCONT: a frozen worker keeps its connection and its place at the dispatcher.
  void Freeze() { child_->Signal(SIGSTOP); }
  void Thaw() { child_->Signal(SIGCONT); }
  pid_t Pid() const { return child_->Pid(); }

  void Stop() {
    if (!child_) return;
    child_->Signal(SIGTERM);
    child_->Signal(SIGCONT);
    if (!child_->Wait(std::chrono::seconds(15)))
      std::fprintf(stderr, "bench: a worker did not drain in 15 s; killed\n");
    child_.reset();
  }

 private:
  std::unique_ptr<testing::ChildProcess> child_;
};

// One outcome from the results feed: views into the message it came in, valid until the next
// Feed::Next.
struct FeedOutcome {
  std::string_view meta;
  std::string_view output;
};

// A SUB socket on the stack's results feed. Its receive queue is unbounded (rcvhwm 0) so that a
// slow benchmark thread does not make the feed drop outcomes. A feed message is [topic] then
// [meta][output] per outcome (docs/protocol.md §4.1); Next hands them out one at a time.
class Feed {
 public:
  Feed(zmq::context_t& ctx, const Stack& stack, const std::string& prefix)
      : socket_(ctx, zmq::socket_type::sub) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvhwm, 0);
    socket_.set(zmq::sockopt::subscribe, prefix);
    if (stack.Keys() && security::UsesCurve(stack.LocalResults()))
      security::MakeClient(socket_, *stack.Keys());
    socket_.connect(stack.LocalResults());
  }

  // The next outcome, or false when none came within `timeout`.
  bool Next(FeedOutcome& out, milliseconds timeout) {
    if (next_ + 1 >= frames_.size() && !Receive(timeout)) return false;
    out = {frames_[next_].to_string_view(), frames_[next_ + 1].to_string_view()};
    next_ += 2;
    return true;
  }

 private:
  bool Receive(milliseconds timeout) {
    frames_.clear();
    next_ = 1;
    if (!zmq::recv_multipart(socket_, std::back_inserter(frames_), zmq::recv_flags::dontwait)) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, timeout);
      if ((items[0].revents & ZMQ_POLLIN) == 0) return false;
      if (!zmq::recv_multipart(socket_, std::back_inserter(frames_), zmq::recv_flags::dontwait)) return false;
    }
    return frames_.size() >= 3;
  }

  zmq::socket_t socket_;
  std::vector<zmq::message_t> frames_;
  std::size_t next_ = 1;
};

// The meta frame is nlohmann's compact dump ("key":value, no spaces): these readers find one
// top-level field without parsing the whole object, so the benchmark's own cost stays small.
inline std::optional<std::int64_t> MetaInt(std::string_view meta, std::string_view key) {
  const std::string needle = fmt::format("\"{}\":", key);
  const auto at = meta.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  const char* first = meta.data() + at + needle.size();
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(first, meta.data() + meta.size(), value);
  if (ec != std::errc()) return std::nullopt;
  return value;
}

inline std::optional<std::string_view> MetaString(std::string_view meta, std::string_view key) {
  const std::string needle = fmt::format("\"{}\":\"", key);
  const auto at = meta.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  const auto start = at + needle.size();
  const auto end = meta.find('"', start);
  if (end == std::string_view::npos) return std::nullopt;
  return meta.substr(start, end - start);
}

// Percentile of sorted values (nearest rank).
inline double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// CPU time (user + system, all threads) a process has used so far, from /proc/<pid>/stat;
// pid 0 means this process. Contention from other processes does not inflate it, so CPU per
// event is the figure to compare when the machine is shared.
inline double CpuSeconds(pid_t pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat") : fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Whether `group` has committed every record of every partition of `topic`.
inline bool AllCommitted(kafka::Admin& admin, const std::string& topic, const std::string& group) {
  for (const auto& p : admin.Offsets(topic, group)) {
    if (p.committed.value_or(0) < p.end) return false;  // nothing committed: only an empty partition
  }
  return true;
}

// Produces `count` records (`record(i)` makes the i-th) with acks=all and a 5 ms linger, and waits
// until every one is acknowledged; throws otherwise.
template <typename MakeRecord>
void Preload(const kafka::KafkaOptions& kafka, std::int64_t count, MakeRecord record) {
  kafka::Producer producer(kafka,
                           kafka::Producer::Options{"all", milliseconds(5), milliseconds(10'000), nullptr});
  std::atomic<std::int64_t> failed{0};
  for (std::int64_t i = 0; i < count; ++i) {
    producer.Produce(record(i), [&failed](const kafka::Delivery& d) {
      if (!d.Ok()) failed.fetch_add(1);
    });
  }
  const auto left = producer.Flush(std::chrono::seconds(120));
  if (left > 0 || failed.load() > 0) {
    throw std::runtime_error(fmt::format("preload: {} event(s) not acknowledged", left + failed.load()));
  }
}

inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return fmt::format("{} {} {}", one, five, fifteen);
}

inline std::string MachineLine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::string model = "?";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return fmt::format("{} logical CPU(s), {}; load average {}", std::thread::hardware_concurrency(), model,
                     LoadAverage());
}

}  // namespace runnel::bench
