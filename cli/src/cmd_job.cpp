// `runnel job run|list|status`: scheduled batch jobs, through the running stack's control socket
// (docs/protocol.md §4).
#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "commands.hpp"
#include "control_request.hpp"
#include "exit_codes.hpp"
#include "runnel/core/control_messages.hpp"
#include "runnel/core/error.hpp"

namespace runnel::cli {
namespace {

std::string Seconds(std::int64_t ms) { return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0); }

void PrintReport(const nlohmann::json& r) {
  fmt::print("job {}: {}\n", r.value("job", ""), r.value("state", ""));
  fmt::print("  function  {}\n", r.value("function", ""));
  fmt::print("  items     {}\n", r.value("items", 0));
  fmt::print("  done      {}\n", r.value("done", 0));
  fmt::print("  failed    {}\n", r.value("failed", 0));
  if (r.value("pending", 0) > 0) fmt::print("  pending   {}\n", r.value("pending", 0));
  fmt::print("  time      {}\n", Seconds(r.value("elapsed_ms", std::int64_t{0})));
  if (r.contains("error")) fmt::print("  error     {}\n", r["error"].get<std::string>());
  for (const auto& f : r.value("failures", nlohmann::json::array())) {
    fmt::print("  failed: {}: {}: {}\n", f.value("item", ""), f.value("error_kind", ""),
               f.value("error", ""));
  }
  if (r.value("failed", 0) > static_cast<int>(r.value("failures", nlohmann::json::array()).size())) {
    fmt::print("  (only the first {} failures are listed)\n", r["failures"].size());
  }
}

void PrintRecord(const nlohmann::json& record, bool json) {
  if (json) {
    fmt::print("{}\n", record.dump());
  } else {
    PrintReport(record);
  }
}

int ExitFor(const nlohmann::json& record) {
  const std::string state = record.value("state", "");
  return state == "done" ? exit_code::kOk : state == "running" ? exit_code::kTimeout : exit_code::kFailure;
}

}  // namespace

Command AddJob(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string name;
    std::string job;
    bool wait = false;
    bool json = false;
    double timeout = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub =
      app.add_subcommand("job", "Scheduled batch jobs: run a schedule now, list schedules, show a job");
  sub->require_subcommand(1);
  auto* run = sub->add_subcommand(
      "run", "Fire a schedule now; prints the job id and item count (--wait: progress and a report)");
  run->add_option("name", flags->name, "The schedule's name (runnel.yaml schedules[].name)")->required();
  run->add_flag("--wait", flags->wait,
                "Wait for every item's outcome; exit 0 all done, 1 some failed, 4 timeout");
  run->add_option("--timeout", flags->timeout,
                  "With --wait: give up after this long, e.g. 10m (exit 4); 0 waits forever")
      ->transform(DurationSeconds());
  run->add_flag("--json", flags->json, "Print JSON: {job, items, function}, or the job's record with --wait");
  auto* list = sub->add_subcommand("list", "The stack's schedules with their next fire time and last run");
  list->add_flag("--json", flags->json, "Print a JSON array");
  auto* status = sub->add_subcommand("status", "A job's record: items, done, failed with reasons, time");
  status->add_option("job", flags->job, "The job id")->required();
  status->add_flag("--json", flags->json, "Print the record as JSON");
  for (auto* command : {run, list, status}) AddJoinOption(command, common);

  return {
      sub, [flags, &common, run, list] {
        const StackAccess stack = StackAccess::Resolve(common);
        const auto ask = [&stack](const ControlRequest& request, std::chrono::seconds within) {
          return AskStackOk(stack, request, within);
        };
        if (list->parsed()) {
          const auto schedules = ask(ControlRequest::JobList(), std::chrono::seconds(10))["schedules"];
          if (flags->json) {
            fmt::print("{}\n", schedules.dump());
            return 0;
          }
          if (schedules.empty())
            fmt::print("no schedules in this stack (add them under schedules: in runnel.yaml)\n");
          for (const auto& s : schedules) {
            const std::string last = s.value("last_job", "");
            fmt::print("{}  cron '{}' ({}) -> {}  {}\n  next {}  last run {}\n", s.value("name", ""),
                       s.value("cron", ""), s.value("timezone", ""), s.value("function", ""),
                       s.value("source", ""), s.value("next_fire_local", ""),
                       last.empty() ? std::string("never") : last + " at " + s.value("last_run_at", ""));
          }
          return 0;
        }
        if (!run->parsed()) {
          const auto record = ask(ControlRequest::JobStatus(flags->job), std::chrono::seconds(10))["record"];
          PrintRecord(record, flags->json);
          return ExitFor(record);
        }

        const auto started = std::chrono::steady_clock::now();
        const auto fired = ask(ControlRequest::JobRun(flags->name), std::chrono::seconds(120));
        const std::string job = fired.value("job", "");
        if (!flags->wait) {
          if (flags->json) {
            fmt::print(
                "{}\n",
                nlohmann::json{{"job", job}, {"items", fired["items"]}, {"function", fired["function"]}}
                    .dump());
          } else {
            fmt::print("job {}: {} item(s) to {}\n", job, fired.value("items", 0),
                       fired.value("function", ""));
          }
          return fired.contains("error") ? exit_code::kFailure : exit_code::kOk;
        }
        if (!flags->json) {
          fmt::print("job {}: {} item(s) to {}\n", job, fired.value("items", 0), fired.value("function", ""));
          std::fflush(stdout);
        }
        const bool tty = ::isatty(STDERR_FILENO) != 0;
        const auto deadline =
            started + std::chrono::milliseconds(static_cast<std::int64_t>(flags->timeout * 1000));
        std::int64_t shown = -1;
        nlohmann::json record;
        while (true) {
          record = ask(ControlRequest::JobStatus(job), std::chrono::seconds(10))["record"];
          const std::int64_t finished = record.value("done", 0) + record.value("failed", 0);
          if (finished != shown) {
            shown = finished;
            const auto line =
                fmt::format("{}/{} finished, {} failed, {}", finished, record.value("items", 0),
                            record.value("failed", 0), Seconds(record.value("elapsed_ms", std::int64_t{0})));
            if (tty) {
              fmt::print(stderr, "\r  {}   ", line);
            } else {
              fmt::print(stderr, "progress: {}\n", line);
            }
          }
          if (record.value("state", "") != "running") break;
          if (flags->timeout > 0 && std::chrono::steady_clock::now() >= deadline) {
            if (tty) fmt::print(stderr, "\n");
            fmt::print(stderr, "runnel: job {} not finished within {} s\n", job, flags->timeout);
            PrintRecord(record, flags->json);
            return exit_code::kTimeout;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (tty) fmt::print(stderr, "\n");
        PrintRecord(record, flags->json);
        return ExitFor(record);
      }};
}

}  // namespace runnel::cli
