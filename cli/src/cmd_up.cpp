// `runnel up`: runs a stack in the foreground until SIGINT/SIGTERM.
#include <fmt/format.h>

#include "commands.hpp"
#include "runnel/core/signals.hpp"
#include "runnel/functions/function.hpp"
#include "stack.hpp"

namespace runnel::cli {

Command AddUp(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string config;
    std::string kafka;
    std::string metrics;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "up", "Run the stack in the foreground: Kafka (embedded unless --kafka), a dispatcher per function, workers");
  sub->add_option("--config", flags->config, "Stack config (runnel.yaml); default: every built-in function")
      ->check(CLI::ExistingFile);
  sub->add_option("--kafka", flags->kafka, "Use this Kafka (host:port,...) instead of the embedded broker");
  sub->add_option("--metrics", flags->metrics,
                  "Serve Prometheus metrics on HOST:PORT (port 0: any free port; default: the config's `metrics`, "
                  "else 127.0.0.1:0); the URL goes into endpoints.json as `metrics`");
  return {sub, [flags, &common] {
            ShutdownSignals signals;
            StackConfig config = flags->config.empty() ? DefaultStack(functions::Builtins().Names())
                                                       : LoadStackConfig(flags->config);
            if (!flags->kafka.empty()) config.kafka_bootstrap = flags->kafka;
            if (!flags->metrics.empty()) config.metrics_listen = flags->metrics;
            StateDir state = StateDir::Resolve(common.state_dir);
            StackLock lock(state, "runnel up");
            Stack stack(std::move(config), state, std::filesystem::read_symlink("/proc/self/exe"));
            fmt::print("runnel stack up ({} in {})\n{}", "endpoints", state.EndpointsFile().string(), stack.Summary());
            std::fflush(stdout);
            while (signals.Wait(std::chrono::milliseconds(100)) == 0) {
              stack.Supervise();
            }
            fmt::print("stopping: draining dispatchers and workers\n");
            std::fflush(stdout);
            return 0;
          }};
}

}  // namespace runnel::cli
