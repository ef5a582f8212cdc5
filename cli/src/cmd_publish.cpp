// `runnel publish TOPIC`: publishes events to the running stack's Kafka and prints their ids.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "kafka_client.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/log.hpp"
#include "runnel/kafka/producer.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
Command AddPublish(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string topic;
    std::string key;
    std::string data;
    std::string file;
    std::string lines;
    std::string content_type;
    std::vector<std::string> headers;
    bool any_topic = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "publish", "Publish events to a topic of the running stack; prints one event id per line");
  sub->add_option("topic", flags->topic, "Topic (a function's topic is named after the function by default)")
      ->required();
  sub->add_option("--key", flags->key, "Kafka key: events with the same key run one at a time, in order");
  auto* data = sub->add_option("--data", flags->data, "The payload, as given");
  auto* file = sub->add_option("--file", flags->file,
                               "A file: inline up to 1 MiB, otherwise sent as a file:// reference")
                   ->check(CLI::ExistingFile);
  auto* lines = sub->add_option("--lines", flags->lines, "One event per line of this file ('-' for stdin)");
  data->excludes(file)->excludes(lines);
  file->excludes(lines);
  sub->add_option("--content-type", flags->content_type,
                  "Content type (default: from the file name, or text/plain)");
  sub->add_option("--header", flags->headers, "Extra header NAME=VALUE (repeatable)");
  sub->add_flag("--any-topic", flags->any_topic,
                "Publish even when no function of the running stack consumes TOPIC (a warning says so)");
  AddKafkaClientFlags(sub, common);
  return {sub, [flags, &common] {
            if (flags->data.empty() && flags->file.empty() && flags->lines.empty()) {
              throw ConfigError("publish: give --data, --file or --lines");
            }
            const StackClient stack(StackAccess::Resolve(common));
            if (const auto served = stack.ServedTopics();
                served && !std::binary_search(served->begin(), served->end(), flags->topic)) {
              const std::string problem = fmt::format(
                  "no function of the running stack consumes topic '{}' (its topics: {})", flags->topic,
                  served->empty() ? std::string("none") : fmt::format("{}", fmt::join(*served, ", ")));
              if (!flags->any_topic)
                throw ConfigError(problem + "; check the name, or pass --any-topic to publish anyway");
              log::kCli->warn("{}; publishing anyway (--any-topic)", problem);
            }
            Headers extra;
            for (const auto& h : flags->headers) {
              const auto eq = h.find('=');
              if (eq == std::string::npos || eq == 0)
                throw ConfigError(fmt::format("--header '{}' is not NAME=VALUE", h));
              extra.push_back({h.substr(0, eq), h.substr(eq + 1)});
            }
            std::vector<std::pair<std::string, Envelope>> events;  // payload, envelope
            auto base = [&] {
              Envelope env;
              env.id = NewEventId();
              env.trace_id = NewTraceId();
              env.extra = extra;
              return env;
            };
            if (!flags->file.empty()) {
              const auto path = std::filesystem::absolute(flags->file);
              Envelope env = base();
              env.content_type = flags->content_type.empty() ? ContentTypeFor(path) : flags->content_type;
              const auto size = std::filesystem::file_size(path);
              std::string payload;
              if (size <= limits::kInlinePayloadMax) {
                std::ifstream in(path, std::ios::binary);
                payload.assign(std::istreambuf_iterator<char>(in), {});
              } else {
                env.file = FileRef{path.string(), size, path.filename().string()};
              }
              events.emplace_back(std::move(payload), std::move(env));
            } else if (!flags->lines.empty()) {
              std::ifstream file_in;
              if (flags->lines != "-") {
                file_in.open(flags->lines);
                if (!file_in) throw ConfigError(fmt::format("cannot read {}", flags->lines));
              }
              std::istream& in = flags->lines == "-" ? std::cin : file_in;
              for (std::string line; std::getline(in, line);) {
                if (line.empty()) continue;
                Envelope env = base();
                env.content_type = flags->content_type.empty() ? "text/plain" : flags->content_type;
                events.emplace_back(std::move(line), std::move(env));
              }
            } else {
              Envelope env = base();
              env.content_type = flags->content_type.empty() ? "text/plain" : flags->content_type;
              events.emplace_back(flags->data, std::move(env));
            }

            auto producer = stack.Producer({flags->topic});
            std::atomic<int> failed{0};
            for (auto& [payload, env] : events) {
              std::optional<std::string> key;
              if (!flags->key.empty()) key = flags->key;
              producer->Produce({flags->topic, kafka::kAnyPartition, key, std::move(payload), env.Encode()},
                                [&failed](const kafka::Delivery& d) {
                                  if (!d.Ok()) {
                                    failed.fetch_add(1);
                                    fmt::print(stderr, "runnel: an event was not delivered: {}\n",
                                               d.error_message);
                                  }
                                });
              fmt::print("{}\n", env.id);
            }
            const auto left = producer->Flush(std::chrono::seconds(30));
            if (left > 0 || failed.load() > 0) {
              throw Error(fmt::format("{} event(s) not acknowledged by Kafka", left + failed.load()), true);
            }
            return 0;
          }};
}

}  // namespace runnel::cli
