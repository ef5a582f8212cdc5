#include "runnel/scheduler/service.hpp"

#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/broker/producer.hpp"
#include "runnel/broker/retention_guard.hpp"
#include "runnel/core/control_messages.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/log.hpp"
#include "runnel/scheduler/jobs.hpp"

namespace runnel::scheduler {
namespace {

SchedulerService::Options WithProtocolErrors(SchedulerService::Options o) {
  if (!o.protocol_errors) o.protocol_errors = std::make_shared<ProtocolErrors>();
  return o;
}

bool IsJobId(const std::string& s) {
  return !s.empty() && s.size() <= limits::kJobMax && s.front() != '.' &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-'; });
}

}  // namespace

struct SchedulerService::Impl {
  Options opt;
  std::shared_ptr<spdlog::logger> log = log::Get("scheduler");
  Scheduler scheduler;
  JobTracker jobs;
  std::unique_ptr<broker::Producer> producer;
  zmq::socket_t control;
  std::string control_endpoint;

  // Outcomes of job events, from the results thread (and failed deliveries, from the producer's).
  std::mutex inbox_mu;
  std::vector<Outcome> inbox;
  std::atomic<bool> stop{false};
  std::thread results_thread;

  explicit Impl(Options o)
      : opt(WithProtocolErrors(std::move(o))),
        scheduler(opt.schedules, opt.state_dir / "schedules.json", opt.clock()),
        jobs(opt.state_dir / "jobs"),
        control(*opt.zmq, zmq::socket_type::rep) {}

  void Deliver(Outcome o) {
    std::lock_guard lock(inbox_mu);
    inbox.push_back(std::move(o));
  }

  broker::Producer& Producer() {
    if (!producer) {
      broker::KafkaConfig config{opt.kafka_bootstrap, "runnel-scheduler", opt.kafka_options};
      broker::Producer::Options po;
      if (opt.embedded) {
        auto groups = opt.groups;
        po.retention_guard = std::make_shared<broker::RetentionGuard>(config, [groups](const std::string& topic) {
          std::vector<std::string> out;
          if (auto it = groups.find(topic); it != groups.end()) out.push_back(it->second);
          return out;
        });
      }
      producer = std::make_unique<broker::Producer>(config, po);
    }
    return *producer;
  }

  // Publishes one firing; returns {"job", "items", "function"}.
  nlohmann::json Fire(const CompiledSchedule& c, const std::string& trigger, std::optional<TimePoint> slot) {
    const TimePoint now = opt.clock();
    const std::string job = jobs.NewJobId(fmt::format("{}-{}", c.spec.name, FormatUtcCompact(slot.value_or(now))));
    JobTracker::Start start{job, c.spec.name, c.spec.function, trigger, slot};
    scheduler.NoteJob(c.spec.name, job, now);
    std::vector<BatchItem> items;
    try {
      items = ListBatchItems(c.spec);
    } catch (const Error& e) {
      log->error("schedule {}: job {} cannot start: {}", c.spec.name, job, e.what());
      jobs.BeginFailed(start, e.what(), now);
      return {{"job", job}, {"items", 0}, {"function", c.spec.function}, {"error", e.what()}};
    }
    jobs.Begin(start, items, now);  // before publishing: an outcome may come back at once
    const std::string& topic = opt.topics.at(c.spec.function);
    for (auto& item : items) {
      item.envelope.job_id = job;
      Outcome undelivered;
      undelivered.id = item.envelope.id;
      undelivered.function = c.spec.function;
      undelivered.status = OutcomeStatus::kError;
      undelivered.error_kind = "transient";
      undelivered.job_id = job;
      auto on_delivery = [this, undelivered](const broker::Delivery& d) mutable {
        if (d.Ok()) return;
        undelivered.error = "not published: " + d.error_message;
        Deliver(std::move(undelivered));
      };
      try {
        Producer().Produce({topic, broker::kAnyPartition, std::nullopt, std::move(item.payload), item.envelope.Encode()},
                           std::move(on_delivery));
      } catch (const Error& e) {
        undelivered.error = fmt::format("not published: {}", e.what());
        Deliver(std::move(undelivered));
      }
    }
    log->info("schedule {}: job {} ({}) published {} event(s) to {}", c.spec.name, job, trigger, items.size(), topic);
    return {{"job", job}, {"items", items.size()}, {"function", c.spec.function}};
  }

  // The reply to one control request, whatever its bytes: a request that does not decode gets
  // {"ok": false, "error"} and is counted (socket "control"); so does one whose answer fails.
  std::string Answer(zmq::message_t& request) {
    const auto decoded = DecodeControlRequest(request.to_string_view());
    if (!decoded) {
      std::string peer = "?";
      try {
        peer = request.gets("Peer-Address");
      } catch (const zmq::error_t&) {
      }
      opt.protocol_errors->Report("control", peer, decoded.error(), *log);
      return ControlErrorReply(decoded.error().message);
    }
    try {
      return JsonText(Answer(*decoded));
    } catch (const std::exception& e) {
      return ControlErrorReply(e.what());
    }
  }

  nlohmann::json Answer(const ControlRequest& req) {
    switch (req.op) {
      case ControlRequest::Op::kJobRun: {
        auto out = RunNow(req.schedule);
        out["ok"] = true;
        return out;
      }
      case ControlRequest::Op::kJobStatus: {
        if (!IsJobId(req.job)) return {{"ok", false}, {"error", fmt::format("'{}' is not a job id", req.job)}};
        auto record = jobs.Record(req.job);
        if (!record) return {{"ok", false}, {"error", fmt::format("no job {}", req.job)}};
        return {{"ok", true}, {"record", *record}};
      }
      case ControlRequest::Op::kJobList:
        return {{"ok", true}, {"schedules", scheduler.List()}};
    }
    return {{"ok", false}, {"error", "unknown op"}};
  }

  nlohmann::json RunNow(const std::string& name) {
    const CompiledSchedule* c = scheduler.Find(name);
    if (c == nullptr) {
      std::string known;
      for (const auto& s : scheduler.Schedules()) known += (known.empty() ? "" : ", ") + s.spec.name;
      throw ConfigError(fmt::format("no schedule '{}' in this stack ({})", name, known.empty() ? "it has none" : "schedules: " + known));
    }
    return Fire(*c, "manual", std::nullopt);
  }

  void ReadResults() {
    zmq::socket_t sub(*opt.zmq, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, 1'000'000);  // a job's burst of outcomes must not be dropped here
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(opt.results_endpoint);
    while (!stop.load()) {
      failpoint::Hit("scheduler.results");
      zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, std::chrono::milliseconds(100));
      while (true) {
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
        // [topic] then [meta][output] per outcome (docs/protocol.md §4.1); only the meta matters here.
        for (std::size_t i = 1; i + 1 < frames.size(); i += 2) {
          if (frames[i].to_string_view().find("\"job\"") == std::string_view::npos) continue;
          try {
            Outcome o = Outcome::FromFrames(frames[i].to_string_view(), {});
            if (!o.job_id.empty()) Deliver(std::move(o));
          } catch (const std::exception& e) {
            log->warn("results feed: {}", e.what());
          }
        }
      }
    }
  }
};

SchedulerService::SchedulerService(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& s = *impl_;
  s.control.set(zmq::sockopt::linger, 0);
  s.control.bind("tcp://127.0.0.1:*");
  s.control_endpoint = s.control.get(zmq::sockopt::last_endpoint);
  if (!s.opt.results_endpoint.empty()) {
    s.results_thread = std::thread([&s] {
      // No end of this thread goes unnoticed: without it no job would ever complete.
      std::string failure;
      try {
        s.ReadResults();
        if (!s.stop.load()) failure = "its results reader ended without being asked to stop";
      } catch (const std::exception& e) {
        failure = fmt::format("its results reader failed: {}", e.what());
      } catch (...) {
        failure = "its results reader failed: an unknown exception";
      }
      if (failure.empty()) return;
      s.log->critical("scheduler: {}", failure);
      if (s.opt.on_failure) s.opt.on_failure(failure);
    });
  }
}

SchedulerService::~SchedulerService() {
  auto& s = *impl_;
  s.stop.store(true);
  if (s.results_thread.joinable()) s.results_thread.join();
  try {
    if (s.producer) s.producer->Flush(std::chrono::seconds(10));
    Tick();  // count what arrived, write the records
    s.jobs.Flush(s.opt.clock(), true);
  } catch (const std::exception& e) {
    s.log->error("scheduler: job records may miss the last outcomes: {}", e.what());
  }
}

const std::string& SchedulerService::ControlEndpoint() const { return impl_->control_endpoint; }

nlohmann::json SchedulerService::RunNow(const std::string& schedule) { return impl_->RunNow(schedule); }

void SchedulerService::Tick() {
  auto& s = *impl_;
  failpoint::Hit("scheduler.tick");
  for (const auto& firing : s.stop.load() ? std::vector<Scheduler::Firing>{} : s.scheduler.Due(s.opt.clock())) {
    if (const auto* c = s.scheduler.Find(firing.schedule)) s.Fire(*c, firing.catch_up ? "catch-up" : "cron", firing.slot);
  }
  // Control requests: each answered at once, so the REP socket is never left mid-exchange.
  if (!s.stop.load()) {
    for (int i = 0; i < 16; ++i) {
      zmq::message_t request;
      if (!s.control.recv(request, zmq::recv_flags::dontwait)) break;
      const std::string reply = s.Answer(request);
      try {
        s.control.send(zmq::buffer(reply), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        s.log->warn("control socket: could not send a reply: {}", e.what());
      }
    }
  }
  std::vector<Outcome> arrived;
  {
    std::lock_guard lock(s.inbox_mu);
    arrived.swap(s.inbox);
  }
  const TimePoint now = s.opt.clock();
  for (const auto& o : arrived) s.jobs.OnOutcome(o, now);
  s.jobs.Flush(now, false);
}

std::string SchedulerService::Summary() const {
  std::string out;
  for (const auto& j : impl_->scheduler.List()) {
    out += fmt::format("  schedule {:<16} {:<16} {} -> {}  next {}\n", j["name"].get<std::string>(), j["cron"].get<std::string>(),
                       j["timezone"].get<std::string>(), j["function"].get<std::string>(), j["next_fire_local"].get<std::string>());
  }
  return out;
}

}  // namespace runnel::scheduler
