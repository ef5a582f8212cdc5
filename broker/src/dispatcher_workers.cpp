// Dispatcher::Loop, the worker side: sessions (HELLO, heartbeats, goodbyes, lost workers), credit,
// handing queued events out as TASKS, their results coming back, deadlines and retries coming due.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <zmq_addon.hpp>

#include "dispatcher_loop.hpp"
#include "runnel/core/json.hpp"

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
    if (frames.size() < 2) continue;
    const std::string identity(View(frames[0]));
    const std::string_view cmd = View(frames[1]);
    if (cmd == wire::cmd::kHello) {
      OnHello(identity, frames);
      continue;
    }
    if (cmd == wire::cmd::kResults) {
      OnResults(identity, frames);
      continue;
    }
    auto it = workers_.find(identity);
    if (it == workers_.end()) continue;  // a worker from before a restart: it will say HELLO again
    Worker& w = it->second;
    w.last_heard = Clock::now();
    if (cmd == wire::cmd::kHeartbeat) {
      if (frames.size() > 2) {
        const auto j = nlohmann::json::parse(View(frames[2]), nullptr, false);
        if (j.is_object()) w.rss_kb = j.value("rss_kb", std::int64_t{0});
      }
    } else if (cmd == wire::cmd::kCapacity) {  // the worker raised its capacity for the batch it runs
      const auto j = frames.size() > 2 ? nlohmann::json::parse(View(frames[2]), nullptr, false) : nlohmann::json();
      if (j.is_object() && j.value("capacity", 0) >= 1) {
        w.Configure(j.value("capacity", 1), opt_.spec.concurrency, Batch().size);
        log_->info("dispatcher {}: worker {} holds up to {} now (credit {})", opt_.spec.name, w.id, w.capacity, w.credit);
      }
    } else if (cmd == wire::cmd::kDraining) {
      w.draining = true;
      log_->info("dispatcher {}: worker {} is draining ({} in flight)", opt_.spec.name, w.id, w.slots.size());
    } else if (cmd == wire::cmd::kBye) {
      const auto bye = frames.size() > 2 ? nlohmann::json::parse(View(frames[2]), nullptr, false) : nlohmann::json();
      const std::string reason = bye.is_object() ? bye.value("reason", "") : "";
      // A worker leaves "drained" only once it reported every task it received, and its results
      // come before its BYE on the connection: what it still holds here never reached it.
      WorkerLost(identity, fmt::format("said goodbye: {}", reason.empty() ? "no reason given" : reason),
                 reason == "drained" ? Lost::kNeverReceived : Lost::kMayHaveRun);
    }
  }
}

void Dispatcher::Loop::OnHello(const std::string& identity, const std::vector<zmq::message_t>& frames) {
  const auto hello = frames.size() > 2 ? nlohmann::json::parse(View(frames[2]), nullptr, false) : nlohmann::json();
  std::string reason;
  if (!hello.is_object()) {
    reason = "HELLO without a JSON body";
  } else if (hello.value("v", 0) != wire::kVersion) {
    reason = fmt::format("protocol version {} (this dispatcher speaks {})", hello.value("v", 0), wire::kVersion);
  } else if (hello.value("function", "") != opt_.spec.name) {
    reason = fmt::format("this dispatcher serves '{}', not '{}'", opt_.spec.name, hello.value("function", ""));
  } else if (hello.value("capacity", 0) < 1 && !hello.value("draining", false)) {
    reason = "capacity must be at least 1";
  }
  if (!reason.empty()) {
    std::vector<zmq::message_t> out;
    out.push_back(Frame(wire::cmd::kReject));
    out.push_back(Frame(JsonText(nlohmann::json{{"reason", reason}})));
    Send(identity, std::move(out));
    log_->warn("dispatcher {}: refused a worker: {}", opt_.spec.name, reason);
    return;
  }
  if (workers_.contains(identity)) WorkerLost(identity, "reconnected");
  Worker w;
  w.identity = identity;
  w.id = hello.value("worker", "?");
  w.pid = hello.value("pid", 0);
  // The credit starts at what the worker runs at once (a full batch per call) and grows with
  // prefetch once its calls prove fast (Worker::Measured): events held idle at a slow worker are
  // events another could be running. A draining worker that reconnects announces 0 and gets none.
  w.Configure(std::max(hello.value("capacity", 1), 1), opt_.spec.concurrency, Batch().size);
  w.draining = hello.value("draining", false);
  w.last_heard = Clock::now();
  AdoptReconnected(w);
  nlohmann::json welcome = {{"v", wire::kVersion},
                            {"function", opt_.spec.name},
                            {"heartbeat_ms", opt_.heartbeat.count()},
                            {"timeout_ms", opt_.spec.timeout.count()},
                            {"params", opt_.spec.params},
                            {"max_payload", opt_.spec.max_payload},
                            {"memory_mb", opt_.spec.memory_mb},
                            {"output_dir", opt_.output_dir},
                            {"concurrency", opt_.spec.concurrency},
                            {"handler", opt_.spec.handler},
                            {"handler_dir", opt_.spec.handler_dir}};
  if (opt_.spec.batch) welcome["batch"] = {{"size", Batch().size}, {"window_ms", Batch().window.count()}};
  std::vector<zmq::message_t> out;
  out.push_back(Frame(wire::cmd::kWelcome));
  out.push_back(Frame(JsonText(welcome)));
  if (w.draining) {
    log_->info("dispatcher {}: worker {} (pid {}) joined, draining", opt_.spec.name, w.id, w.pid);
  } else {
    log_->info("dispatcher {}: worker {} (pid {}) joined with capacity {}, {} at once", opt_.spec.name, w.id, w.pid,
               w.capacity, w.concurrency);
  }
  workers_[identity] = std::move(w);
  Send(identity, std::move(out));
}

// Results are matched by token, whichever connection they come on: a worker that reconnected may
// still have results in flight on its old one (AdoptReconnected). A token is never reused, so a
// result for an event dispatched again meanwhile finds nothing and is ignored.
void Dispatcher::Loop::OnResults(const std::string& identity, const std::vector<zmq::message_t>& frames) {
  if (auto sender = workers_.find(identity); sender != workers_.end()) sender->second.last_heard = Clock::now();
  for (std::size_t i = 2; i + 1 < frames.size(); i += 2) {
    wire::ResultHeader header;
    try {
      header = wire::DecodeResult(View(frames[i]));
    } catch (const wire::WireError& e) {
      log_->error("dispatcher {}: a worker sent a bad result: {}", opt_.spec.name, e.what());
      continue;
    }
    auto it = by_token_.find(header.token);
    if (it == by_token_.end()) {
      ++stats_.late_results;  // the event went to another worker meanwhile
      continue;
    }
    const std::uint64_t slot_id = it->second;
    by_token_.erase(it);
    Slot& slot = slots_.at(slot_id);
    // An in-flight event's holder is registered (WorkerLost takes its events back when it goes).
    Worker& w = workers_.at(slot.worker);
    w.slots.erase(slot_id);
    ++w.completed;
    w.total_service_us += header.duration_us;
    w.Measured(header.duration_us);
    ++stats_.results;
    stats_.service_us += header.duration_us;
    if (opt_.observer) {
      const bool ok = header.status == wire::ResultStatus::kOk;
      const int c = header.error_code;
      opt_.observer->Answered(slot_id, w.id, header.duration_us, ok,
                              ok ? "" : ErrcName((c >= 1 && c <= kErrcMax) ? static_cast<Errc>(c) : Errc::kInternal),
                              header.error);
    }
    if (header.status == wire::ResultStatus::kOk) {
      Finish(slot_id, OutcomeStatus::kOk, "", "", std::string(View(frames[i + 1])), header.content_type,
             header.files_json, header.duration_us, w.id, std::move(header.emitted));
      continue;
    }
    const int code = header.error_code;
    const Errc errc = (code >= 1 && code <= kErrcMax) ? static_cast<Errc>(code) : Errc::kInternal;
    slot.worker = w.id;
    Fail(slot_id, errc, header.error);
  }
}

// A worker that heard nothing from us for a while reconnects on a new socket (a new routing id)
// and says HELLO again with the same id and pid (protocol §3.2). The events its old connection
// held are still running there: they move to the new connection, so their results are accepted
// and the old connection's silence does not dispatch them a second time.
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
  for (std::uint64_t slot_id : w.slots) slots_.at(slot_id).worker = w.identity;
  log_->info("dispatcher {}: worker {} (pid {}) reconnected and keeps its {} event(s)", opt_.spec.name, w.id, w.pid,
             w.slots.size());
  workers_.erase(old);
}

void Dispatcher::Loop::WorkerLost(const std::string& identity, const std::string& reason, Lost lost) {
  auto it = workers_.find(identity);
  if (it == workers_.end()) return;
  Worker w = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_lost;
  const bool never_received = lost == Lost::kNeverReceived;
  if (never_received && !w.slots.empty()) {
    log_->info("dispatcher {}: worker {} (pid {}) left ({}); {} event(s) sent after it had drained are dispatched "
               "again, as the same attempt",
               opt_.spec.name, w.id, w.pid, reason, w.slots.size());
  } else if (!never_received) {
    log_->info("dispatcher {}: worker {} (pid {}) left ({}); {} event(s) dispatched again", opt_.spec.name, w.id, w.pid,
               reason, w.slots.size());
  }
  for (std::uint64_t slot_id : w.slots) {
    Slot& slot = slots_.at(slot_id);
    by_token_.erase(slot.token);
    ++stats_.redispatched;
    if (never_received) {
      if (opt_.observer) opt_.observer->Abandoned(slot_id, w.id, "undelivered", reason);
      slot.state = Slot::State::kQueued;
      queue_.Requeue(slot_id);
      continue;
    }
    if (opt_.observer) opt_.observer->Abandoned(slot_id, w.id, "worker-lost", reason);
    ++slot.attempt;
    if (slot.attempt > opt_.spec.retry.max_attempts) {
      Finish(slot_id, OutcomeStatus::kDeadLetter, "worker-lost",
             fmt::format("lost with its worker {} ({}) on every one of {} attempts", w.id, reason, slot.attempt - 1));
      continue;
    }
    slot.state = Slot::State::kQueued;
    queue_.Requeue(slot_id);
  }
}

void Dispatcher::Loop::Send(const std::string& identity, std::vector<zmq::message_t> frames) {
  frames.insert(frames.begin(), Frame(identity));
  SendRouted(identity, frames);
}

void Dispatcher::Loop::SendRouted(const std::string& identity, std::vector<zmq::message_t>& frames) {
  try {
    if (!zmq::send_multipart(router_, frames, zmq::send_flags::dontwait)) {
      log_->warn("dispatcher {}: a worker's queue is full; dropping the message", opt_.spec.name);
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
    slot.state = Slot::State::kInFlight;
    slot.token = next_token_++;
    slot.worker = best->identity;
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
    task.headers = slot.msg.headers;
    auto& frames = batches_[best->identity];
    if (frames.empty()) {
      frames.push_back(Frame(best->identity));
      frames.push_back(Frame(wire::cmd::kTasks));
    }
    frames.push_back(Frame(wire::Encode(task)));
    frames.push_back(Frame(slot.msg.value));
  }
  for (auto& [identity, frames] : batches_) {
    if (frames.empty()) continue;
    if (log_->should_log(spdlog::level::debug)) {
      log_->debug("dispatcher {}: {} event(s) to worker {}", opt_.spec.name, (frames.size() - 2) / 2,
                  workers_.at(identity).id);
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
  std::vector<std::string> identities;
  for (const auto& [identity, w] : workers_) identities.push_back(identity);
  for (const auto& identity : identities) {
    std::vector<zmq::message_t> frames;
    frames.push_back(Frame(wire::cmd::kHeartbeat));
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
    const std::string identity = sit->second.worker;
    auto wit = workers_.find(identity);
    const std::string worker_id = wit != workers_.end() ? wit->second.id : "?";
    by_token_.erase(sit->second.token);
    if (wit != workers_.end()) wit->second.slots.erase(slot_id);
    // A running call cannot be cancelled: the stuck worker is told to exit, and its other events
    // go elsewhere.
    std::vector<zmq::message_t> frames;
    frames.push_back(Frame(wire::cmd::kExit));
    frames.push_back(Frame(JsonText(nlohmann::json{{"reason", "an event overran its timeout"}})));
    Send(identity, std::move(frames));
    sit->second.worker = worker_id;
    if (opt_.observer) opt_.observer->Abandoned(slot_id, worker_id, ErrcName(Errc::kTimeout), "overran its timeout");
    Fail(slot_id, Errc::kTimeout,
         fmt::format("timed out after {} ms on worker {}", opt_.spec.timeout.count(), worker_id));
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
