// `runnel invoke FUNCTION`: a synchronous call. Publishes one event with a reply-to and a
// deadline, waits for that event's outcome on the results feed, prints the output.
// Exit status: 0 ok, 1 the function failed (error or dead-letter), 2 no outcome in time.
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>

#include "commands.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/envelope.hpp"
#include "stack_client.hpp"

namespace runnel::cli {

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
  auto* sub = app.add_subcommand("invoke", "Call a function and wait for its result (exit 0 ok, 1 failed, 2 timed out)");
  sub->add_option("function", flags->function, "The function")->required();
  auto* data = sub->add_option("--data", flags->data, "The payload");
  sub->add_option("--file", flags->file, "A file as the input (sent by reference)")->check(CLI::ExistingFile)->excludes(data);
  sub->add_option("--key", flags->key, "Kafka key (orders the call after earlier events of the same key)");
  sub->add_option("--timeout", flags->timeout, "Seconds to wait for the outcome (also the event's deadline)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_flag("--json", flags->json, "Print the whole outcome as JSON");
  return {sub, [flags, &common] {
            const StackClient stack(common.state_dir);
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
              auto producer = stack.Producer();
              std::optional<std::string> key;
              if (!flags->key.empty()) key = flags->key;
              producer->ProduceSync({topics.topic, broker::kAnyPartition, key, std::move(payload), env.Encode()}, timeout);
            } catch (const broker::KafkaTimeout& e) {
              // The whole call is bounded by --timeout; the deadline header makes the dispatcher drop
              // the event if it lands after all.
              fmt::print(stderr, "runnel: no outcome for event {} from {} within {} s ({})\n", env.id, flags->function,
                         flags->timeout, e.what());
              return 2;
            }
            const auto until = std::chrono::steady_clock::now() + timeout;
            for (;;) {
              const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
              if (left.count() <= 0) break;
              auto outcome = results.Next(left);
              if (!outcome || outcome->id != env.id) continue;
              if (flags->json) {
                fmt::print("{}\n", JsonText(outcome->ToJson(false)));
              } else if (outcome->status == OutcomeStatus::kOk) {
                std::fwrite(outcome->output.data(), 1, outcome->output.size(), stdout);
                if (::isatty(1) && (outcome->output.empty() || outcome->output.back() != '\n')) std::fputc('\n', stdout);
              } else {
                fmt::print(stderr, "runnel: {} {}: {}: {} (after {} attempt(s))\n", flags->function, StatusName(outcome->status),
                           outcome->error_kind, outcome->error, outcome->attempts);
              }
              return outcome->status == OutcomeStatus::kOk ? 0 : 1;
            }
            fmt::print(stderr, "runnel: no outcome for event {} from {} within {} s\n", env.id, flags->function, flags->timeout);
            return 2;
          }};
}

}  // namespace runnel::cli
