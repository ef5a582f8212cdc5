// `runnel up`: runs a stack in the foreground until SIGINT/SIGTERM, or until one of its components
// fails. Exit status (docs/config.md "Supervision"): 0 stopped by a signal after draining; 1 it
// could not start (config, Kafka); 3 a component failed while running (the log names it and why);
// 128+N a second signal N forced the stop before the drain ended.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/signals.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/stack/stack.hpp"

namespace runnel::cli {
namespace {

constexpr int kExitComponentFailed = exit_code::kComponentFailed;

// Once a stop began: a second SIGINT/SIGTERM ends the process at once (workers die with it:
// PR_SET_PDEATHSIG), without waiting for the drain. Joined when the stop ends without one.
class ForceOnSecondSignal {
 public:
  explicit ForceOnSecondSignal(ShutdownSignals& signals)
      : thread_([this, &signals] {
          while (!done_.load()) {
            if (const int sig = signals.Wait(std::chrono::milliseconds(100)); sig != 0) {
              log::kCli->warn(
                  "signal {} during the drain: stopping now, calls still running are lost and "
                  "run again after a restart",
                  sig);
              std::fflush(stdout);
              ::_exit(exit_code::KilledBy(sig));
            }
          }
        }) {}
  ~ForceOnSecondSignal() {
    done_.store(true);
    thread_.join();
  }
  ForceOnSecondSignal(const ForceOnSecondSignal&) = delete;
  ForceOnSecondSignal& operator=(const ForceOnSecondSignal&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// One --listen: ADDRESS (every ZeroMQ socket kind on that host) or KIND=ADDRESS, applied to
// `config` unless it is null; returns what is wrong with it, or "".
std::string ListenFlag(const std::string& flag, StackConfig* config) {
  const auto eq = flag.find('=');
  const std::string kind = eq == std::string::npos ? "" : flag.substr(0, eq);
  auto parsed = ListenAddress::Parse(eq == std::string::npos ? flag : flag.substr(eq + 1));
  if (auto* why = std::get_if<std::string>(&parsed)) return *why;
  const auto& address = std::get<ListenAddress>(parsed);
  if (kind != "" && kind != "dispatchers" && kind != "results" && kind != "control" && kind != "metrics") {
    return fmt::format("'{}' is not a socket kind (dispatchers, results, control, metrics)", kind);
  }
  if (kind.empty() && address.port_low != 0) {
    return "a port needs its socket kind: dispatchers=HOST:LOW-HIGH, results=HOST:PORT, ...";
  }
  if (kind != "" && kind != "dispatchers" && address.Ports() != 1)
    return kind + " takes one port, not a range";
  if (config == nullptr) return "";
  if (kind.empty() || kind == "dispatchers") config->listen.dispatchers = address;
  if (kind.empty() || kind == "results") config->listen.results = address;
  if (kind.empty() || kind == "control") config->listen.control = address;
  if (kind == "metrics") config->metrics_listen = address.HostPort();
  return "";
}

// What `runnel up` prints once the stack runs: where it is reached, then one line per function.
std::string Summary(const stack::Stack& stack) {
  const auto& e = stack.Endpoints();
  const auto& functions = stack.Config().functions;
  std::string out =
      fmt::format("Kafka: {}{}\nresults feed: {}\nmetrics: {}\noutputs: {}\n", e.kafka,
                  e.embedded ? " (embedded, in memory)" : "", e.results, e.metrics,
                  stack.Config().outputs ? fmt::format("PUT to {} (written to {} first)",
                                                       UrlForLogs(stack.Config().outputs->url), e.output_dir)
                                         : e.output_dir);
  if (!e.gateway.empty())
    out += fmt::format("HTTP gateway: {} (bearer token in the state dir's gateway.token)\n", e.gateway);
  out += stack.Config().security.curve
             ? "security: CURVE on every socket (keys in the state dir's keys/; `runnel token create` lets "
               "another host in)\n"
             : "security: CURVE off (security.curve: false): any local process may use the sockets\n";
  for (std::size_t i = 0; i < functions.size(); ++i) {
    const auto& f = functions[i];
    out += fmt::format("  {:<18} topic {:<18} workers {}..{}  dispatcher {}\n", f.name, f.topic,
                       f.scaling.min, f.scaling.max, e.dispatchers[i]);
  }
  out += stack.ScheduleSummary();
  return out;
}

}  // namespace

Command AddUp(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string config;
    std::string kafka;
    std::string metrics;
    std::string output_dir;
    std::vector<std::string> listen;
    std::string advertise;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "up",
      "Run the stack in the foreground: Kafka (embedded unless --kafka), a dispatcher per function, workers. "
      "SIGINT/SIGTERM drain it (exit 0; a second signal forces, exit 128+N); a failed component exits 3");
  sub->add_option("--config", flags->config, "Stack config (runnel.yaml); default: every built-in function")
      ->check(CLI::ExistingFile);
  sub->add_option("--kafka", flags->kafka, "Use this Kafka (host:port,...) instead of the embedded broker");
  sub->add_option(
      "--metrics", flags->metrics,
      "Serve Prometheus metrics on HOST:PORT (port 0: any free port; default: the config's `metrics`, "
      "else 127.0.0.1:0); the URL goes into endpoints.json as `metrics`");
  sub->add_option(
      "--output-dir", flags->output_dir,
      "Write function outputs under DIR (default: the config's `output_dir`, else <state dir>/outputs)");
  sub->add_option(
         "--listen", flags->listen,
         "Where the stack's sockets bind: ADDRESS for all of them (any free ports), or KIND=ADDRESS with "
         "KIND dispatchers, results, control or metrics and ADDRESS HOST, HOST:PORT or HOST:LOW-HIGH; "
         "repeat for several (wins over the config's `listen`)")
      ->check([](const std::string& value) { return ListenFlag(value, nullptr); });
  sub->add_option(
      "--advertise", flags->advertise,
      "The host clients on other hosts reach the stack at, written into endpoints.json (wins over the "
      "config's `advertise`)");
  return {sub, [flags, &common] {
            ShutdownSignals signals;
            failpoint::Validate();
            StackConfig config = flags->config.empty() ? DefaultStack(functions::Builtins().Names())
                                                       : LoadStackConfig(flags->config);
            if (!flags->kafka.empty()) config.kafka_bootstrap = flags->kafka;
            if (!flags->metrics.empty()) config.metrics_listen = flags->metrics;
            if (!flags->output_dir.empty()) config.output_dir = flags->output_dir;
            for (const auto& listen : flags->listen) (void)ListenFlag(listen, &config);
            if (!flags->advertise.empty()) config.advertise = flags->advertise;
            StateDir state = StateDir::Resolve(common.state_dir);
            StackLock lock(state, "runnel up");
            int status = 0;
            auto stack = std::make_unique<runnel::stack::Stack>(runnel::stack::Options{
                std::move(config), state, std::filesystem::read_symlink("/proc/self/exe")});
            fmt::print("runnel stack up ({} in {})\n{}", "endpoints", state.EndpointsFile().string(),
                       Summary(*stack));
            std::fflush(stdout);
            for (;;) {
              if (const int sig = signals.Wait(std::chrono::milliseconds(100)); sig != 0) {
                fmt::print("stopping (signal {}): draining dispatchers and workers\n", sig);
                break;
              }
              if (const auto failed = stack->Failure()) {
                log::kCli->critical(
                    "component {} failed: {}; stopping the stack (exit status {}) for its supervisor to "
                    "restart it",
                    failed->name, failed->reason, kExitComponentFailed);
                fmt::print("stopping: component {} failed; draining the others\n", failed->name);
                status = kExitComponentFailed;
                break;
              }
              stack->Supervise();
            }
            std::fflush(stdout);
            {
              ForceOnSecondSignal force(signals);
              stack->Stop();  // the drain; a second signal ends it early
            }
            if (const auto failed = stack->Failure(); failed && status == 0) {
              log::kCli->critical("component {} failed during the drain: {}; exit status {}", failed->name,
                                  failed->reason, kExitComponentFailed);
              status = kExitComponentFailed;
            }
            stack.reset();
            return status;
          }};
}

}  // namespace runnel::cli
