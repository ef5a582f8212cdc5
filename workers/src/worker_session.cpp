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
#include "runnel/core/fd.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/protocol_errors.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/core/worker_messages.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/functions/handlers.hpp"
#include "runnel/security/curve.hpp"
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
UniqueFd OpenSignalFd(bool handle_signals) {
  if (!handle_signals) return UniqueFd();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  return UniqueFd(fd);
}

std::string DefaultWorkerId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return fmt::format("{}-{}", host[0] != '\0' ? host : "worker", ::getpid());
}

SessionEnd Refused(std::string reason) { return SessionEnd{1, false, std::move(reason)}; }

}  // namespace

class WorkerSession::Impl {
 public:
  explicit Impl(WorkerOptions options)
      : options_(std::move(options)),
        capacity_(options_.capacity.value_or(kDefaultCapacity)),
        log_(log::kWorker.Logger()),
        signal_fd_(OpenSignalFd(options_.handle_signals)),
        watchdog_(options_.watchdog_grace) {
    if (options_.id.empty()) options_.id = DefaultWorkerId();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    socket_.reset();
    pool_.reset();  // waits for the calls in progress (see the class comment)
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
    if (signal_fd_) items.push_back({nullptr, signal_fd_.Get(), ZMQ_POLLIN, 0});
    zmq::poll(items, PollWait(Clock::now()));

    if (signal_fd_ && (items.back().revents & ZMQ_POLLIN) != 0) {
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
    if (options_.curve && security::UsesCurve(options_.dispatcher))
      security::MakeClient(*socket_, *options_.curve);
    try {
      socket_->connect(options_.dispatcher);
    } catch (const zmq::error_t& e) {
      socket_.reset();
      throw ConfigError(fmt::format("cannot connect to dispatcher '{}': {}", options_.dispatcher, e.what()));
    }
    last_heard_ = Clock::now();
    // While draining, announce no credit, then say so: this HELLO only re-registers the worker so
    // its results are accepted.
    wire::Hello hello;
    hello.function = options_.function;
    hello.worker = options_.id;
    hello.pid = ::getpid();
    hello.capacity = draining_ ? 0 : static_cast<std::int64_t>(capacity_);
    hello.draining = draining_;
    SendControl(wire::cmd::kHello, wire::Encode(hello));
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

  void SendControl(std::string_view command, const std::string& body) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(command);
    frames.emplace_back(body.data(), body.size());
    Send(std::move(frames));
  }

  void SendBye(const std::string& reason) {
    SendControl(wire::cmd::kBye, wire::Encode(wire::Reason{reason}));
  }

  // A message from the dispatcher this worker cannot use: logged (at most once a second), dropped.
  void Dropped(const DecodeError& error) { dropped_.Report("worker", options_.dispatcher, error, *log_); }

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
    const auto command = wire::ParseCommand(frames[0].to_string_view());
    if (!command) {
      Dropped(
          {DecodeErrc::kUnknownCommand, fmt::format("unknown command '{}' from the dispatcher",
                                                    ProtocolErrors::PeerName(frames[0].to_string_view()))});
      return std::nullopt;
    }
    const std::string_view body = frames.size() > 1 ? frames[1].to_string_view() : std::string_view();
    switch (*command) {
      case wire::Command::kHeartbeat:
        return std::nullopt;
      case wire::Command::kTasks:
        OnTasks(frames);
        return std::nullopt;
      case wire::Command::kWelcome: {
        auto welcome = wire::DecodeWelcome(body);
        if (!welcome) {
          SendBye("malformed WELCOME");
          return Refused(fmt::format("malformed WELCOME from the dispatcher: {}", welcome.error().message));
        }
        return OnWelcome(*welcome);
      }
      case wire::Command::kReject: {
        const auto reject = wire::DecodeReject(body);
        const std::string reason = !reject ? reject.error().message : reject->reason;
        return Refused(fmt::format("the dispatcher rejected this worker: {}",
                                   reason.empty() ? "no reason given" : reason));
      }
      case wire::Command::kExit: {
        const auto exit = wire::DecodeExit(body);
        const std::string why = !exit ? exit.error().message : exit->reason;
        const std::string reason =
            fmt::format("exit requested by the dispatcher: {}", why.empty() ? "no reason given" : why);
        SendBye(reason);
        return SessionEnd{3, pool_ != nullptr, reason};
      }
      default:
        Dropped({DecodeErrc::kUnknownCommand,
                 fmt::format("{} is a worker's command, not a dispatcher's", wire::CommandName(*command))});
        return std::nullopt;
    }
  }

  std::optional<SessionEnd> OnWelcome(const wire::Welcome& welcome) {
    if (welcome.version != wire::kVersion) {
      return Refused(fmt::format("the dispatcher speaks protocol version {}, this worker {}", welcome.version,
                                 wire::kVersion));
    }
    if (welcome.function != options_.function) {
      return Refused(
          fmt::format("the dispatcher serves function '{}', not '{}'", welcome.function, options_.function));
    }
    heartbeat_ = milliseconds(welcome.heartbeat_ms);
    timeout_ = milliseconds(welcome.timeout_ms);
    max_payload_ = static_cast<std::uint64_t>(welcome.max_payload);
    next_heartbeat_ = Clock::now();
    if (welcomed_) {
      log_->info("welcomed again by {} after reconnecting; keeping the function built at the first WELCOME",
                 options_.dispatcher);
      return std::nullopt;
    }
    // A dispatcher without "handler" (protocol §3.1) serves the builtin of the function's name.
    const std::string handler = welcome.handler.value_or("builtin:" + options_.function);
    try {
      function_ =
          functions::CreateFunction(handler, welcome.params, {options_.function, welcome.handler_dir});
    } catch (const functions::FunctionError& e) {
      const std::string reason =
          e.Code() == functions::Errc::kUnknownFunction
              ? e.what()
              : fmt::format("cannot build function '{}' ({}): {}", options_.function, handler, e.what());
      SendBye(reason);
      return Refused(reason);
    }
    std::optional<BatchSpec> configured;
    if (welcome.batch) {
      configured =
          BatchSpec{static_cast<std::size_t>(welcome.batch->size), milliseconds(welcome.batch->window_ms)};
    }
    BatchSpec batch;
    try {
      batch = functions::EffectiveBatch(*function_, configured);
    } catch (const Error& e) {
      const std::string reason =
          fmt::format("cannot run function '{}' ({}): {}", options_.function, handler, e.what());
      SendBye(reason);
      return Refused(reason);
    }
    const auto memory_mb = static_cast<std::uint64_t>(welcome.memory_mb);
    if (options_.apply_memory_limit) ApplyMemoryLimit(memory_mb);
    const auto concurrency = static_cast<std::size_t>(welcome.concurrency);
    PoolOptions pool;
    pool.function_name = options_.function;
    pool.params = welcome.params;
    pool.output_dir = welcome.output_dir;
    pool.outputs = welcome.outputs;
    // Header values may be credentials: only their count is shown.
    const std::string outputs =
        welcome.outputs ? fmt::format("PUT to {} ({} header(s))", UrlForLogs(welcome.outputs->url),
                                      welcome.outputs->headers.size())
                        : fmt::format("in {}", welcome.output_dir.empty() ? "./outputs" : welcome.output_dir);
    pool.threads = options_.threads;
    fibers_ = std::max<std::size_t>(1, std::min(capacity_, concurrency > 0 ? concurrency : kDefaultFibers));
    // Room for a full batch per call, unless --capacity set a limit: say so before tasks flow.
    const std::size_t wanted = std::min(kMaxBatchCapacity, fibers_ * batch.size);
    if (!options_.capacity && wanted > capacity_) {
      capacity_ = wanted;
      SendControl(wire::cmd::kCapacity, wire::Encode(wire::Capacity{static_cast<std::int64_t>(capacity_)}));
    }
    pool.fibers = fibers_;
    pool.queued = capacity_;
    pool.batch = batch;
    pool_ = std::make_unique<TaskPool>(*function_, std::move(pool), watchdog_);
    welcomed_ = true;
    log_->info(
        "worker {} runs '{}' for {}: capacity {}, {} fibers on {} threads, batch {} within {} ms, timeout {} "
        "ms, memory {} MiB, outputs {}",
        options_.id, options_.function, options_.dispatcher, capacity_, fibers_, options_.threads, batch.size,
        batch.window.count(), timeout_.count(), memory_mb, outputs);
    return std::nullopt;
  }

  // Every task of the message goes to the pool (or waits in overflow_ for room); a task the worker
  // refuses before running gets its error result here.
  void OnTasks(std::vector<zmq::message_t>& frames) {
    if (!welcomed_) {
      Dropped(
          {DecodeErrc::kNoSession, fmt::format("TASKS before WELCOME: ignored ({} frames)", frames.size())});
      return;
    }
    if (frames.size() < 3 || frames.size() % 2 == 0) {
      Dropped(
          {DecodeErrc::kBadFrames,
           fmt::format("TASKS with {} frames after the command (pairs of header and payload expected); an "
                       "incomplete pair is ignored",
                       frames.size() - 1)});
    }
    for (std::size_t i = 1; i + 1 < frames.size(); i += 2) {
      auto decoded = wire::TryDecodeTask(frames[i].to_string_view());
      if (!decoded) {
        // No token to answer with: the dispatcher's own deadline will re-dispatch it.
        Dropped(decoded.error());
        continue;
      }
      wire::TaskHeader& header = *decoded;
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
    if (::read(signal_fd_.Get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info))
      return std::nullopt;
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
      wire::Heartbeat beat;
      beat.in_flight = static_cast<std::int64_t>(held_.size());
      beat.running = static_cast<std::int64_t>(watchdog_.Running());
      beat.rss_kb = static_cast<std::int64_t>(RssKb());
      SendControl(wire::cmd::kHeartbeat, wire::Encode(beat));
      next_heartbeat_ = now + heartbeat_;
    }
    if (now - last_heard_ >= kSilentIntervals * heartbeat_) Reconnect();
    return std::nullopt;
  }

  WorkerOptions options_;
  std::size_t capacity_;
  std::size_t fibers_ = 1;
  std::shared_ptr<spdlog::logger> log_;
  ProtocolErrors dropped_;  // what the dispatcher sent that this worker could not use
  UniqueFd signal_fd_;      // before ctx_: signals are blocked before ZeroMQ starts threads
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
