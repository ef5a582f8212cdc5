// `runnel status`: asks the running stack's autoscaler (the `control` endpoint) for the state of
// every function: lag, rates, desired and running workers, outcome counts, usage (the bill).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "control_request.hpp"
#include "runnel/core/duration_text.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::cli {
namespace {

// [0, 2, 5] as "0,2,5".
std::string CommaList(const nlohmann::json& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item.dump();
  return out;
}

void PrintText(const nlohmann::json& status) {
  if (const auto components = status.find("components");
      components != status.end() && components->is_array()) {
    std::string up, down;
    for (const auto& c : *components) {
      if (c.value("up", false)) {
        up += (up.empty() ? "" : ", ") + c.value("name", "?");
      } else {
        down += fmt::format("  DOWN {}: {}\n", c.value("name", "?"), c.value("reason", ""));
      }
    }
    fmt::print("components up: {}\n{}", up.empty() ? "none" : up, down);
  }
  for (const auto& f : status.at("functions")) {
    fmt::print(
        "{}  topic {} ({} partitions)  lag {} events, oldest {} ms  in {:.1f}/s  done {:.1f}/s  service {}\n",
        f.value("name", "?"), f.value("topic", "?"), f.value("partitions", 0), f.value("lag", 0),
        f.value("oldest_age_ms", 0), f.value("arrival_per_s", 0.0), f.value("completion_per_s", 0.0),
        MillisText(f.value("service_ms", 0.0)));
    fmt::print("  workers: desired {}, running {}, joined {} (scaling {}..{}){}\n", f.value("desired", 0),
               f.value("running", 0), f.value("joined", 0), f["scaling"].value("min", 0),
               f["scaling"].value("max", 0), f.value("crash_loop", false) ? "  CRASH LOOP" : "");
    fmt::print("  why: {}\n", f.value("reason", ""));
    if (const auto o = f.find("orchestrator"); o != f.end() && o->is_object()) {
      const std::string error = o->value("error", "");
      if (o->value("kind", "") == "external") {
        // Nothing to read back: the workers that joined are the `joined` count above.
        fmt::print("  external: scaled by {}, workers wanted {}\n", o->value("target", "?"),
                   o->value("replicas_set", 0));
      } else {
        fmt::print("  {}: {}, replicas set {}{}, pods {}{}\n", o->value("kind", "?"), o->value("target", "?"),
                   o->value("replicas_set", 0), o->value("applied", false) ? "" : " (not applied yet)",
                   o->value("replicas", -1) < 0 ? "unknown" : std::to_string(o->value("replicas", 0)),
                   error.empty() ? "" : "\n  ORCHESTRATOR ERROR: " + error);
      }
    }
    if (f.value("shared", false)) {
      const std::string owned = CommaList(f.value("partitions_owned", nlohmann::json::array()));
      fmt::print(
          "  shared through its consumer group: this stack owns partitions {}; {} rebalance(s), {} event(s) "
          "handed off\n",
          owned.empty() ? "none" : owned, f.value("rebalances", 0), f.value("handed_off", 0));
    }
    if (const auto stacks = f.find("stacks"); stacks != f.end() && stacks->is_array()) {
      for (const auto& s : *stacks) {
        if (s.value("self", false)) continue;
        const std::string partitions = CommaList(s.value("partitions", nlohmann::json::array()));
        fmt::print(
            "  other stack on its group: {} (pid {} on {}), last committed partitions {}{}, {:.1f} s ago, "
            "{}\n",
            s.value("stack", "?"), s.value("pid", 0), s.value("host", "?"), partitions,
            s.value("shared", false) ? " (shared)" : "", static_cast<double>(s.value("age_ms", 0)) / 1000.0,
            s.value("stopped", false) ? "stopped" : (s.value("live", false) ? "live" : "gone"));
      }
    }
    if (f.value("blocked", false)) {
      fmt::print(
          "  BLOCKED: {} (partitions paused, nothing committed past the event; the stack's log says what to "
          "fix)\n",
          f.value("blocked_reason", ""));
    }
    fmt::print(
        "  queued {}  in flight {}  ok {}  errors {}  dead-lettered {}  filtered {}  retries {}  lost to "
        "retention {}  restarts {}\n",
        f.value("queued", 0), f.value("in_flight", 0), f.value("succeeded", 0), f.value("errors", 0),
        f.value("dead_lettered", 0), f.value("filtered", 0), f.value("retries", 0),
        f.value("retention_lost", 0), f.value("restarts", 0));
    const auto usage = f.value("usage", nlohmann::json::object());
    fmt::print(
        "  usage: {} invocations, {:.1f} worker-s wall, {:.2f} CPU-s, peak memory {:.1f} MiB, {} worker "
        "start(s)\n",
        usage.value("invocations", 0), usage.value("worker_seconds", 0.0), usage.value("cpu_seconds", 0.0),
        static_cast<double>(usage.value("peak_rss_kb", 0)) / 1024.0, usage.value("workers_started", 0));
    for (const auto& w : f.at("workers")) {
      fmt::print(
          "    {:<16} pid {:<8} {:<10} in flight {:<4} restarts {:<3} rss {:.1f} MiB  cpu {:.2f} s{}\n",
          w.value("id", "?"), w.value("pid", 0), w.value("state", "?"), w.value("in_flight", 0),
          w.value("restarts", 0), static_cast<double>(w.value("rss_kb", 0)) / 1024.0, w.value("cpu_s", 0.0),
          w.value("last_exit", "").empty() ? "" : "  last exit: " + w.value("last_exit", ""));
    }
  }
}

}  // namespace

Command AddStatus(CLI::App& app, CommonOptions& common) {
  struct Flags {
    bool json = false;
    double timeout = 2;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "status", "Show each function of the running stack: lag, rates, desired and running workers, outcomes");
  sub->add_flag("--json", flags->json,
                "One JSON object: {\"functions\": [...], \"components\": [...], \"age_ms\"}");
  sub->add_option("--timeout", flags->timeout, "How long to wait for the stack's answer (default 2s)")
      ->transform(DurationSeconds())
      ->check(CLI::PositiveNumber);
  AddJoinOption(sub, common);
  return {sub, [flags, &common] {
            const auto status = QueryStatus(StackAccess::Resolve(common), SecondsOption(flags->timeout));
            if (flags->json) {
              fmt::print("{}\n", status.dump());
            } else {
              PrintText(status);
            }
            return 0;
          }};
}

}  // namespace runnel::cli
