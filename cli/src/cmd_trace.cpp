// `runnel trace EVENT_ID`: where one event went, from what the running stack recorded (its
// TraceStore, asked through the control socket): the record it came from, every attempt, the
// retries, the final outcome and, for a failure, the dead-letter topic and reason.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "control_request.hpp"
#include "runnel/core/control_messages.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::cli {
namespace {

// Epoch milliseconds as UTC time of day, e.g. 12:03:04.567.
std::string TimeOfDay(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:%H:%M:%S}.{:03}Z", tm, ms % 1000);
}

void PrintText(const nlohmann::json& t) {
  const auto& attempts = t.at("attempts");
  fmt::print("event {} in {}: {}", t.value("id", "?"), t.value("function", "?"), t.value("status", "?"));
  if (!attempts.empty()) {
    const int retries = t.value("retries", 0);
    fmt::print(" after {} attempt{}, {} {}", attempts.size(), attempts.size() == 1 ? "" : "s", retries,
               retries == 1 ? "retry" : "retries");
  }
  fmt::print("\n");
  fmt::print("  record    {}[{}]@{}", t.value("topic", "?"), t.value("partition", -1), t.value("offset", -1));
  if (t.contains("key")) fmt::print("  key {}", t.value("key", ""));
  if (t.contains("record_ms")) fmt::print("  published {}", TimeOfDay(t.value("record_ms", std::int64_t{0})));
  fmt::print("  consumed {}", TimeOfDay(t.value("received_ms", std::int64_t{0})));
  if (t.value("deliveries", 1) > 1) fmt::print("  (consumed {} times)", t.value("deliveries", 1));
  fmt::print("\n");
  for (const auto& a : attempts) {
    fmt::print("  attempt {} worker {}  started {}", a.value("attempt", 0), a.value("worker", "?"),
               TimeOfDay(a.value("start_ms", std::int64_t{0})));
    if (a.contains("duration_ms")) fmt::print("  {:.1f} ms", a.value("duration_ms", 0.0));
    fmt::print("  {}", a.value("result", "?"));
    if (a.contains("error")) fmt::print(": {}: {}", a.value("error_kind", "?"), a.value("error", ""));
    if (a.contains("retry_in_ms")) fmt::print("; retry in {} ms", a.value("retry_in_ms", 0));
    fmt::print("\n");
  }
  if (t.value("status", "") == "in progress") {
    fmt::print("  outcome   none yet\n");
    return;
  }
  fmt::print("  outcome   {}", t.value("status", "?"));
  if (t.contains("finished_ms")) fmt::print(" at {}", TimeOfDay(t.value("finished_ms", std::int64_t{0})));
  if (t.contains("latency_ms")) fmt::print(" ({} ms after it was published)", t.value("latency_ms", 0));
  fmt::print("\n");
  if (t.contains("error"))
    fmt::print("  reason    {}: {}\n", t.value("error_kind", "?"), t.value("error", ""));
  if (t.contains("dead_letter_topic")) {
    fmt::print("  dead letter on {} (runnel dlq {} shows it)\n", t.value("dead_letter_topic", ""),
               t.value("function", ""));
  }
}

}  // namespace

Command AddTrace(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string id;
    bool json = false;
    double timeout = 2;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "trace",
      "Show where one event went: its record, every attempt (worker, start, duration, error), outcome, DLQ");
  sub->add_option("EVENT_ID", flags->id, "The event's id (as `runnel publish` printed it)")->required();
  sub->add_flag("--json", flags->json, "One JSON object: {\"id\", \"traces\": [one per function]}");
  sub->add_option("--timeout", flags->timeout, "How long to wait for the stack's answer (default 2s)")
      ->transform(DurationSeconds())
      ->check(CLI::PositiveNumber);
  AddJoinOption(sub, common);
  return {sub, [flags, &common] {
            const auto request = ControlRequest::Trace(flags->id);
            // What the stack would refuse, refused here with the same message.
            if (const auto checked = DecodeControlRequest(Encode(request)); !checked) {
              throw ConfigError(checked.error().message);
            }
            const auto answer =
                AskStackOk(StackAccess::Resolve(common), request, SecondsOption(flags->timeout));
            if (!answer.contains("traces") || !answer["traces"].is_array()) {
              throw Error("the stack's answer is not a trace: " + JsonText(answer), false);
            }
            if (flags->json) {
              fmt::print("{}\n", JsonText(answer));
              return 0;
            }
            bool first = true;
            for (const auto& t : answer["traces"]) {
              if (!first) fmt::print("\n");
              first = false;
              PrintText(t);
            }
            return 0;
          }};
}

}  // namespace runnel::cli
