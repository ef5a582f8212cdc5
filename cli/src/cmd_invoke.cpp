// `runnel invoke FUNCTION`: a synchronous call. Publishes one event with a reply-to and a
// deadline, waits for that event's outcome, prints the output.
//
// The outcome comes from the results feed, which may drop it (docs/protocol.md §4.1), so invoke
// also asks the stack for it by event id (`outcome <event id>`, §4.4: the outcomes of synchronous
// calls the stack keeps): first after kFirstAsk, then every kAskInterval while it waits, and once
// more at the deadline. An event that has an outcome is therefore never reported as having none.
// Exit status (exit_codes.hpp): 0 ok, 1 the function failed (error or dead-letter), 4 no outcome in
// time (or an ok outcome whose output the stack no longer holds, said so on stderr).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "commands.hpp"
#include "control_request.hpp"
#include "exit_codes.hpp"
#include "kafka_client.hpp"
#include "runnel/core/control_messages.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/telemetry/trace_store.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kFirstAsk{250};  // the feed normally answers well before
constexpr std::chrono::milliseconds kAskInterval{500};
constexpr std::chrono::milliseconds kAskTimeout{2000};  // one question, and the last one after the deadline

// The stack's answer about one call: its outcome, and whether the output is missing from it.
struct StackOutcome {
  Outcome outcome;
  bool output_lost = false;
  std::size_t output_bytes = 0;
};

// The outcome of event `id` of `function` from the reply to `outcome` (docs/protocol.md §4.4);
// nullopt while the stack has none (not consumed yet, in progress). Throws Error when the reply is
// not what the protocol says.
std::optional<StackOutcome> FromStackAnswer(const ControlReply& reply, const std::string& function,
                                            const std::string& id) {
  if (!reply.ok) return std::nullopt;  // not consumed yet (or forgotten)
  try {
    for (const auto& o : reply.body.at("outcomes")) {
      if (o.at("function").get<std::string>() != function) continue;
      const std::string status = o.at("status").get<std::string>();
      // Handed off: another stack of a shared function runs it now; its outcome comes from there.
      if (status == "in progress" || status == "handed off") return std::nullopt;
      StackOutcome out;
      if (o.contains("meta")) {
        std::string output;
        if (o.contains("output")) {
          output = o["output"].get<std::string>();
        } else if (o.contains("output_base64")) {
          auto decoded = Base64Decode(o["output_base64"].get<std::string>());
          if (!decoded) throw Error("output_base64 is not base64", false);
          output = std::move(*decoded);
        }
        out.outcome = Outcome::FromFrames(o["meta"].dump(), std::move(output));
        out.output_lost = !o.value("output_kept", true);
        out.output_bytes = o.value("output_bytes", std::size_t{0});
        return out;
      }
      // Only the trace is left (the kept outcome is gone beyond its bounds): status and reason.
      out.outcome.id = id;
      out.outcome.function = function;
      out.outcome.status = status == "ok"            ? OutcomeStatus::kOk
                           : status == "dead-letter" ? OutcomeStatus::kDeadLetter
                                                     : OutcomeStatus::kError;
      out.outcome.attempts = o.value("attempts", 1);
      out.outcome.error_kind = o.value("error_kind", "");
      out.outcome.error = o.value("error", "");
      out.output_lost = out.outcome.status == OutcomeStatus::kOk;
      return out;
    }
  } catch (const std::exception& e) {
    throw Error(fmt::format("the stack's outcome of event {} is malformed: {}", id, e.what()), false);
  }
  return std::nullopt;
}

int Print(const StackOutcome& answer, const std::string& function, bool json) {
  const Outcome& outcome = answer.outcome;
  if (answer.output_lost && outcome.status == OutcomeStatus::kOk) {
    fmt::print(
        stderr,
        "runnel: event {} of {} finished ok, but the results feed dropped its outcome and the stack no "
        "longer "
        "holds its output ({} bytes; it keeps outputs of calls up to {} bytes, the most recent first)\n",
        outcome.id, function, answer.output_bytes, telemetry::TraceStore::kKeptOutputMax);
    return exit_code::kTimeout;
  }
  if (json) {
    fmt::print("{}\n", JsonText(outcome.ToJson(false)));
  } else if (outcome.status == OutcomeStatus::kOk) {
    std::fwrite(outcome.output.data(), 1, outcome.output.size(), stdout);
    if (::isatty(1) && (outcome.output.empty() || outcome.output.back() != '\n')) std::fputc('\n', stdout);
  } else {
    fmt::print(stderr, "runnel: {} {}: {}: {} (after {} attempt(s))\n", function, StatusName(outcome.status),
               outcome.error_kind, outcome.error, outcome.attempts);
  }
  return outcome.status == OutcomeStatus::kOk ? exit_code::kOk : exit_code::kFailure;
}

}  // namespace

Command AddInvoke(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string function;
    std::string data;
    std::string file;
    std::string key;
    double timeout = 30;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "invoke", "Call a function and wait for its result (exit 0 ok, 1 failed, 4 timed out)");
  sub->add_option("function", flags->function, "The function")->required();
  auto* data = sub->add_option("--data", flags->data, "The payload");
  sub->add_option("--file", flags->file, "A file as the input (sent by reference)")
      ->check(CLI::ExistingFile)
      ->excludes(data);
  sub->add_option("--key", flags->key, "Kafka key (orders the call after earlier events of the same key)");
  sub->add_option("--timeout", flags->timeout,
                  "How long to wait for the outcome, also the event's deadline (default 30s)")
      ->transform(DurationSeconds())
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", flags->json, "Print the whole outcome as JSON");
  AddKafkaClientFlags(sub, common);
  AddJoinOption(sub, common);
  return {sub, [flags, &common] {
            const StackClient stack(StackAccess::Resolve(common));
            const FunctionTopics topics = stack.Function(flags->function);
            const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(flags->timeout * 1000));

            Envelope env;
            env.id = NewEventId();
            env.trace_id = NewTraceId();
            env.reply_to = "invoke." + env.id;
            env.deadline_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  (std::chrono::system_clock::now() + timeout).time_since_epoch())
                                  .count();
            std::string payload = flags->data;
            if (!flags->file.empty()) {
              const auto path = std::filesystem::absolute(flags->file);
              env.file = FileRef{path.string(), std::filesystem::file_size(path), path.filename().string()};
              env.content_type = ContentTypeFor(path);
            } else {
              env.content_type = "text/plain";
            }
            // Subscribe before publishing, so the answer cannot slip past.
            ResultsSubscription results(stack, {flags->function + "/" + env.reply_to});
            try {
              auto producer = stack.Producer({topics.topic});
              std::optional<std::string> key;
              if (!flags->key.empty()) key = flags->key;
              producer->ProduceSync(
                  {topics.topic, kafka::kAnyPartition, key, std::move(payload), env.Encode()}, timeout);
            } catch (const kafka::KafkaTimeout& e) {
              // The whole call is bounded by --timeout; the deadline header makes the dispatcher drop
              // the event if it lands after all.
              fmt::print(stderr, "runnel: no outcome for event {} from {} within {} s ({})\n", env.id,
                         flags->function, flags->timeout, e.what());
              return exit_code::kTimeout;
            }
            std::string ask_problem;  // why the last question to the stack failed, if it did
            const auto ask = [&](std::chrono::milliseconds within) -> std::optional<StackOutcome> {
              try {
                const auto answer = AskStack(stack.Access(), ControlRequest::OutcomeOf(env.id), within);
                ask_problem.clear();
                return FromStackAnswer(answer, flags->function, env.id);
              } catch (const Error& e) {
                ask_problem = e.what();
                return std::nullopt;
              }
            };
            const auto until = Clock::now() + timeout;
            auto next_ask = Clock::now() + kFirstAsk;
            for (;;) {
              const auto now = Clock::now();
              if (now >= until) break;
              const auto wait = std::chrono::ceil<std::chrono::milliseconds>(std::min(until, next_ask) - now);
              if (auto outcome = results.Next(wait)) {
                if (outcome->id == env.id) return Print({std::move(*outcome)}, flags->function, flags->json);
                continue;
              }
              if (Clock::now() < next_ask) continue;
              // No answer on the feed yet: it may have dropped it, so ask the stack.
              const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
              if (auto answer = ask(std::clamp(left, std::chrono::milliseconds(1), kAskTimeout))) {
                return Print(*answer, flags->function, flags->json);
              }
              next_ask = Clock::now() + kAskInterval;
            }
            // The deadline passed: one last question, in case the outcome came at the end.
            if (auto answer = ask(kAskTimeout)) return Print(*answer, flags->function, flags->json);
            fmt::print(stderr, "runnel: no outcome for event {} from {} within {} s{}\n", env.id,
                       flags->function, flags->timeout,
                       ask_problem.empty() ? "" : fmt::format(" (asking the stack: {})", ask_problem));
            return exit_code::kTimeout;
          }};
}

}  // namespace runnel::cli
