// `runnel config check [FILE]`: validates a runnel.yaml (without FILE: the built-in default stack
// `runnel up` serves) the way `runnel up` does before it starts anything (keys, values, and that
// every function accepts its params), without starting anything.
#include <fmt/format.h>

#include "commands.hpp"
#include "runnel/core/config.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/stack/check_config.hpp"

namespace runnel::cli {

Command AddConfig(CLI::App& app, CommonOptions&) {
  auto file = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("config", "Work with stack configs (runnel.yaml)");
  sub->require_subcommand(1);
  auto* check = sub->add_subcommand("check",
                                    "Validate a runnel.yaml as `runnel up` would, start nothing; print its "
                                    "functions, or the error (exit 1)");
  check->add_option("FILE", *file,
                    "The stack config to check (default: the built-in stack `runnel up` serves without one)");
  return {sub, [file] {
            // A missing file is a config error (exit 1) like any other, not a usage error.
            StackConfig config =
                file->empty() ? DefaultStack(functions::Builtins().Names()) : LoadStackConfig(*file);
            (void)stack::CheckConfig(config);
            fmt::print("{}: ok, {} function(s)\n", config.source, config.functions.size());
            fmt::print("Kafka: {}\n", config.kafka_bootstrap.empty()
                                          ? "embedded (unless runnel up --kafka)"
                                          : config.kafka_bootstrap + " (runnel up --kafka overrides)");
            if (config.outputs) {  // header values are secrets: only their names
              std::string names;
              for (const auto& [name, value] : config.outputs->headers)
                names += (names.empty() ? "" : ", ") + name;
              fmt::print("outputs: PUT to {} (headers: {}; timeout {} ms)\n", UrlForLogs(config.outputs->url),
                         names.empty() ? "none" : names, config.outputs->timeout.count());
            }
            if (config.workers.backend == WorkersConfig::Backend::kKubernetes) {
              const auto& k = config.workers.kubernetes;
              std::string names;
              for (const auto& [fn, name] : k.deployments)
                names += fmt::format("{}{} -> {}", names.empty() ? "" : ", ", fn, name);
              fmt::print("workers: Kubernetes Deployments in namespace {} at {} ({}), timeout {} ms{}\n",
                         k.ns.empty() ? "(the service account's)" : k.ns,
                         k.api_server.empty() ? "(the in-cluster API server)" : k.api_server, names,
                         k.timeout.count(), k.scale_to_zero_on_stop ? ", scaled to 0 on stop" : "");
            } else if (config.workers.backend == WorkersConfig::Backend::kExternal) {
              fmt::print("workers: run outside the stack, scaled by runnel_autoscaler_workers_desired\n");
            } else {
              fmt::print("workers: local processes\n");
            }
            for (const auto& f : config.functions) {
              const BatchSpec batch = f.batch.value_or(BatchSpec{});
              fmt::print(
                  "  {:<16} {:<24} topic {:<16} dlq {:<20} results {:<24} workers {}..{}  batch {}/{}ms\n",
                  f.name, f.handler, f.topic, f.dead_letter_topic,
                  f.results_topic.empty() ? "-" : f.results_topic, f.scaling.min, f.scaling.max, batch.size,
                  batch.window.count());
            }
            return 0;
          }};
}

}  // namespace runnel::cli
