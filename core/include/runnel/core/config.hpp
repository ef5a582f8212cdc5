// The stack config: which functions run, on which topics, with which limits and retry policy.
// Parsed and validated once at start-up; an unknown key or a bad value is a ConfigError naming
// the file, line and key. Without a file, DefaultStack() serves every built-in function.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runnel/core/batch_spec.hpp"
#include "runnel/core/event_filter.hpp"
#include "runnel/core/gateway_config.hpp"
#include "runnel/core/listen.hpp"
#include "runnel/core/output_target.hpp"
#include "runnel/core/secret.hpp"

namespace runnel {

struct RetryPolicy {
  int max_attempts = 3;  // attempts in all, the first included
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{10'000};
  double backoff_multiplier = 2.0;
  // The wait before attempt `next_attempt` (2, 3, ...), before jitter.
  std::chrono::milliseconds Backoff(int next_attempt) const;
};

// How many workers a function gets: the autoscaler keeps the count within [min, max], sized for the
// arrival rate plus draining the backlog within target_drain, and scales in only after
// `stabilization` of consistently lower desire. After `idle_to_zero` with nothing to do it goes to
// max(min, warm). `warm` idle workers are kept on top of what the load needs.
// In runnel.yaml: `scaling: {min, max, target_drain, idle_to_zero, stabilization, warm}`; the
// legacy `workers: N` is a fixed count, i.e. min = max = N.
struct ScalingSpec {
  int min = 0;
  int max = 4;
  std::chrono::milliseconds target_drain{10'000};
  std::chrono::milliseconds idle_to_zero{30'000};
  std::chrono::milliseconds stabilization{30'000};
  int warm = 0;
  // Several stacks serve the function against one Kafka: they split its partitions through the
  // consumer group (cooperative-sticky). Off: the stack takes every partition at once, and a
  // second stack on the group is refused (docs/config.md, "Several stacks per function").
  bool shared = false;
};

// Where a consumer group with no committed offsets starts (runnel.yaml `start`, KEDA's
// offsetResetPolicy): the oldest record the broker still has, or the end of each partition when the
// dispatcher starts (it commits that position at once, so a restart before any event resumes there).
enum class StartPosition { kEarliest, kLatest };

struct FunctionSpec {
  std::string name;
  std::string handler;  // builtin:NAME, plugin:PATH[#NAME] or exec:COMMAND (core/handler.hpp), paths absolute
  std::string handler_dir;  // the config file's directory: exec programs run there; empty = the worker's cwd
  std::string topic;        // default: the name
  int partitions = 8;
  nlohmann::json params = nlohmann::json::object();
  int concurrency = 8;  // events one worker runs at once
  std::chrono::milliseconds timeout{30'000};
  int memory_mb = 0;  // 0: no limit
  std::size_t max_payload = 1 << 20;
  RetryPolicy retry;
  std::string dead_letter_topic;  // default: <topic>.dlq
  std::string results_topic;      // empty: results go to ZeroMQ only
  // Replicas of the topics Runnel creates for it (input, dead-letter, results): the function's
  // `replication_factor`, else the file's top-level one; unset: the broker's default.
  std::optional<int> replication_factor;
  std::vector<std::string> next;  // functions fed by this one's ok outcomes (a pipeline)
  ScalingSpec scaling;
  // Unset: the function's own default (functions::Function::Batch()). `runnel up` settles it at start
  // (stack::CheckConfig), so a dispatcher's spec always says what its workers run.
  std::optional<BatchSpec> batch;
  int batch_line = 0;  // where `batch` is in the file (0: not given), for errors found later
  StartPosition start = StartPosition::kEarliest;  // for a group with no commits
  std::string group;  // the consumer group (runnel.yaml `group`); empty: runnel.<name>
  // Records older than this (by their Kafka timestamp) when the dispatcher takes them are
  // dead-lettered as `expired` instead of running (Lambda's MaximumRecordAgeInSeconds); 0: no limit.
  std::chrono::milliseconds max_record_age{0};
  EventFilter filter;  // empty: every event runs

  // The consumer group the dispatcher commits to; every reader of its offsets (lag, status,
  // autoscaler, tests) asks this.
  std::string Group() const { return group.empty() ? "runnel." + name : group; }
};

// A cron schedule that publishes to a function: a fixed payload, or one event per file matched
// under a directory (a batch job). The cron expression and time zone are checked by
// runnel::scheduler::CompileSchedules (scheduler/), which names the lines recorded here.
struct ScheduleSpec {
  struct Files {
    std::string dir;         // absolute (relative paths in the file are resolved against the file's folder)
    std::string glob = "*";  // fnmatch(3) pattern on the file name
    bool recursive = false;
  };
  std::string name;  // 1..64 of [A-Za-z0-9._-]; job ids are <name>-<UTC time>
  std::string cron;
  std::string timezone = "UTC";
  std::string function;      // the target; must be one of the stack's functions
  std::string payload;       // the event published when there is no `files`
  std::string content_type;  // for payload: default text/plain
  std::optional<Files> files;
  std::chrono::milliseconds catch_up{
      0};                 // fire once at start for a slot missed this recently; 0: skip missed slots
  int line = 0;           // where the entry starts in the file
  int cron_line = 0;      // where `cron` is
  int timezone_line = 0;  // where `timezone` is (or the entry, when absent)
};

// The librdkafka options librdkafka itself flags sensitive (_RK_SENSITIVE in its rdkafka_conf.c:
// passwords, keys, certificates' private parts, SASL credentials). Read from kafka.options, they are
// kept as Secret like kafka.secrets. An exact list, not a guess from the name.
bool IsSensitiveKafkaOption(std::string_view name);

// Where the stack's ZeroMQ sockets bind, per kind (`listen:`; docs/config.md#listen).
struct ListenConfig {
  ListenAddress dispatchers;  // one port per function: a range when a port is given
  ListenAddress results;
  ListenAddress control;
};

// `security:` (docs/config.md#security).
struct SecurityConfig {
  bool curve = true;    // CURVE on every socket; off only when every bind is loopback
  std::string clients;  // a directory of admitted public keys, like authorized_keys; empty: none
  int curve_line = 0;   // where `security.curve` is (0: not given)
};

// `workers.kubernetes` (docs/config.md#workers): each function's workers are a Deployment whose
// replicas the autoscaler sets through the scale subresource. Empty fields are resolved by the
// backend when the stack starts (autoscaler/kubernetes_backend.hpp), from the in-cluster service
// account: the parser reads no environment beyond ${...} references.
struct KubernetesWorkers {
  std::string api_server;  // http(s)://host[:port], no trailing /; empty: $KUBERNETES_SERVICE_HOST/PORT
  std::string ns;          // the Deployments' namespace; empty: the service account's namespace file
  std::string token_file;  // the bearer token, re-read when it changes; empty: the service account's
  std::string ca_file;     // the API server's CA (PEM); empty: the service account's ca.crt
  // Every function's Deployment, defaults filled in by the parser (DefaultDeploymentName).
  std::map<std::string, std::string> deployments;
  std::chrono::milliseconds timeout{2000};  // per request to the API server
  bool scale_to_zero_on_stop = false;       // a stopping stack sets every Deployment to 0 replicas
  static constexpr std::chrono::milliseconds kMinTimeout{100};
  static constexpr std::chrono::milliseconds kMaxTimeout{10'000};
};

// `workers:`: what runs the workers the autoscaler asks for.
struct WorkersConfig {
  // kLocal: local processes of runnel-worker; kKubernetes: a Deployment per function, scaled through
  // the API; kExternal: only the count, for a scaler outside Runnel (autoscaler/README.md).
  enum class Backend { kLocal, kKubernetes, kExternal };
  Backend backend = Backend::kLocal;
  KubernetesWorkers kubernetes;  // with kKubernetes
};

// `runnel-worker-<function>` with dots turned into dashes (image.thumbnail:
// runnel-worker-image-thumbnail). Other characters a Deployment's name cannot hold (capitals, '_')
// are kept, and the parser then asks for a name in workers.kubernetes.deployments.
std::string DefaultDeploymentName(std::string_view function);
// Why `name` is not a DNS-1123 subdomain (what the API server requires of a Deployment's name:
// at most 253 of [a-z0-9-.], starting and ending with [a-z0-9]); empty when it is one.
std::string Dns1123SubdomainProblem(std::string_view name);
// Why `name` is not a DNS-1123 label (a namespace's name: at most 63 of [a-z0-9-], starting and
// ending with [a-z0-9]); empty when it is one.
std::string Dns1123LabelProblem(std::string_view name);

struct StackConfig {
  std::string source;           // the file it came from, or "(built-in default)"
  std::string kafka_bootstrap;  // empty: the embedded broker
  std::map<std::string, std::string> kafka_options;
  // kafka.secrets, and the kafka.options librdkafka marks sensitive (IsSensitiveKafkaOption):
  // applied like options, never printed.
  std::map<std::string, Secret> kafka_secrets;
  std::optional<int> replication_factor;  // top-level default of FunctionSpec::replication_factor
  std::chrono::milliseconds heartbeat{1000};
  std::string output_dir;  // default: <state dir>/outputs
  // `outputs: {url, headers, timeout}`: workers PUT each output file under url instead of leaving
  // it in output_dir (docs/config.md#outputs). Absent: output files stay in output_dir.
  std::optional<OutputTarget> outputs;
  // Where `runnel up` serves Prometheus metrics (HOST:PORT; port 0: any free port, read back into
  // endpoints.json), and how many recent events' traces it keeps for `runnel trace`.
  std::string metrics_listen = "127.0.0.1:0";
  int metrics_line = 0;  // where `metrics` or `listen.metrics` is (0: not given)
  ListenConfig listen;
  // The host written into endpoints.json (and join tokens) for clients on other hosts; empty: the
  // bound address (127.0.0.1 for a wildcard bind).
  std::string advertise;
  SecurityConfig security;
  std::size_t trace_events = 100'000;
  // One idle worker process per function kept loaded ahead of need, so that a start (from zero
  // too) skips exec and the dynamic loader; about 6 MiB RSS each (autoscaler/README.md).
  bool standby_workers = true;
  WorkersConfig workers;  // `workers:`: local processes unless it says kubernetes
  GatewayConfig gateway;  // `gateway:`: the HTTP gateway (docs/config.md#gateway)
  std::vector<FunctionSpec> functions;
  std::vector<ScheduleSpec> schedules;

  const FunctionSpec* Find(const std::string& name) const;
};

// A non-loopback bind with CURVE off, or one dispatcher port for several functions: ConfigError
// naming the line. The parser calls it; `runnel up` again after its --listen flags.
void CheckListen(const StackConfig& config);

// Reads and validates a runnel.yaml; throws ConfigError with file:line: key: reason.
StackConfig LoadStackConfig(const std::filesystem::path& file);
// The same from a runnel.yaml's text; `file` names it in messages and anchors its relative paths.
StackConfig ParseStackConfig(const std::string& yaml, const std::filesystem::path& file);
// The stack served without a config: one function per built-in name, each on a topic of its name.
StackConfig DefaultStack(const std::vector<std::string>& builtin_names);

}  // namespace runnel
