// Dispatcher::Loop, the worker side: sessions (HELLO, heartbeats, goodbyes, lost workers), credit,
// handing queued events out as TASKS, their results coming back, deadlines and retries coming due.
#include <fmt/format.h>

#include <zmq_addon.hpp>

#include "dispatcher_loop.hpp"
#include "runnel/core/trace_context.hpp"
#include "runnel/core/worker_messages.hpp"

namespace runnel::broker {
namespace {

constexpr auto kDeadlineScan = std::chrono::milliseconds(50);
// Beyond the function's timeout, how long the dispatcher lets a worker's own watchdog act first.
constexpr auto kDeadlineGrace = std::chrono::milliseconds(500);

}  // namespace

void Dispatcher::Loop::ReceiveFromWorkers() {
  for (int n = 0; n < 10'000; ++n) {
    std::vector<zmq::message_t>& frames = received_;
    frames.clear();
    const auto got = zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
    if (!got) return;
    const std::string identity(frames[0].to_string_view());  // a ROUTER always puts the routing id first
    if (frames.size() < 2 || frames[1].size() == 0) {
      ProtocolError(identity, {DecodeErrc::kEmpty, "a message without a command"});
      continue;
    }
    const auto command = wire::ParseCommand(frames[1].to_string_view());
    if (!command) {
      ProtocolError(identity,
                    {DecodeErrc::kUnknownCommand,
                     fmt::format("unknown command '{}' ({} bytes)",
                                 ProtocolErrors::PeerName(frames[1].to_string_view()), frames[1].size())});
      continue;
    }
    OnWorkerMessage(identity, *command, frames);
  }
}

void Dispatcher::Loop::OnWorkerMessage(const std::string& identity, wire::Command command,
                                       const std::vector<zmq::message_t>& frames) {
  using wire::Command;
  if (command == Command::kHello) return OnHello(identity, frames);
  if (command == Command::kResults) return OnResults(identity, frames);
  if (command != Command::kHeartbeat && command != Command::kCapacity && command != Command::kDraining &&
      command != Command::kBye) {
    return ProtocolError(
        identity, {DecodeErrc::kUnknownCommand,
                   fmt::format("{} is a dispatcher's command, not a worker's", wire::CommandName(command))});
  }
  auto it = workers_.find(identity);
  if (it == workers_.end()) {
    // A worker lost lately (or a connection it left for a new one) may still be talking: it will
    // say HELLO again. Anything else has skipped HELLO.
    if (!recently_lost_.contains(identity) && !former_.contains(identity)) {
      ProtocolError(identity,
                    {DecodeErrc::kNoSession,
                     fmt::format("{} from a connection that never said HELLO", wire::CommandName(command))});
    }
    return;
  }
  if (frames.size() > 3) {
    return ProtocolError(
        identity, {DecodeErrc::kBadFrames, fmt::format("{} with {} frames after the command (at most 1)",
                                                       wire::CommandName(command), frames.size() - 2)});
  }
  const std::string_view body = frames.size() > 2 ? frames[2].to_string_view() : std::string_view();
  Worker& w = it->second;
  w.last_heard = Clock::now();
  switch (command) {
    case Command::kHeartbeat: {
      const auto beat = wire::DecodeHeartbeat(body);
      if (!beat) return ProtocolError(identity, beat.error());
      w.rss_kb = beat->rss_kb;
      return;
    }
    case Command::kCapacity: {  // the worker raised its capacity for the batch it runs
      const auto capacity = wire::DecodeCapacity(body);
      if (!capacity) return ProtocolError(identity, capacity.error());
      w.Configure(static_cast<int>(capacity->capacity), opt_.spec.concurrency,
                  static_cast<int>(Batch().size));
      log_.info("worker {} holds up to {} now (credit {})", w.id, w.capacity, w.credit);
      return;
    }
    case Command::kDraining: {
      const auto draining = wire::DecodeDraining(body);
      if (!draining) return ProtocolError(identity, draining.error());
      w.draining = true;
      log_.info("worker {} is draining ({} in flight)", w.id, w.slots.size());
      return;
    }
    case Command::kBye: {
      // A BYE whose body does not decode still ends the session, as one that says nothing about
      // what the worker ran: its events are dispatched again as the next attempt.
      const auto bye = wire::DecodeBye(body);
      if (!bye) ProtocolError(identity, bye.error());
      const std::string reason = bye ? bye->reason : std::string();
      // A worker leaves "drained" only once it reported every task it received, and its results
      // come before its BYE on the connection: what it still holds here never reached it.
      WorkerLost(identity, fmt::format("said goodbye: {}", reason.empty() ? "no reason given" : reason),
                 reason == "drained" ? Lost::kNeverReceived : Lost::kMayHaveRun);
      return;
    }
    default:
      return;
  }
}

void Dispatcher::Loop::ProtocolError(const std::string& identity, const DecodeError& error) {
  ++stats_.protocol_errors[std::string(DecodeErrcName(error.reason))];
  opt_.protocol_errors->Report(socket_name_, identity, error, log_.Unprefixed());
}

void Dispatcher::Loop::RememberLost(const std::string& identity) {
  constexpr std::size_t kRecentlyLost = 1024;
  if (recently_lost_.insert(identity).second) recently_lost_order_.push_back(identity);
  while (recently_lost_order_.size() > kRecentlyLost) {
    recently_lost_.erase(recently_lost_order_.front());
    recently_lost_order_.pop_front();
  }
}

std::uint64_t Dispatcher::Loop::NewToken() {
  for (;;) {
    const std::uint64_t token = tokens_.Next();
    if (token != 0 && !by_token_.contains(token)) return token;
  }
}

std::string Dispatcher::Loop::ConnectionUser(const zmq::message_t& frame) const {
  if (opt_.guard == nullptr) return {};
  const char* user = zmq_msg_gets(frame.handle(), "User-Id");
  return user == nullptr ? std::string() : std::string(user);
}

bool Dispatcher::Loop::Admitted(const std::string& user) const {
  return opt_.guard == nullptr || user.empty() || opt_.guard->StillAdmitted(user, socket_name_);
}

void Dispatcher::Loop::OnHello(const std::string& identity, const std::vector<zmq::message_t>& frames) {
  // A HELLO that does not decode is a protocol error (counted, logged by ProtocolError); one that
  // decodes but does not fit this dispatcher is a worker started wrongly (logged here). Both get
  // REJECT with the reason, so a real worker exits saying why.
  std::string reason;
  bool counted = false;
  wire::Hello hello;
  if (frames.size() != 3) {
    const DecodeError error{
        DecodeErrc::kBadFrames,
        fmt::format("HELLO with {} frames after the command (1 expected)", frames.size() - 2)};
    ProtocolError(identity, error);
    reason = error.message;
    counted = true;
  } else if (auto decoded = wire::DecodeHello(frames[2].to_string_view()); !decoded) {
    ProtocolError(identity, decoded.error());
    reason = decoded.error().message;
    counted = true;
  } else {
    hello = std::move(*decoded);
    if (hello.version != wire::kVersion) {
      reason = fmt::format("protocol version {} (this dispatcher speaks {})", hello.version, wire::kVersion);
    } else if (hello.function != opt_.spec.name) {
      reason = fmt::format("this dispatcher serves '{}', not '{}'", opt_.spec.name, hello.function);
    } else if (hello.capacity < 1 && !hello.draining) {
      reason = "capacity must be at least 1";
    } else if (!Admitted(ConnectionUser(frames[1]))) {
      reason = "the join token this connection came in with was revoked or has expired";
    }
  }
  if (!reason.empty()) {
    std::vector<zmq::message_t> out;
    out.push_back(zmq::message_t(wire::cmd::kReject));
    out.push_back(zmq::message_t(wire::Encode(wire::Reason{reason})));
    Send(identity, std::move(out));
    if (!counted) log_.warn("refused a worker: {}", reason);
    return;
  }
  if (workers_.contains(identity)) WorkerLost(identity, "reconnected");
  Worker w;
  w.identity = identity;
  w.id = hello.worker;
  w.user = ConnectionUser(frames[1]);
  w.pid = static_cast<int>(hello.pid);
  // The credit starts at what the worker runs at once (a full batch per call) and grows with
  // prefetch once its calls prove fast (Worker::Measured): events held idle at a slow worker are
  // events another could be running. A draining worker that reconnects announces 0 and gets none.
  w.Configure(std::max(static_cast<int>(hello.capacity), 1), opt_.spec.concurrency,
              static_cast<int>(Batch().size));
  w.draining = hello.draining;
  w.last_heard = Clock::now();
  AdoptReconnected(w);
  wire::Welcome welcome;
  welcome.function = opt_.spec.name;
  welcome.heartbeat_ms = opt_.heartbeat.count();
  welcome.timeout_ms = opt_.spec.timeout.count();
  welcome.params = opt_.spec.params;
  welcome.max_payload = static_cast<std::int64_t>(opt_.spec.max_payload);
  welcome.memory_mb = opt_.spec.memory_mb;
  welcome.output_dir = opt_.output_dir;
  welcome.outputs = opt_.outputs;
  welcome.concurrency = opt_.spec.concurrency;
  welcome.handler = opt_.spec.handler;
  welcome.handler_dir = opt_.spec.handler_dir;
  if (opt_.spec.batch)
    welcome.batch = wire::WelcomeBatch{static_cast<std::int64_t>(Batch().size), Batch().window.count()};
  std::vector<zmq::message_t> out;
  out.push_back(zmq::message_t(wire::cmd::kWelcome));
  out.push_back(zmq::message_t(wire::Encode(welcome)));
  if (w.draining) {
    log_.info("worker {} (pid {}) joined, draining", w.id, w.pid);
  } else {
    log_.info("worker {} (pid {}) joined with capacity {}, {} at once", w.id, w.pid, w.capacity,
              w.concurrency);
  }
  recently_lost_.erase(identity);
  workers_[identity] = std::move(w);
  Send(identity, std::move(out));
}

// A result counts only from the connection that holds its task, or from an earlier connection of
// the same worker (it reconnected, AdoptReconnected): a result for a task another connection holds
// is dropped and counted. A token is random and never reused while its task is out, so a result
// for an event dispatched again meanwhile finds nothing and is ignored (late_results).
void Dispatcher::Loop::OnResults(const std::string& identity, const std::vector<zmq::message_t>& frames) {
  std::string holder = identity;
  if (auto sender = workers_.find(identity); sender != workers_.end()) {
    sender->second.last_heard = Clock::now();
  } else if (auto former = former_.find(identity); former != former_.end()) {
    holder = former->second;
  }
  if (frames.size() < 4 || frames.size() % 2 != 0) {
    ProtocolError(identity,
                  {DecodeErrc::kBadFrames,
                   fmt::format("RESULTS with {} frames after the command (pairs of header and output "
                               "expected)",
                               frames.size() - 2)});
  }
  for (std::size_t i = 2; i + 1 < frames.size(); i += 2) {
    auto decoded = wire::TryDecodeResult(frames[i].to_string_view());
    if (!decoded) {
      ProtocolError(identity, decoded.error());
      continue;
    }
    wire::ResultHeader& header = *decoded;
    auto it = by_token_.find(header.token);
    if (it == by_token_.end()) {
      ++stats_.late_results;  // the event went to another worker meanwhile
      continue;
    }
    const std::uint64_t slot_id = it->second;
    Slot& slot = slots_.at(slot_id);
    if (slot.connection != holder) {
      ProtocolError(identity,
                    {DecodeErrc::kForeignToken, "a result for a task this connection does not hold"});
      continue;
    }
    by_token_.erase(it);
    // An in-flight event's holder is registered (WorkerLost takes its events back when it goes).
    Worker& w = workers_.at(slot.connection);
    w.slots.erase(slot_id);
    ++w.completed;
    w.total_service_us += header.duration_us;
    w.Measured(header.duration_us);
    ++stats_.results;
    stats_.service_us += header.duration_us;
    if (opt_.observer) {
      const bool ok = header.status == wire::ResultStatus::kOk;
      const int c = header.error_code;
      opt_.observer->Answered(slot_id, w.id, header.duration_us, ok, ok ? "" : ErrcName(ErrcFromCode(c)),
                              header.error);
    }
    if (header.status == wire::ResultStatus::kOk) {
      Decision answer;
      answer.output = std::string(frames[i + 1].to_string_view());
      answer.content_type = header.content_type;
      answer.files_json = header.files_json;
      answer.duration_us = header.duration_us;
      answer.worker = w.id;
      answer.emitted = std::move(header.emitted);
      Decide(slot_id, std::move(answer));
      continue;
    }
    const int code = header.error_code;
    const Errc errc = ErrcFromCode(code);
    Fail(slot_id, errc, header.error, w.id);
  }
}

// A worker that heard nothing from us for a while reconnects on a new socket (a new routing id)
// and says HELLO again with the same id and pid (protocol §3.2). The events its old connection
// held are still running there: they move to the new connection, so their results are accepted
// (on either connection: former_) and the old connection's silence does not dispatch them a
// second time.
void Dispatcher::Loop::AdoptReconnected(Worker& w) {
  auto old = std::find_if(workers_.begin(), workers_.end(), [&](const auto& entry) {
    return entry.first != w.identity && entry.second.pid == w.pid && entry.second.id == w.id;
  });
  if (old == workers_.end()) return;
  w.slots = std::move(old->second.slots);
  w.service_us = old->second.service_us;
  w.completed = old->second.completed;
  w.total_service_us = old->second.total_service_us;
  w.draining = w.draining || old->second.draining;
  for (std::uint64_t slot_id : w.slots) slots_.at(slot_id).connection = w.identity;
  for (auto& [former, current] : former_) {
    if (current == old->first) current = w.identity;
  }
  former_[old->first] = w.identity;
  log_.info("worker {} (pid {}) reconnected and keeps its {} event(s)", w.id, w.pid, w.slots.size());
  workers_.erase(old);
}

void Dispatcher::Loop::WorkerLost(const std::string& identity, const std::string& reason, Lost lost) {
  auto it = workers_.find(identity);
  if (it == workers_.end()) return;
  Worker w = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_lost;
  RememberLost(identity);
  for (auto former = former_.begin(); former != former_.end();) {
    if (former->second != identity) {
      ++former;
      continue;
    }
    RememberLost(former->first);
    former = former_.erase(former);
  }
  const bool never_received = lost == Lost::kNeverReceived;
  if (never_received && !w.slots.empty()) {
    log_.info(
        "worker {} (pid {}) left ({}); {} event(s) sent after it had drained are dispatched "
        "again, as the same attempt",
        w.id, w.pid, reason, w.slots.size());
  } else if (!never_received) {
    log_.info("worker {} (pid {}) left ({}); {} event(s) dispatched again", w.id, w.pid, reason,
              w.slots.size());
  }
  for (std::uint64_t slot_id : w.slots) {
    Slot& slot = slots_.at(slot_id);
    by_token_.erase(slot.token);
    ++stats_.redispatched;
    if (never_received) {
      if (opt_.observer) opt_.observer->Abandoned(slot_id, w.id, KindName(ErrorKind::kUndelivered), reason);
      slot.state = Slot::State::kQueued;
      queue_.Requeue(slot_id);
      continue;
    }
    if (opt_.observer) opt_.observer->Abandoned(slot_id, w.id, KindName(ErrorKind::kWorkerLost), reason);
    ++slot.attempt;
    if (slot.attempt > opt_.spec.retry.max_attempts) {
      Decide(slot_id,
             Decision::Failure(OutcomeStatus::kDeadLetter, std::string(KindName(ErrorKind::kWorkerLost)),
                               fmt::format("lost with its worker {} ({}) on every one of {} attempts", w.id,
                                           reason, slot.attempt - 1)));
      continue;
    }
    slot.state = Slot::State::kQueued;
    queue_.Requeue(slot_id);
  }
}

void Dispatcher::Loop::Send(const std::string& identity, std::vector<zmq::message_t> frames) {
  frames.insert(frames.begin(), zmq::message_t(identity));
  SendRouted(identity, frames);
}

void Dispatcher::Loop::SendRouted(const std::string& identity, std::vector<zmq::message_t>& frames) {
  try {
    if (!zmq::send_multipart(router_, frames, zmq::send_flags::dontwait)) {
      log_.warn("a worker's queue is full; dropping the message");
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      WorkerLost(identity, "unreachable");
      return;
    }
    throw;
  }
}

void Dispatcher::Loop::Dispatch() {
  if (queue_.Ready() == 0 || workers_.empty()) return;
  const auto now = Clock::now();
  for (;;) {
    // The worker holding the fewest events (then the one with most free credit): spreads events
    // over every worker, also when prefetch has given one of them more credit than the others
    // (a newcomer has not earned its prefetch yet and would otherwise get nothing).
    Worker* best = nullptr;
    for (auto& [identity, w] : workers_) {
      if (w.Free() <= 0) continue;
      if (best == nullptr || w.slots.size() < best->slots.size() ||
          (w.slots.size() == best->slots.size() && w.Free() > best->Free())) {
        best = &w;
      }
    }
    if (best == nullptr) break;
    const auto slot_id = queue_.Pop();
    if (!slot_id) break;
    Slot& slot = slots_.at(*slot_id);
    if (!slot.handed_off && !Owns(slot.msg.partition))
      HandOff(*slot_id, "its partition was revoked before it ran");
    if (slot.handed_off) {  // its partition went to another stack while it waited
      queue_.Release(slot.msg.key);
      slots_.erase(*slot_id);
      continue;
    }
    slot.state = Slot::State::kInFlight;
    slot.token = NewToken();
    slot.connection = best->identity;
    // Behind the events the worker already holds, this one may wait a timeout per round of its
    // concurrent calls before its own call starts (the worker's budget counts from that start).
    const auto rounds = 1 + static_cast<int>(best->slots.size()) / best->concurrency;
    slot.deadline = now + rounds * (opt_.spec.timeout + Batch().window) + kDeadlineGrace;
    by_token_[slot.token] = *slot_id;
    best->slots.insert(*slot_id);
    ++stats_.attempts;
    if (opt_.observer) opt_.observer->Dispatched(*slot_id, slot.attempt, best->id);
    wire::TaskHeader task;
    task.token = slot.token;
    task.topic = slot.msg.topic;
    task.partition = slot.msg.partition;
    task.offset = slot.msg.offset;
    task.has_key = slot.msg.key.has_value();
    if (slot.msg.key) task.key = *slot.msg.key;
    task.attempt = static_cast<std::uint32_t>(slot.attempt);
    task.timeout_ms = static_cast<std::uint32_t>(opt_.spec.timeout.count());
    slot.span_id = NewSpanId();  // a span per attempt
    task.headers =
        WithTraceContext(slot.msg.headers, slot.envelope.trace_id, slot.span_id, slot.envelope.trace_flags);
    auto& frames = batches_[best->identity];
    if (frames.empty()) {
      frames.push_back(zmq::message_t(best->identity));
      frames.push_back(zmq::message_t(wire::cmd::kTasks));
    }
    frames.push_back(zmq::message_t(wire::Encode(task)));
    frames.push_back(zmq::message_t(slot.msg.value));
  }
  for (auto& [identity, frames] : batches_) {
    if (frames.empty()) continue;
    if (log_.should_log(spdlog::level::debug)) {
      log_.debug("{} event(s) to worker {}", (frames.size() - 2) / 2, workers_.at(identity).id);
    }
    SendRouted(identity, frames);
    frames.clear();
  }
  std::erase_if(batches_, [this](const auto& batch) { return !workers_.contains(batch.first); });
}

void Dispatcher::Loop::Heartbeats(Clock::time_point now) {
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + opt_.heartbeat;
  std::vector<std::string> silent;
  for (const auto& [identity, w] : workers_) {
    if (now - w.last_heard > 3 * opt_.heartbeat) silent.push_back(identity);
  }
  for (const auto& identity : silent) WorkerLost(identity, "silent for 3 heartbeats");
  // A worker whose join token was revoked or expired since it joined: told, and its events go to
  // the others (protocol §6.1).
  std::vector<std::string> revoked;
  for (const auto& [identity, w] : workers_) {
    if (!Admitted(w.user)) revoked.push_back(identity);
  }
  for (const auto& identity : revoked) {
    std::vector<zmq::message_t> out;
    out.push_back(zmq::message_t(wire::cmd::kReject));
    out.push_back(zmq::message_t(
        wire::Encode(wire::Reason{"the join token of this worker was revoked or has expired"})));
    Send(identity, std::move(out));
    WorkerLost(identity, "its join token was revoked or has expired");
  }
  std::vector<std::string> identities;
  for (const auto& [identity, w] : workers_) identities.push_back(identity);
  for (const auto& identity : identities) {
    std::vector<zmq::message_t> frames;
    frames.push_back(zmq::message_t(wire::cmd::kHeartbeat));
    Send(identity, std::move(frames));
  }
}

void Dispatcher::Loop::CheckDeadlines(Clock::time_point now) {
  if (now < next_deadline_scan_) return;
  next_deadline_scan_ = now + kDeadlineScan;
  std::vector<std::uint64_t> overdue;
  for (const auto& [token, slot_id] : by_token_) {
    if (slots_.at(slot_id).deadline < now) overdue.push_back(slot_id);
  }
  for (std::uint64_t slot_id : overdue) {
    auto sit = slots_.find(slot_id);
    if (sit == slots_.end() || sit->second.state != Slot::State::kInFlight) continue;
    const std::string identity = sit->second.connection;
    auto wit = workers_.find(identity);
    const std::string worker_id = wit != workers_.end() ? wit->second.id : "?";
    by_token_.erase(sit->second.token);
    if (wit != workers_.end()) wit->second.slots.erase(slot_id);
    // A running call cannot be cancelled: the stuck worker is told to exit, and its other events
    // go elsewhere.
    std::vector<zmq::message_t> frames;
    frames.push_back(zmq::message_t(wire::cmd::kExit));
    frames.push_back(zmq::message_t(wire::Encode(wire::Reason{"an event overran its timeout"})));
    Send(identity, std::move(frames));
    if (opt_.observer)
      opt_.observer->Abandoned(slot_id, worker_id, ErrcName(Errc::kTimeout), "overran its timeout");
    Fail(slot_id, Errc::kTimeout,
         fmt::format("timed out after {} ms on worker {}", opt_.spec.timeout.count(), worker_id), worker_id);
    WorkerLost(identity, "overran a timeout");
  }
}

void Dispatcher::Loop::DueRetries(Clock::time_point now) {
  while (!retries_.empty() && retries_.top().first <= now) {
    const std::uint64_t slot_id = retries_.top().second;
    retries_.pop();
    auto it = slots_.find(slot_id);
    if (it == slots_.end() || it->second.state != Slot::State::kBackoff) continue;
    it->second.state = Slot::State::kQueued;
    queue_.Requeue(slot_id);
  }
}

}  // namespace runnel::broker
