#include "stack.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/autoscaler/autoscaler.hpp"
#include "runnel/autoscaler/local_backend.hpp"
#include "runnel/broker/dispatcher.hpp"
#include "runnel/core/component_health.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/log.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/functions/handlers.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/kafka/record_limits.hpp"
#include "runnel/scheduler/service.hpp"
#include "runnel/telemetry/stack_telemetry.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

constexpr const char* kResultsInproc = "inproc://runnel-results";
constexpr const char* kProxyControl = "inproc://runnel-results-control";
constexpr int kResultsQueue = 10'000;
// On a stop, each call in flight gets its function's timeout plus this to finish and be reported.
constexpr auto kDrainGrace = std::chrono::seconds(5);

// Every dispatcher's PUB connects to the XSUB side; subscribers connect to the XPUB side.
// `on_failure` is called on the proxy's thread when a fault ends it.
class ResultsFeed {
 public:
  ResultsFeed(zmq::context_t& ctx, std::function<void(const std::string&)> on_failure)
      : ctx_(ctx), xsub_(ctx, zmq::socket_type::xsub), xpub_(ctx, zmq::socket_type::xpub) {
    xsub_.bind(kResultsInproc);
    xpub_.set(zmq::sockopt::linger, 0);
    // Per subscriber, outcomes queued before it misses some (docs/protocol.md §4.1): room for a
    // burst of a busy stack (about 3 MB of small outcomes) while the subscriber is descheduled.
    xpub_.set(zmq::sockopt::sndhwm, kResultsQueue);
    xsub_.set(zmq::sockopt::rcvhwm, kResultsQueue);
    // Every new subscriber gets this first: receiving it tells a client its subscription is live.
    xpub_.set(zmq::sockopt::xpub_welcome_msg, kResultsWelcome);
    xpub_.bind("tcp://127.0.0.1:*");
    endpoint_ = xpub_.get(zmq::sockopt::last_endpoint);
    zmq::socket_t ready(ctx_, zmq::socket_type::pair);
    ready.bind("inproc://runnel-results-ready");
    thread_ = std::thread([this, on_failure = std::move(on_failure)] {
      // No end of this thread goes unnoticed: without the proxy no outcome reaches a subscriber.
      std::string failure;
      bool signalled = false;
      // The constructor waits for this, whether the proxy starts or not.
      const auto signal_up = [&] {
        if (std::exchange(signalled, true)) return;
        zmq::socket_t signal(ctx_, zmq::socket_type::pair);
        signal.connect("inproc://runnel-results-ready");
        signal.send(zmq::str_buffer("up"), zmq::send_flags::none);
      };
      try {
        zmq::socket_t control(ctx_, zmq::socket_type::pair);
        control.bind(kProxyControl);
        signal_up();
        failpoint::Hit("results.feed");
        zmq::proxy_steerable(xsub_, xpub_, zmq::socket_ref(), control);
        if (!terminating_.load()) failure = "its proxy ended without being asked to stop";
      } catch (const std::exception& e) {
        failure = e.what();
      }
      running_.store(false);
      try {
        signal_up();
      } catch (const std::exception&) {
        // Only when the proxy failed before it could signal, and then the context is unusable.
      }
      if (failure.empty()) return;
      log::kCli->critical("results feed: stopped by an error: {}", failure);
      on_failure(failure);
    });
    zmq::message_t up;
    (void)ready.recv(up);
  }
  ~ResultsFeed() {
    terminating_.store(true);
    zmq::socket_t control(ctx_, zmq::socket_type::pair);
    control.set(zmq::sockopt::linger, 0);
    control.connect(kProxyControl);
    // Without a proxy (it failed) nothing reads this: never block on it.
    while (running_.load() && !control.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::dontwait)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    thread_.join();
  }
  ResultsFeed(const ResultsFeed&) = delete;
  ResultsFeed& operator=(const ResultsFeed&) = delete;
  const std::string& Endpoint() const { return endpoint_; }

 private:
  zmq::context_t& ctx_;
  zmq::socket_t xsub_;
  zmq::socket_t xpub_;
  std::string endpoint_;
  std::atomic<bool> running_{true};
  std::atomic<bool> terminating_{false};
  std::thread thread_;
};

nlohmann::json HealthJson(const ComponentHealth& health) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : health.Snapshot()) {
    nlohmann::json j = {{"name", c.name}, {"up", c.up}};
    if (!c.up) j["reason"] = c.reason;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

std::vector<scheduler::CompiledSchedule> CheckConfig(StackConfig& config) {
  for (std::size_t i = 0; i < config.functions.size(); ++i) {
    FunctionSpec& f = config.functions[i];
    std::unique_ptr<functions::Function> fn;
    try {
      fn = functions::CreateFunction(f.handler, f.params, {f.name, f.handler_dir});
    } catch (const Error& e) {
      throw ConfigError(fmt::format("{}: function {} ({}): {}", config.source, f.name, f.handler, e.what()));
    }
    std::optional<functions::BatchSpec> configured;
    if (f.batch) configured = functions::BatchSpec{static_cast<std::size_t>(f.batch->size), f.batch->window};
    try {
      const functions::BatchSpec batch = functions::EffectiveBatch(*fn, configured);
      f.batch = BatchConfig{static_cast<int>(batch.max_events), batch.window};
    } catch (const Error& e) {
      throw ConfigError(fmt::format("{}:{}: functions[{}].batch: function {} ({}): {}", config.source,
                                    f.batch_line, i, f.name, f.handler, e.what()));
    }
  }
  kafka::CheckRecordLimits(config);  // every accepted input's dead-letter copy fits the producer
  return scheduler::CompileSchedules(config);
}

struct Stack::Impl {
  ComponentHealth health;  // first: every component reports into it until it is gone
  StackConfig config;
  StateDir state;
  std::unique_ptr<kafka::EmbeddedBroker> embedded;
  bool in_memory = false;  // embedded, or a mock cluster such as `runnel kafka`
  kafka::KafkaConfig kafka;
  zmq::context_t zmq_ctx{1};
  std::unique_ptr<ResultsFeed> results;
  std::unique_ptr<telemetry::StackTelemetry> telemetry;  // outlives the dispatchers that feed it
  std::vector<std::unique_ptr<broker::Dispatcher>> dispatchers;
  std::unique_ptr<autoscaler::LocalProcessBackend> workers;
  std::unique_ptr<autoscaler::Autoscaler> scaler;  // owns `workers` while it runs
  std::vector<std::string> endpoint_keys;
  std::unique_ptr<scheduler::SchedulerService> scheduler;
  // Bad messages on every socket the stack binds (dispatchers, status, control), for /metrics.
  std::shared_ptr<ProtocolErrors> protocol_errors = std::make_shared<ProtocolErrors>();
  bool stopped = false;

  Impl(StackConfig c, StateDir s) : config(std::move(c)), state(std::move(s)) {}
};

namespace {

// A topic on an external Kafka: used as it is when it exists (created beforehand, e.g. where Runnel
// may not create topics, or on a broker without the CreateTopics API), else created through
// CreateTopics. A partition count other than the config's is used as it is, with a warning.
void EnsureTopic(const kafka::KafkaConfig& kafka, const std::string& topic, int partitions,
                 std::optional<int> replication_factor) {
  kafka::Admin admin(kafka);
  if (const auto existing = admin.ExistingPartitionCount(topic)) {
    if (*existing != partitions) {
      log::kCli->warn("topic {} exists with {} partition(s), not {}: using it as it is", topic, *existing,
                      partitions);
    }
    return;
  }
  admin.CreateTopic(topic, partitions, replication_factor.value_or(-1));
  // -1 is the broker's default.replication.factor, 1 on a stock Kafka of any size: say so.
  if (const auto r = admin.Replication(topic); r && !replication_factor && r->replicas < r->brokers) {
    log::kCli->warn(
        "topic {} was created with {} replica(s) (the broker's default) on a cluster of {} brokers; set "
        "replication_factor in runnel.yaml for more",
        topic, r->replicas, r->brokers);
  }
}

}  // namespace

Stack::Stack(StackConfig config, StateDir state, std::filesystem::path runnel_binary)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(state))) {
  auto& s = *impl_;
  const auto logger = log::kCli.Logger();
  // Every function must exist and accept its params before anything starts: a builtin is created,
  // a plugin loaded (entry point, ABI version, create() with the params), an exec program checked.
  auto schedules = CheckConfig(s.config);
  if (s.config.output_dir.empty()) s.config.output_dir = (s.state.Root() / "outputs").string();
  s.config.output_dir = std::filesystem::absolute(s.config.output_dir).string();

  if (s.config.kafka_bootstrap.empty()) {
    s.embedded = std::make_unique<kafka::EmbeddedBroker>();
    s.kafka = s.embedded->ClientConfig();
  } else {
    s.kafka.bootstrap = s.config.kafka_bootstrap;
  }
  s.kafka.options = s.config.kafka_options;
  s.kafka.secrets = s.config.kafka_secrets;
  // A broker that keeps its log in memory with a per-partition cap (the embedded one, or `runnel
  // kafka` outliving this stack): publishers get the retention guard, dispatchers a short fetch wait.
  s.in_memory = s.embedded != nullptr || kafka::Admin(s.kafka).IsMockCluster();
  for (const auto& f : s.config.functions) {
    for (const auto& topic : {f.topic, f.dead_letter_topic, f.results_topic}) {
      if (topic.empty()) continue;
      if (s.embedded) {
        s.embedded->CreateTopic(topic, f.partitions, f.replication_factor.value_or(1));
      } else {
        EnsureTopic(s.kafka, topic, f.partitions, f.replication_factor);
      }
    }
    for (const auto& warning :
         kafka::Admin(s.kafka).FewerReplicasThanInput(f.topic, {f.dead_letter_topic, f.results_topic})) {
      logger->warn("function {}: {}", f.name, warning);
    }
  }

  s.health.Add("results feed");
  s.results = std::make_unique<ResultsFeed>(s.zmq_ctx, s.health.Reporter("results feed"));
  s.telemetry = std::make_unique<telemetry::StackTelemetry>(s.config.trace_events);
  // The autoscaler decides how many workers each function runs (none until events arrive, unless
  // its scaling says otherwise); dispatchers wake it the moment an event finds no worker.
  s.workers = std::make_unique<autoscaler::LocalProcessBackend>(
      autoscaler::WorkerCommand(runnel_binary), s.state.Root() / "logs", s.config.standby_workers);
  autoscaler::Autoscaler::Options scaling{s.workers.get(), s.kafka, &s.zmq_ctx};
  scaling.on_request = [t = s.telemetry.get()](std::string_view request) { return t->Answer(request); };
  scaling.protocol_errors = s.protocol_errors;
  scaling.on_failure = s.health.Reporter("autoscaler");
  scaling.components = [h = &s.health] { return HealthJson(*h); };
  s.health.Add("autoscaler");
  s.scaler = std::make_unique<autoscaler::Autoscaler>(std::move(scaling));
  s.telemetry->Serve(s.config.metrics_listen, [scaler = s.scaler.get()] { return scaler->Status(); });
  // Job progress is counted from the dispatchers' own outcomes (through their journals), never
  // from the lossy results feed; only schedules start jobs, so without them nothing is collected.
  std::shared_ptr<scheduler::JobOutcomes> job_outcomes;
  if (!schedules.empty()) {
    job_outcomes = std::make_shared<scheduler::JobOutcomes>();
    s.telemetry->CountJobs([job_outcomes](std::vector<Outcome>& outcomes) { job_outcomes->Add(outcomes); });
  }
  // Test-only failpoint `results.feed.drop` (core/README.md): no dispatcher is connected to the
  // results feed, so the feed drops every outcome, the worst its contract allows (docs/protocol.md
  // §4.1). Subscribers still connect and get the welcome message.
  const bool feed_drops_everything = failpoint::Armed("results.feed.drop");
  s.health.Add("metrics");
  nlohmann::json dispatchers = nlohmann::json::object();
  nlohmann::json functions = nlohmann::json::object();
  for (const auto& f : s.config.functions) {
    broker::Dispatcher::Options o;
    o.spec = f;
    o.kafka = s.kafka;
    o.zmq = &s.zmq_ctx;
    if (!feed_drops_everything) o.results_endpoint = kResultsInproc;
    o.heartbeat = s.config.heartbeat;
    if (s.in_memory) o.fetch_wait_max = std::chrono::milliseconds(2);
    o.output_dir = s.config.output_dir;
    for (const auto& target : f.next) o.next_topics.push_back(s.config.Find(target)->topic);
    o.on_event_without_workers = s.scaler->Add(f);
    o.observer = s.telemetry->JournalFor(f.name);
    o.protocol_errors = s.protocol_errors;
    o.on_failure = s.health.Reporter("dispatcher " + f.name);
    s.health.Add("dispatcher " + f.name);
    auto d = std::make_unique<broker::Dispatcher>(std::move(o));
    d->Start();
    s.scaler->Connect(f.name, d->Endpoint(), [dp = d.get()] { return dp->Stats(); });
    dispatchers[f.name] = d->Endpoint();
    functions[f.name] = {{"topic", f.topic},
                         {"group", f.Group()},
                         {"dead_letter_topic", f.dead_letter_topic},
                         {"results_topic", f.results_topic}};
    s.dispatchers.push_back(std::move(d));
  }
  s.state.MergeEndpoints({{"kafka", s.kafka.bootstrap},
                          {"embedded", s.embedded != nullptr},
                          {"in_memory", s.in_memory},
                          {"pid", ::getpid()},
                          {"results", s.results->Endpoint()},
                          {"dispatchers", dispatchers},
                          {"functions", functions},
                          {"output_dir", s.config.output_dir},
                          {"status", s.scaler->ControlEndpoint()},
                          {"metrics", s.telemetry->MetricsUrl()}});
  s.endpoint_keys = {"kafka",       "embedded",  "in_memory",  "pid",    "results",
                     "dispatchers", "functions", "output_dir", "status", "metrics"};

  scheduler::SchedulerService::Options so;
  so.schedules = std::move(schedules);
  for (const auto& f : s.config.functions) {
    so.topics[f.name] = f.topic;
    so.groups[f.topic] = f.Group();
  }
  so.kafka_bootstrap = s.kafka.bootstrap;
  so.kafka_options = s.kafka.options;
  so.kafka_secrets = s.kafka.secrets;
  so.embedded = s.in_memory;
  so.state_dir = s.state.Root();
  so.zmq = &s.zmq_ctx;
  so.outcomes = job_outcomes;
  so.protocol_errors = s.protocol_errors;
  s.health.Add("scheduler");
  s.scheduler = std::make_unique<scheduler::SchedulerService>(std::move(so));
  s.state.MergeEndpoints({{"control", s.scheduler->ControlEndpoint()}});
  s.endpoint_keys.push_back("control");

  s.scaler->Start();
}

Stack::~Stack() { Stop(); }

void Stack::Stop() {
  auto& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  // The drain. No schedule fires (Supervise is no longer called). The autoscaler stops first, so
  // that no worker is started, stopped or restarted from here on; the workers run on (they are
  // tied to this process, not to its thread). Dispatchers take no new event; workers are asked to
  // drain (SIGTERM): each finishes and reports what it holds, then exits 0. Each dispatcher waits
  // until every event it handed out has its outcome written, commits, and ends. Every wait is
  // bounded by the slowest function's timeout plus a grace; past it a worker is killed and what it
  // held is consumed again after a restart.
  std::chrono::milliseconds longest{0};
  for (const auto& f : s.config.functions) longest = std::max(longest, f.timeout);
  const auto drain = longest + kDrainGrace;
  if (s.scaler) s.scaler->Stop();
  for (auto& d : s.dispatchers) d->RequestStop(drain);
  s.workers->StopAll(drain);
  for (auto& d : s.dispatchers) d->Stop(drain);
  s.dispatchers.clear();
  s.scheduler.reset();  // job records written as they stand, the drain's outcomes counted
  s.results.reset();
  s.telemetry.reset();  // the metrics endpoint reads the autoscaler's status: stop it first
  s.scaler.reset();
  s.state.RemoveEndpoints(s.endpoint_keys);
  s.embedded.reset();
  log::kCli->info("stack stopped");
}

void Stack::Supervise() {
  auto& s = *impl_;
  if (s.stopped || s.health.FirstFailure()) return;
  try {
    s.scheduler->Tick();
  } catch (const std::exception& e) {
    log::kScheduler->critical("scheduler: stopped by an error: {}", e.what());
    s.health.Fail("scheduler", e.what());
  }
}

std::optional<ComponentHealth::Component> Stack::Failure() const { return impl_->health.FirstFailure(); }

std::string Stack::Summary() const {
  const auto& s = *impl_;
  std::string out = fmt::format("Kafka: {}{}\nresults feed: {}\nmetrics: {}\noutputs: {}\n",
                                s.kafka.bootstrap, s.embedded ? " (embedded, in memory)" : "",
                                s.results->Endpoint(), s.telemetry->MetricsUrl(), s.config.output_dir);
  for (std::size_t i = 0; i < s.config.functions.size(); ++i) {
    const auto& f = s.config.functions[i];
    out += fmt::format("  {:<18} topic {:<18} workers {}..{}  dispatcher {}\n", f.name, f.topic,
                       f.scaling.min, f.scaling.max, s.dispatchers[i]->Endpoint());
  }
  out += s.scheduler->Summary();
  return out;
}

}  // namespace runnel::cli
