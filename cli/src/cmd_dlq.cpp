// `runnel dlq FUNCTION`: lists a function's dead letters; with --replay, publishes them again to
// the function's topic. Replays are tracked by the consumer group runnel.dlq-replay.<function>,
// so running --replay twice never sends the same dead letter twice.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "runnel/core/json.hpp"
#include "runnel/broker/admin.hpp"
#include "runnel/broker/consumer.hpp"
#include "runnel/core/outcome.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

bool IsDeadLetterHeader(const std::string& name) {
  return name == "runnel-error" || name == "runnel-error-kind" || name == "runnel-origin" || name == "runnel-function" ||
         name == header::kAttempt;
}

// Reads `topic` from where `consumer` resumes (`start`: the beginning, or the group's committed
// offsets) up to the end offsets measured now; bounded by 30 s.
std::vector<broker::Message> ReadToEnd(broker::Consumer& consumer, broker::Admin& admin, const std::string& topic,
                                       std::int64_t start) {
  std::map<std::int32_t, std::int64_t> end;  // partitions with something to read, and where they end
  std::vector<broker::TopicPartitionOffset> partitions;
  for (const auto& po : admin.Offsets(topic, "")) {
    if (po.end <= po.log_start) continue;
    end[po.partition] = po.end;
    partitions.push_back({topic, po.partition, start});
  }
  if (partitions.empty()) return {};
  if (start == broker::kOffsetStored) {
    for (const auto& tp : consumer.Committed(partitions)) {
      if (tp.offset >= end[tp.partition]) end.erase(tp.partition);
    }
  }
  consumer.Assign(partitions);
  std::vector<broker::Message> out;
  std::map<std::int32_t, std::int64_t> next;
  const auto unread = [&] {
    return std::any_of(end.begin(), end.end(), [&](const auto& pe) { return next[pe.first] < pe.second; });
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (unread() && std::chrono::steady_clock::now() < until) {
    for (auto& m : consumer.PollBatch(500, std::chrono::milliseconds(100))) {
      next[m.partition] = m.offset + 1;
      out.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace

Command AddDlq(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string function;
    bool replay = false;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("dlq", "List a function's dead letters, or publish them again with --replay");
  sub->add_option("function", flags->function, "The function")->required();
  sub->add_flag("--replay", flags->replay, "Publish the dead letters not replayed before to the function's topic");
  sub->add_flag("--json", flags->json, "One JSON object per dead letter");
  return {sub, [flags, &common] {
            const StackClient stack(common.state_dir);
            const FunctionTopics topics = stack.Function(flags->function);
            broker::Admin admin(stack.Kafka());
            const std::string replay_group = "runnel.dlq-replay." + flags->function;
            broker::Consumer consumer(stack.Kafka(), {flags->replay ? replay_group : "runnel.dlq-list"});
            const auto letters =
                ReadToEnd(consumer, admin, topics.dead_letter_topic, flags->replay ? broker::kOffsetStored : broker::kOffsetBeginning);
            std::unique_ptr<broker::Producer> producer;
            if (flags->replay) producer = stack.Producer();
            std::vector<broker::TopicPartitionOffset> replayed;
            for (const auto& m : letters) {
              std::map<std::string, std::string> h;
              Headers original;
              for (const auto& header : m.headers) {
                h[header.name] = header.value;
                if (!IsDeadLetterHeader(header.name)) original.push_back(header);
              }
              if (flags->json) {
                nlohmann::json j = {{"id", h.count("runnel-id") ? h["runnel-id"] : ""},
                                    {"error", h["runnel-error"]},
                                    {"error_kind", h["runnel-error-kind"]},
                                    {"attempts", std::atoi(h[std::string(header::kAttempt)].c_str())},
                                    {"origin", h["runnel-origin"]},
                                    {"partition", m.partition},
                                    {"offset", m.offset}};
                if (m.key) j["key"] = IsPrintableUtf8(*m.key) ? nlohmann::json(*m.key) : nlohmann::json(nullptr);
                j[IsPrintableUtf8(m.value) ? "payload" : "payload_base64"] = IsPrintableUtf8(m.value) ? m.value : Base64Encode(m.value);
                fmt::print("{}\n", JsonText(j));
              } else {
                fmt::print("{} {} attempts={} from {}: {}\n", h.count("runnel-id") ? h["runnel-id"] : "-",
                           h["runnel-error-kind"], h[std::string(header::kAttempt)], h["runnel-origin"], h["runnel-error"]);
              }
              if (producer) {
                producer->ProduceSync({topics.topic, broker::kAnyPartition, m.key, m.value, original});
                replayed.push_back({m.topic, m.partition, m.offset + 1});
              }
            }
            if (producer && !replayed.empty()) consumer.CommitOffsets(replayed);
            if (flags->replay) {
              fmt::print(stderr, "{} dead letter(s) published again to {}\n", replayed.size(), topics.topic);
            } else if (letters.empty() && !flags->json) {
              fmt::print(stderr, "no dead letters for {}\n", flags->function);
            }
            return 0;
          }};
}

}  // namespace runnel::cli
