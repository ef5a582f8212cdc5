#include "runnel/stack/stack.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>
#include <zmq.hpp>

#include "runnel/autoscaler/autoscaler.hpp"
#include "runnel/autoscaler/external_backend.hpp"
#include "runnel/autoscaler/kubernetes_backend.hpp"
#include "runnel/autoscaler/local_backend.hpp"
#include "runnel/broker/dispatcher.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/log.hpp"
#include "runnel/gateway/gateway.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/scheduler/service.hpp"
#include "runnel/security/guard.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/stack/check_config.hpp"
#include "runnel/stack/control_server.hpp"
#include "runnel/stack/results_feed.hpp"
#include "runnel/telemetry/stack_telemetry.hpp"
#include "topics.hpp"

namespace runnel::stack {
namespace {

// On a stop, each call in flight gets its function's timeout plus this to finish and be reported.
constexpr auto kDrainGrace = std::chrono::seconds(5);
// A `status` request waits this long for the autoscaler's loop to make a status now; past it (the
// loop is reading the lag from Kafka) it gets the last one, with its age.
constexpr auto kFreshStatusWithin = std::chrono::milliseconds(250);

nlohmann::json HealthJson(const ComponentHealth& health) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : health.Snapshot()) {
    nlohmann::json j = {{"name", c.name}, {"up", c.up}};
    if (!c.up) j["reason"] = c.reason;
    out.push_back(std::move(j));
  }
  return out;
}

// An endpoint as clients reach it: the advertised host when there is one, else loopback for a
// wildcard bind (tcp://0.0.0.0:7000 -> tcp://127.0.0.1:7000), else as bound.
std::string Reachable(const std::string& endpoint, const std::string& advertise) {
  const auto host_start = endpoint.find("://");
  const auto port_start = endpoint.rfind(':');
  if (host_start == std::string::npos || port_start == std::string::npos || port_start < host_start + 3)
    return endpoint;
  std::string host = endpoint.substr(host_start + 3, port_start - host_start - 3);
  if (!advertise.empty()) {
    host = advertise;
  } else if (host == "0.0.0.0") {
    host = "127.0.0.1";
  } else if (host == "[::]") {
    host = "[::1]";
  }
  return endpoint.substr(0, host_start + 3) + host + endpoint.substr(port_start);
}

// The directory of the stack's local ipc:// endpoints (mode 0700, emptied at each start: the state
// dir's lock says no other stack uses it), or empty when its paths would not fit a Unix socket's
// 107 bytes: then workers on this host use TCP (with CURVE) like any other.
std::filesystem::path LocalSocketDir(const StateDir& state) {
  auto dir = std::filesystem::absolute(state.Root() / "sockets");
  if (dir.string().size() + std::string_view("/results").size() > 100) {
    log::kCli->info("{}: too long a path for ipc:// sockets; workers on this host connect over TCP",
                    dir.string());
    return {};
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace,
                               ec);
  if (ec) {
    log::kCli->warn("{}: cannot make it private ({}); workers on this host connect over TCP", dir.string(),
                    ec.message());
    return {};
  }
  return dir;
}

std::string LocalEndpoint(const std::filesystem::path& dir, const std::string& name) {
  return dir.empty() ? std::string() : "ipc://" + (dir / name).string();
}

// The guard of every socket the stack binds: the stack's keys (created on the first start), the
// local client key and those of security.clients admitted.
std::unique_ptr<security::Guard> MakeGuard(const StackConfig& config, const StateDir& state,
                                           zmq::context_t& ctx,
                                           std::function<void(const std::string&)> on_failure) {
  security::RequireCurve();
  auto keys = security::LoadOrCreateStackKeys(state.Root());
  std::vector<security::AuthorizedKey> admitted{{keys.local.public_key, "local"}};
  if (!config.security.clients.empty()) {
    for (auto& key : security::ReadAuthorizedKeys(config.security.clients))
      admitted.push_back(std::move(key));
  }
  log::kSecurity->info(
      "CURVE on every socket; {} client key(s) admitted (the local one{})", admitted.size(),
      config.security.clients.empty() ? "" : " and security.clients " + config.security.clients);
  return std::make_unique<security::Guard>(
      ctx, security::Guard::Options{std::move(keys.server), std::move(admitted), state.Root(),
                                    std::move(on_failure)});
}

}  // namespace

struct Stack::Impl {
  ComponentHealth health;  // first: every component reports into it until it is gone
  StackConfig config;
  StateDir state;
  std::unique_ptr<kafka::EmbeddedBroker> embedded;
  bool in_memory = false;  // embedded, or a mock cluster such as `runnel kafka`
  kafka::KafkaOptions kafka;
  zmq::context_t zmq_ctx{1};
  // Before every socket it secures, after the context: it must see every one of them closed.
  std::unique_ptr<security::Guard> guard;
  std::uint64_t ended_tokens = 0;  // the guard's count when the results feed last cut its subscribers
  std::unique_ptr<ResultsFeed> results;
  std::unique_ptr<telemetry::StackTelemetry> telemetry;  // outlives the dispatchers that feed it
  std::vector<std::unique_ptr<broker::Dispatcher>> dispatchers;
  std::unique_ptr<autoscaler::WorkerBackend> workers;
  std::unique_ptr<autoscaler::Autoscaler> scaler;  // owns `workers` while it runs
  std::vector<std::string> endpoint_keys;
  std::unique_ptr<scheduler::SchedulerService> scheduler;
  std::unique_ptr<ControlServer> control;     // after what it answers for: it goes first
  std::unique_ptr<gateway::Gateway> gateway;  // the HTTP gateway (gateway/): stopped before anything
  // Bad messages on every socket the stack binds (dispatchers, control), for /metrics.
  std::shared_ptr<ProtocolErrors> protocol_errors = std::make_shared<ProtocolErrors>();
  StackEndpoints endpoints;
  bool stopped = false;

  Impl(StackConfig c, StateDir s) : config(std::move(c)), state(std::move(s)) {}
};

Stack::Stack(Options options)
    : impl_(std::make_unique<Impl>(std::move(options.config), std::move(options.state))) {
  auto& s = *impl_;
  // Every function must exist and accept its params before anything starts: a builtin is created,
  // a plugin loaded (entry point, ABI version, create() with the params), an exec program checked.
  auto schedules = CheckConfig(s.config);
  CheckListen(s.config);
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
  CreateTopics(s.config, s.embedded.get(), s.kafka);

  if (s.config.security.curve) {
    s.health.Add("security guard");
    s.guard = MakeGuard(s.config, s.state, s.zmq_ctx, s.health.Reporter("security guard"));
    s.ended_tokens = s.guard->EndedTokens();
  } else {
    log::kSecurity->warn(
        "CURVE is off (security.curve: false): any local process may connect to the stack's sockets");
  }
  // Processes of the stack's user on its host (its workers, `runnel` commands) connect over ipc://
  // in a private directory, without CURVE: the directory guards them as it guards the local keys,
  // and encrypting every frame doubled the CPU per event (BENCHMARKS.md).
  const auto local_dir = LocalSocketDir(s.state);
  s.health.Add("results feed");
  s.results =
      std::make_unique<ResultsFeed>(s.zmq_ctx, s.config.listen.results.ZmqEndpoint(), s.guard.get(),
                                    LocalEndpoint(local_dir, "results"), s.health.Reporter("results feed"));
  s.telemetry = std::make_unique<telemetry::StackTelemetry>(s.config.trace_events);
  // The autoscaler decides how many workers each function runs (none until events arrive, unless
  // its scaling says otherwise); dispatchers wake it the moment an event finds no worker.
  if (s.config.workers.backend == WorkersConfig::Backend::kKubernetes) {
    // Each function's workers are a Deployment's pods, joining with a token (deploy/README.md).
    s.workers = std::make_unique<autoscaler::KubernetesBackend>(
        autoscaler::KubernetesBackend::Resolve(s.config.workers.kubernetes));
  } else if (s.config.workers.backend == WorkersConfig::Backend::kExternal) {
    // Only the count: KEDA, an HPA or the user runs the workers, which join (deploy/README.md).
    s.workers = std::make_unique<autoscaler::ExternalBackend>();
  } else {
    auto worker_command = autoscaler::WorkerCommand(options.runnel_binary);
    if (s.guard) {
      worker_command.emplace_back("--keys");
      worker_command.push_back(security::KeyDir(s.state.Root()).string());
    }
    s.workers = std::make_unique<autoscaler::LocalProcessBackend>(
        std::move(worker_command), s.state.Root() / "logs", s.config.standby_workers);
  }
  autoscaler::Autoscaler::Options scaling{s.workers.get(), s.kafka};
  scaling.stack_id = s.state.StackId();
  scaling.security = [g = s.guard.get()] {
    nlohmann::json refused = nlohmann::json::array();
    if (g != nullptr) {
      for (const auto& c : g->Refused())
        refused.push_back({{"socket", c.socket}, {"reason", c.reason}, {"count", c.count}});
    }
    return nlohmann::json{{"curve", g != nullptr}, {"refused", std::move(refused)}};
  };
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
  // The HTTP gateway's synchronous calls wake from the dispatchers' own outcomes (through their
  // journals), never from the lossy results feed.
  std::shared_ptr<gateway::PendingCalls> gateway_calls;
  if (s.config.gateway.enabled) {
    gateway_calls = std::make_shared<gateway::PendingCalls>();
    s.telemetry->ObserveCalls([gateway_calls](const Outcome& o) { gateway_calls->Complete(o); });
  }
  // Test-only failpoint `results.feed.drop` (core/README.md): no dispatcher is connected to the
  // results feed, so the feed drops every outcome, the worst its contract allows (docs/protocol.md
  // §4.1). Subscribers still connect and get the welcome message.
  const bool feed_drops_everything = failpoint::Armed("results.feed.drop");
  s.health.Add("metrics");
  // What this stack's commits name it by: a second stack serving a function against the same
  // Kafka and group is refused (broker/group_lease.hpp).
  const std::string stack_id = s.state.StackId();
  nlohmann::json dispatchers = nlohmann::json::object();
  nlohmann::json local_dispatchers = nlohmann::json::object();
  nlohmann::json functions = nlohmann::json::object();
  for (std::size_t i = 0; i < s.config.functions.size(); ++i) {
    const FunctionSpec& f = s.config.functions[i];
    broker::Dispatcher::Options o;
    o.bind = s.config.listen.dispatchers.ZmqEndpoint(i);
    o.guard = s.guard.get();
    o.local_bind = LocalEndpoint(local_dir, fmt::format("d{}", i));
    o.spec = f;
    o.kafka = s.kafka;
    o.zmq = &s.zmq_ctx;
    if (!feed_drops_everything) o.results_endpoint = ResultsFeed::PublishEndpoint();
    o.heartbeat = s.config.heartbeat;
    if (s.in_memory) o.fetch_wait_max = std::chrono::milliseconds(2);
    o.output_dir = s.config.output_dir;
    o.stack_id = stack_id;
    o.outputs = s.config.outputs;
    for (const auto& target : f.next) o.next_topics.push_back(s.config.Find(target)->topic);
    o.on_event_without_workers = s.scaler->Add(f);
    o.observer = s.telemetry->JournalFor(f.name);
    o.protocol_errors = s.protocol_errors;
    o.on_failure = s.health.Reporter("dispatcher " + f.name);
    s.health.Add("dispatcher " + f.name);
    auto d = std::make_unique<broker::Dispatcher>(std::move(o));
    d->Start();
    s.scaler->Connect(f.name, Reachable(d->LocalEndpoint(), ""), [dp = d.get()] { return dp->Stats(); });
    dispatchers[f.name] = Reachable(d->Endpoint(), s.config.advertise);
    local_dispatchers[f.name] = Reachable(d->LocalEndpoint(), "");
    s.endpoints.dispatchers.push_back(dispatchers[f.name]);
    functions[f.name] = {{"topic", f.topic},
                         {"group", f.Group()},
                         {"dead_letter_topic", f.dead_letter_topic},
                         {"results_topic", f.results_topic}};
    s.dispatchers.push_back(std::move(d));
  }
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
  so.outcomes = job_outcomes;
  s.health.Add("scheduler");
  s.scheduler = std::make_unique<scheduler::SchedulerService>(std::move(so));

  // One control socket for every question a client asks the stack (docs/protocol.md §4.3).
  ControlServer::Options co;
  co.zmq = &s.zmq_ctx;
  co.bind = s.config.listen.control.ZmqEndpoint();
  co.guard = s.guard.get();
  co.protocol_errors = s.protocol_errors;
  co.handlers.status = [scaler = s.scaler.get()] { return scaler->FreshStatus(kFreshStatusWithin); };
  co.handlers.events = [t = s.telemetry.get()](const ControlRequest& r) { return t->Answer(r); };
  co.handlers.jobs = [sc = s.scheduler.get()](const ControlRequest& r) { return sc->Handle(r); };
  co.on_failure = s.health.Reporter("control socket");
  s.health.Add("control socket");
  s.control = std::make_unique<ControlServer>(std::move(co));

  nlohmann::json gateway_endpoints = nlohmann::json::object();
  if (gateway_calls) {
    gateway::Gateway::Options go{
        s.config.gateway,
        s.config.functions,
        s.kafka,
        s.in_memory,
        s.state.Root(),
        gateway_calls,
        [t = s.telemetry.get()](const std::string& id) { return t->Answer(ControlRequest::OutcomeOf(id)); }};
    s.gateway = std::make_unique<gateway::Gateway>(std::move(go));
    s.endpoints.gateway = s.gateway->Url();
    gateway_endpoints = {{"gateway", s.gateway->Url()},
                         {"gateway_token_file", s.gateway->TokenFile().string()}};
  }

  s.endpoints.kafka = s.kafka.bootstrap;
  s.endpoints.embedded = s.embedded != nullptr;
  s.endpoints.results = Reachable(s.results->Endpoint(), s.config.advertise);
  s.endpoints.metrics = s.telemetry->MetricsUrl();
  s.endpoints.control = Reachable(s.control->Endpoint(), s.config.advertise);
  s.endpoints.output_dir = s.config.output_dir;
  s.state.MergeEndpoints(
      {{"kafka", s.kafka.bootstrap},
       {"embedded", s.embedded != nullptr},
       {"in_memory", s.in_memory},
       {"pid", ::getpid()},
       {"results", s.endpoints.results},
       {"dispatchers", dispatchers},
       {"functions", functions},
       {"output_dir", s.config.output_dir},
       {"control", s.endpoints.control},
       {"metrics", s.telemetry->MetricsUrl()},
       {"local", {{"dispatchers", local_dispatchers}, {"results", s.results->LocalEndpoint()}}},
       {"curve", s.guard != nullptr},
       {"server_key", s.guard ? s.guard->ServerKey() : std::string()}});
  if (s.gateway) {
    s.state.MergeEndpoints(gateway_endpoints);
  } else {
    s.state.RemoveEndpoints({"gateway", "gateway_token_file"});  // a killed stack's, if any
  }
  s.endpoint_keys = {"kafka",      "embedded", "in_memory", "pid",   "results",    "dispatchers", "functions",
                     "output_dir", "control",  "metrics",   "curve", "server_key", "local"};
  s.endpoint_keys.insert(s.endpoint_keys.end(), {"gateway", "gateway_token_file"});

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
  s.gateway.reset();  // no new call; calls waiting for an outcome are answered 503 at once
  if (s.scaler) s.scaler->Stop();
  for (auto& d : s.dispatchers) d->RequestStop(drain);
  s.workers->StopAll(drain);
  for (auto& d : s.dispatchers) d->Stop(drain);
  s.dispatchers.clear();
  s.control.reset();    // it answered `status` through the drain; it answers for the scheduler
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
  // A join token revoked or expired: the results feed cannot drop just its subscribers, so it drops
  // every TCP subscriber and the others reconnect (docs/protocol.md §6.1).
  if (s.guard) {
    if (const auto ended = s.guard->EndedTokens(); ended != s.ended_tokens) {
      s.ended_tokens = ended;
      log::kSecurity->info("a join token ended: results feed subscribers on TCP reconnect through the guard");
      s.results->CutRemoteSubscribers();
    }
  }
  try {
    s.scheduler->Tick();
  } catch (const std::exception& e) {
    log::kScheduler->critical("scheduler: stopped by an error: {}", e.what());
    s.health.Fail("scheduler", e.what());
  }
}

std::optional<ComponentHealth::Component> Stack::Failure() const { return impl_->health.FirstFailure(); }

const StackConfig& Stack::Config() const { return impl_->config; }

const StackEndpoints& Stack::Endpoints() const { return impl_->endpoints; }

std::string Stack::ScheduleSummary() const { return impl_->scheduler->Summary(); }

}  // namespace runnel::stack
