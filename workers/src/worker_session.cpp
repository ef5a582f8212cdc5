#include "runnel/core/json.hpp"
#include "runnel/workers/worker_session.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/envelope.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/functions/handlers.hpp"
#include "runnel/workers/proc_stats.hpp"
#include "runnel/workers/task_pool.hpp"
#include "runnel/workers/watchdog.hpp"

namespace runnel::workers {
namespace {

using Clock = std::chrono::steady_clock;
using functions::Errc;
using std::chrono::milliseconds;

constexpr milliseconds kDefaultHeartbeat{1000};
constexpr int kSilentIntervals = 3;               // dispatcher silent this many intervals: reconnect
constexpr milliseconds kMaxPollWait{100};         // also bounds how late the watchdog notices a call
constexpr int kFinalLingerMs = 1000;              // flushing BYE and the last RESULTS before exiting
constexpr std::size_t kMaxMessagesPerWake = 256;  // then flush results before reading more

// Blocks SIGINT/SIGTERM in this thread (threads started later inherit it) and returns a signalfd
// for them, or -1 when the session does not handle signals.
int OpenSignalFd(bool handle_signals) {
  if (!handle_signals) return -1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  return fd;
}

std::string DefaultWorkerId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return fmt::format("{}-{}", host[0] != '\0' ? host : "worker", ::getpid());
}

SessionEnd Refused(std::string reason) { return SessionEnd{1, false, std::move(reason)}; }

// WELCOME's `batch` ({"size": 1..10000, "window_ms": 0..60000}); absent: the function's own.
std::optional<functions::BatchSpec> WelcomeBatch(const nlohmann::json& welcome) {
  const auto it = welcome.find("batch");
  if (it == welcome.end()) return std::nullopt;
  const auto size = it->is_object() ? it->value("size", std::int64_t{0}) : 0;
  const auto window = it->is_object() ? it->value("window_ms", std::int64_t{0}) : -1;
  if (size < 1 || size > 10'000 || window < 0 || window > 60'000) {
    throw ConfigError(fmt::format("WELCOME's batch must be {{\"size\": 1..10000, \"window_ms\": 0..60000}}, got {}",
                                  it->dump()));
  }
  return functions::BatchSpec{static_cast<std::size_t>(size), milliseconds(window)};
}

}  // namespace

class WorkerSession::Impl {
 public:
  explicit Impl(WorkerOptions options)
      : options_(std::move(options)),
        capacity_(options_.capacity.value_or(kDefaultCapacity)),
        log_(log::Get("worker")),
        signal_fd_(OpenSignalFd(options_.handle_signals)),
        watchdog_(options_.watchdog_grace) {
    if (options_.id.empty()) options_.id = DefaultWorkerId();
  }

  ~Impl() {
    socket_.reset();
    pool_.reset();  // waits for the calls in progress (see the class comment)
    if (signal_fd_ >= 0) ::close(signal_fd_);
  }

  SessionEnd Run() {
    // What runs is WELCOME's handler (a builtin, a plugin or a program), so the function is
    // checked when it is built there, not here.
    try {
      Connect();
      for (;;) {
        if (auto end = Step()) return Finish(std::move(*end));
      }
    } catch (const std::exception& e) {
      SessionEnd end{1, false, fmt::format("worker failed: {}", e.what())};
      if (pool_ && !held_.empty()) end = SessionEnd{3, true, end.reason};
      if (socket_) SendBye(end.reason);
      return Finish(std::move(end));
    }
  }

 private:
  struct Held {
    milliseconds budget{0};
  };

  // One turn of the I/O loop: wait for the socket, results or a signal (at most until the next
  // timer), then handle whatever is ready, flush results and run the timers.
  std::optional<SessionEnd> Step() {
    std::vector<zmq::pollitem_t> items;
    items.push_back({socket_->handle(), 0, ZMQ_POLLIN, 0});
    if (pool_) items.push_back({nullptr, pool_->NotifyFd(), ZMQ_POLLIN, 0});
    if (signal_fd_ >= 0) items.push_back({nullptr, signal_fd_, ZMQ_POLLIN, 0});
    zmq::poll(items, PollWait(Clock::now()));

    if (signal_fd_ >= 0 && (items.back().revents & ZMQ_POLLIN) != 0) {
      if (auto end = OnSignal()) return end;
    }
    for (std::size_t n = 0; n < kMaxMessagesPerWake; ++n) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(*socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
      last_heard_ = Clock::now();
      if (auto end = OnMessage(frames)) return end;
    }
    if (pool_) {
      pool_->ClearNotify();
      SubmitOverflow();
    }
    FlushResults();
    return OnTimers(Clock::now());
  }

  milliseconds PollWait(Clock::time_point now) const {
    Clock::time_point wake = std::min(now + kMaxPollWait, last_heard_ + kSilentIntervals * heartbeat_);
    if (welcomed_) wake = std::min(wake, next_heartbeat_);
    if (auto next = watchdog_.NextDeadline()) wake = std::min(wake, *next);
    if (draining_) wake = std::min(wake, drain_deadline_);
    return std::max(milliseconds(0), std::chrono::ceil<milliseconds>(wake - now));
  }

  // --- socket ---------------------------------------------------------------------------------

  void Connect() {
    socket_.emplace(ctx_, zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 0);
    try {
      socket_->connect(options_.dispatcher);
    } catch (const zmq::error_t& e) {
      socket_.reset();
      throw ConfigError(fmt::format("cannot connect to dispatcher '{}': {}", options_.dispatcher, e.what()));
    }
    last_heard_ = Clock::now();
    // While draining, announce no credit, then say so: this HELLO only re-registers the worker so
    // its results are accepted.
    nlohmann::json hello = {{"v", wire::kVersion},
                            {"function", options_.function},
                            {"worker", options_.id},
                            {"pid", ::getpid()},
                            {"capacity", draining_ ? 0 : capacity_}};
    if (draining_) hello["draining"] = true;
    SendControl(wire::cmd::kHello, hello);
    if (draining_) SendCommand(wire::cmd::kDraining);
  }

  void Reconnect() {
    log_->warn("no word from the dispatcher at {} for {} ms: reconnecting", options_.dispatcher,
               (kSilentIntervals * heartbeat_).count());
    socket_.reset();
    Connect();
  }

  bool Send(std::vector<zmq::message_t> frames) {
    try {
      if (zmq::send_multipart(*socket_, frames, zmq::send_flags::dontwait)) return true;
      log_->warn("dispatcher is not taking messages (queue full): dropped a {} message",
                 frames[0].to_string_view());
    } catch (const zmq::error_t& e) {
      log_->warn("sending {} failed: {}", frames[0].to_string_view(), e.what());
    }
    return false;
  }

  void SendCommand(std::string_view command) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(command);
    Send(std::move(frames));
  }

  void SendControl(std::string_view command, const nlohmann::json& body) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(command);
    frames.emplace_back(JsonText(body));
    Send(std::move(frames));
  }

  void SendBye(const std::string& reason) { SendControl(wire::cmd::kBye, {{"reason", reason}}); }

  // Sends every result ready now as one RESULTS message (pairs of header and output frames).
  void FlushResults() {
    std::vector<CompletedTask> results = std::move(refused_);
    refused_.clear();
    if (pool_) {
      for (auto& done : pool_->TakeCompleted()) results.push_back(std::move(done));
    }
    if (results.empty()) return;
    std::vector<zmq::message_t> frames;
    frames.reserve(1 + 2 * results.size());
    frames.emplace_back(wire::cmd::kResults);
    for (auto& done : results) {
      held_.erase(done.header.token);
      frames.emplace_back(wire::Encode(done.header));
      frames.emplace_back(done.output.data(), done.output.size());
    }
    Send(std::move(frames));
  }

  SessionEnd Finish(SessionEnd end) {
    if (socket_) {
      socket_->set(zmq::sockopt::linger, kFinalLingerMs);
      socket_.reset();
    }
    ctx_.close();  // returns once queued messages are sent or the linger ran out
    return end;
  }

  // --- messages -------------------------------------------------------------------------------

  std::optional<SessionEnd> OnMessage(std::vector<zmq::message_t>& frames) {
    if (frames.empty()) return std::nullopt;
    const std::string_view command = frames[0].to_string_view();
    if (command == wire::cmd::kHeartbeat) return std::nullopt;
    if (command == wire::cmd::kTasks) {
      OnTasks(frames);
      return std::nullopt;
    }
    const auto body = frames.size() > 1 ? nlohmann::json::parse(frames[1].to_string_view(), nullptr, false)
                                        : nlohmann::json::object();
    if (!body.is_object()) {
      log_->error("ignoring a {} message whose body is not a JSON object", command);
      return std::nullopt;
    }
    if (command == wire::cmd::kWelcome) return OnWelcome(body);
    if (command == wire::cmd::kReject) {
      return Refused(
          fmt::format("the dispatcher rejected this worker: {}", body.value("reason", "no reason given")));
    }
    if (command == wire::cmd::kExit) {
      const std::string reason =
          fmt::format("exit requested by the dispatcher: {}", body.value("reason", "no reason given"));
      SendBye(reason);
      return SessionEnd{3, pool_ != nullptr, reason};
    }
    log_->warn("ignoring unknown command '{}' from the dispatcher", command);
    return std::nullopt;
  }

  std::optional<SessionEnd> OnWelcome(const nlohmann::json& body) {
    try {
      if (body.value("v", wire::kVersion) != wire::kVersion) {
        return Refused(fmt::format("the dispatcher speaks protocol version {}, this worker {}",
                                   body.value("v", 0), wire::kVersion));
      }
      if (const auto function = body.value("function", options_.function); function != options_.function) {
        return Refused(
            fmt::format("the dispatcher serves function '{}', not '{}'", function, options_.function));
      }
      heartbeat_ =
          milliseconds(std::max<std::int64_t>(1, body.value("heartbeat_ms", kDefaultHeartbeat.count())));
      timeout_ = milliseconds(std::max<std::int64_t>(0, body.value("timeout_ms", std::int64_t{0})));
      max_payload_ = body.value("max_payload", std::uint64_t{0});
      next_heartbeat_ = Clock::now();
      if (welcomed_) {
        log_->info("welcomed again by {} after reconnecting; keeping the function built at the first WELCOME",
                   options_.dispatcher);
        return std::nullopt;
      }
      const nlohmann::json params = body.value("params", nlohmann::json::object());
      // A dispatcher without "handler" (protocol §3.1) serves the builtin of the function's name.
      const std::string handler = body.value("handler", "builtin:" + options_.function);
      try {
        function_ = functions::CreateFunction(handler, params,
                                              {options_.function, body.value("handler_dir", std::string())});
      } catch (const functions::FunctionError& e) {
        const std::string reason =
            e.Code() == functions::Errc::kUnknownFunction
                ? e.what()
                : fmt::format("cannot build function '{}' ({}): {}", options_.function, handler, e.what());
        SendBye(reason);
        return Refused(reason);
      }
      functions::BatchSpec batch;
      try {
        batch = functions::EffectiveBatch(*function_, WelcomeBatch(body));
      } catch (const Error& e) {
        const std::string reason =
            fmt::format("cannot run function '{}' ({}): {}", options_.function, handler, e.what());
        SendBye(reason);
        return Refused(reason);
      }
      const auto memory_mb = body.value("memory_mb", std::uint64_t{0});
      if (options_.apply_memory_limit) ApplyMemoryLimit(memory_mb);
      const auto concurrency = body.value("concurrency", std::size_t{0});
      PoolOptions pool;
      pool.function_name = options_.function;
      pool.params = params;
      pool.output_dir = body.value("output_dir", std::string());
      pool.threads = options_.threads;
      fibers_ = std::max<std::size_t>(
          1, std::min(capacity_, concurrency > 0 ? concurrency : kDefaultFibers));
      // Room for a full batch per call, unless --capacity set a limit: say so before tasks flow.
      const std::size_t wanted = std::min(kMaxBatchCapacity, fibers_ * batch.max_events);
      if (!options_.capacity && wanted > capacity_) {
        capacity_ = wanted;
        SendControl(wire::cmd::kCapacity, {{"capacity", capacity_}});
      }
      pool.fibers = fibers_;
      pool.queued = capacity_;
      pool.batch = batch;
      pool_ = std::make_unique<TaskPool>(*function_, std::move(pool), watchdog_);
      welcomed_ = true;
      log_->info(
          "worker {} runs '{}' for {}: capacity {}, {} fibers on {} threads, batch {} within {} ms, timeout {} "
          "ms, memory {} MiB",
          options_.id, options_.function, options_.dispatcher, capacity_, fibers_, options_.threads,
          batch.max_events, batch.window.count(), timeout_.count(), memory_mb);
      return std::nullopt;
    } catch (const nlohmann::json::exception& e) {
      SendBye("malformed WELCOME");
      return Refused(fmt::format("malformed WELCOME from the dispatcher: {}", e.what()));
    }
  }

  // Every task of the message goes to the pool (or waits in overflow_ for room); a task the worker
  // refuses before running gets its error result here.
  void OnTasks(std::vector<zmq::message_t>& frames) {
    if (!welcomed_) {
      log_->error("TASKS before WELCOME: ignored ({} frames)", frames.size());
      return;
    }
    if (frames.size() % 2 == 0)
      log_->error("TASKS message with an odd number of task frames: last one ignored");
    for (std::size_t i = 1; i + 1 < frames.size(); i += 2) {
      wire::TaskHeader header;
      try {
        header = wire::DecodeTask(frames[i].to_string_view());
      } catch (const wire::WireError& e) {
        // No token to answer with: the dispatcher's own deadline will re-dispatch it.
        log_->error("dropping a task whose header does not decode: {}", e.what());
        continue;
      }
      const milliseconds budget = header.timeout_ms > 0 ? milliseconds(header.timeout_ms) : timeout_;
      held_[header.token] = Held{budget};
      zmq::message_t& payload = frames[i + 1];
      if (max_payload_ > 0 && payload.size() > max_payload_) {
        refused_.push_back(ErrorResult(
            header.token, Errc::kLimitExceeded,
            fmt::format("payload is {} bytes, over max_payload {}", payload.size(), max_payload_)));
        continue;
      }
      PendingTask task;
      task.token = header.token;
      task.budget = budget;
      try {
        task.event.envelope = Envelope::Decode(header.headers);
      } catch (const EnvelopeError& e) {
        refused_.push_back(ErrorResult(header.token, Errc::kBadInput, e.what()));
        continue;
      }
      if (task.event.envelope.id.empty()) {
        task.event.envelope.id = fmt::format("{}-{}-{}", header.topic, header.partition, header.offset);
      }
      if (header.attempt > 0) task.event.envelope.attempt = static_cast<int>(header.attempt);
      task.event.key = std::move(header.key);
      task.event.payload = payload.to_string();
      task.event.topic = std::move(header.topic);
      task.event.partition = header.partition;
      task.event.offset = header.offset;
      if (!overflow_.empty() || !pool_->TrySubmit(task)) overflow_.push_back(std::move(task));
    }
  }

  void SubmitOverflow() {
    while (!overflow_.empty() && pool_->TrySubmit(overflow_.front())) overflow_.pop_front();
  }

  std::optional<SessionEnd> OnSignal() {
    signalfd_siginfo info{};
    if (::read(signal_fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return std::nullopt;
    const char* name = info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (!welcomed_) {
      SendBye(fmt::format("{} before WELCOME", name));
      return SessionEnd{0, false, {}};
    }
    if (draining_) {
      const std::string reason = fmt::format("{} again while draining {} tasks", name, held_.size());
      SendBye(reason);
      return SessionEnd{3, true, reason};
    }
    draining_ = true;
    SendCommand(wire::cmd::kDraining);
    // Tasks beyond the fibers wait their turn, so allow one longest budget per round of fibers.
    milliseconds longest{0};
    for (const auto& [token, held] : held_) longest = std::max(longest, held.budget);
    const auto rounds = static_cast<std::int64_t>((held_.size() + fibers_ - 1) / fibers_);
    drain_deadline_ = longest.count() > 0 ? Clock::now() + std::max<std::int64_t>(rounds, 1) * longest +
                                                options_.watchdog_grace * 2
                                          : Clock::time_point::max();
    log_->info("{}: draining {} tasks, then leaving", name, held_.size());
    return std::nullopt;
  }

  // --- timers ---------------------------------------------------------------------------------

  std::optional<SessionEnd> OnTimers(Clock::time_point now) {
    if (auto overdue = watchdog_.FirstOverdue(now)) {
      const std::string reason = fmt::format("watchdog: task {} ran {} ms, past its timeout of {} ms",
                                             overdue->token, overdue->ran.count(), overdue->budget.count());
      log_->error("{}; leaving (a running call cannot be cancelled)", reason);
      refused_.push_back(ErrorResult(
          overdue->token, Errc::kTimeout, fmt::format("timed out after {} ms", overdue->budget.count()),
          static_cast<std::uint32_t>(std::min<std::int64_t>(overdue->ran.count() * 1000, UINT32_MAX))));
      FlushResults();
      SendBye(reason);
      return SessionEnd{3, true, reason};
    }
    if (draining_ && held_.empty() && overflow_.empty()) {
      log_->info("drained: every task reported");
      SendBye("drained");
      return SessionEnd{0, false, {}};
    }
    if (draining_ && now >= drain_deadline_) {
      const std::string reason = fmt::format("drain timed out with {} tasks unreported", held_.size());
      SendBye(reason);
      return SessionEnd{3, true, reason};
    }
    if (welcomed_ && now >= next_heartbeat_) {
      SendControl(wire::cmd::kHeartbeat,
                  {{"in_flight", held_.size()}, {"running", watchdog_.Running()}, {"rss_kb", RssKb()}});
      next_heartbeat_ = now + heartbeat_;
    }
    if (now - last_heard_ >= kSilentIntervals * heartbeat_) Reconnect();
    return std::nullopt;
  }

  WorkerOptions options_;
  std::size_t capacity_;
  std::size_t fibers_ = 1;
  std::shared_ptr<spdlog::logger> log_;
  int signal_fd_ = -1;  // before ctx_: signals are blocked before ZeroMQ starts threads
  zmq::context_t ctx_;
  std::optional<zmq::socket_t> socket_;
  std::unique_ptr<functions::Function> function_;
  Watchdog watchdog_;
  std::unique_ptr<TaskPool> pool_;  // after function_ and watchdog_: destroyed before them

  bool welcomed_ = false;
  bool draining_ = false;
  milliseconds heartbeat_ = kDefaultHeartbeat;
  milliseconds timeout_{0};
  std::uint64_t max_payload_ = 0;
  std::unordered_map<std::uint64_t, Held> held_;  // received and not yet reported
  std::deque<PendingTask> overflow_;              // received, waiting for room in the pool's queue
  std::vector<CompletedTask> refused_;            // results the I/O thread made itself
  Clock::time_point last_heard_ = Clock::now();
  Clock::time_point next_heartbeat_ = Clock::now();
  Clock::time_point drain_deadline_ = Clock::time_point::max();
};

WorkerSession::WorkerSession(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
WorkerSession::~WorkerSession() = default;
SessionEnd WorkerSession::Run() { return impl_->Run(); }

}  // namespace runnel::workers
