// `runnel status`: asks the running stack's autoscaler (the `control` endpoint) for the state of
// every function: lag, rates, desired and running workers, outcome counts.
#include <signal.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "commands.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::cli {
namespace {

void PrintText(const nlohmann::json& status) {
  for (const auto& f : status.at("functions")) {
    fmt::print("{}  topic {} ({} partitions)  lag {} events, oldest {} ms  in {:.1f}/s  done {:.1f}/s  service {:.1f} ms\n",
               f.value("name", "?"), f.value("topic", "?"), f.value("partitions", 0), f.value("lag", 0),
               f.value("oldest_age_ms", 0), f.value("arrival_per_s", 0.0), f.value("completion_per_s", 0.0),
               f.value("service_ms", 0.0));
    fmt::print("  workers: desired {}, running {}, joined {} (scaling {}..{}){}\n", f.value("desired", 0),
               f.value("running", 0), f.value("joined", 0), f["scaling"].value("min", 0), f["scaling"].value("max", 0),
               f.value("crash_loop", false) ? "  CRASH LOOP" : "");
    fmt::print("  why: {}\n", f.value("reason", ""));
    fmt::print("  queued {}  in flight {}  ok {}  errors {}  dead-lettered {}  retries {}  lost to retention {}  "
               "restarts {}\n",
               f.value("queued", 0), f.value("in_flight", 0), f.value("succeeded", 0), f.value("errors", 0),
               f.value("dead_lettered", 0), f.value("retries", 0), f.value("retention_lost", 0), f.value("restarts", 0));
    for (const auto& w : f.at("workers")) {
      fmt::print("    {:<16} pid {:<8} {:<10} in flight {:<4} restarts {}{}\n", w.value("id", "?"), w.value("pid", 0),
                 w.value("state", "?"), w.value("in_flight", 0), w.value("restarts", 0),
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
  sub->add_flag("--json", flags->json, "One JSON object: {\"functions\": [...]}");
  sub->add_option("--timeout", flags->timeout, "Seconds to wait for the stack's answer")->check(CLI::PositiveNumber);
  return {sub, [flags, &common] {
            const StateDir state = StateDir::Resolve(common.state_dir);
            const auto endpoints = state.ReadEndpoints();
            if (!endpoints.contains("status")) {
              throw ConfigError(fmt::format("no running stack with an autoscaler in {} (start one with 'runnel up')",
                                            state.Root().string()));
            }
            const int pid = endpoints.value("pid", 0);
            if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
              throw ConfigError(fmt::format("the stack in {} (pid {}) is not running; its endpoints.json is stale",
                                            state.Root().string(), pid));
            }
            zmq::context_t ctx(1);
            zmq::socket_t req(ctx, zmq::socket_type::req);
            req.set(zmq::sockopt::linger, 0);
            req.connect(endpoints["status"].get<std::string>());
            req.send(zmq::str_buffer("status"), zmq::send_flags::none);
            zmq::pollitem_t items[] = {{req.handle(), 0, ZMQ_POLLIN, 0}};
            zmq::poll(items, 1, std::chrono::milliseconds(static_cast<std::int64_t>(flags->timeout * 1000)));
            if ((items[0].revents & ZMQ_POLLIN) == 0) {
              throw Error(fmt::format("the stack (pid {}) did not answer at {} within {} s", pid,
                                      endpoints["status"].get<std::string>(), flags->timeout),
                          true);
            }
            zmq::message_t reply;
            (void)req.recv(reply);
            const auto status = nlohmann::json::parse(reply.to_string_view(), nullptr, false);
            if (!status.is_object() || !status.contains("functions")) {
              throw Error("the stack's answer is not a status: " + reply.to_string(), false);
            }
            if (flags->json) {
              fmt::print("{}\n", status.dump());
            } else {
              PrintText(status);
            }
            return 0;
          }};
}

}  // namespace runnel::cli
