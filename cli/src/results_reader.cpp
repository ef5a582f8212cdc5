#include "results_reader.hpp"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "exit_codes.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/headers.hpp"
#include "runnel/core/json.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "stack_client.hpp"

namespace runnel::cli {

void Say(const std::string& line) {
  fmt::print(stderr, "runnel: {}\n", line);
  std::fflush(stderr);
}

std::string OutputPreview(const std::string& output) {
  constexpr std::size_t kShown = 80;
  if (output.size() <= kShown) return output;
  std::size_t cut = kShown;
  // Not inside a UTF-8 character: back up over continuation bytes.
  while (cut > 0 && (static_cast<unsigned char>(output[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}… (+{} bytes; --json for all)", output.substr(0, cut), output.size() - cut);
}

void OutcomePrinter::Print(const Outcome& o) {
  if (options_.json) {
    fmt::print("{}\n", JsonText(o.ToJson(options_.base64)));
  } else {
    fmt::print("{} {} {} attempts={} {}[{}]@{} {}\n", o.function, o.id, StatusName(o.status), o.attempts,
               o.topic, o.partition, o.offset,
               o.status == OutcomeStatus::kOk ? OutputPreview(o.output) : o.error);
  }
  ++seen_;
}

void OutcomePrinter::Flush() { std::fflush(stdout); }

int OutcomePrinter::TimedOut() const {
  fmt::print(stderr, "runnel: {} outcome(s) within {} s\n", seen_, options_.timeout);
  return exit_code::kTimeout;
}

Deadline::Deadline(double seconds) {
  if (seconds > 0) {
    until_ = std::chrono::steady_clock::now() +
             std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  }
}

bool Deadline::Passed() const { return until_ && std::chrono::steady_clock::now() >= *until_; }

std::chrono::milliseconds Deadline::Cap(std::chrono::milliseconds wait) const {
  if (!until_) return wait;
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(*until_ - std::chrono::steady_clock::now());
  return std::clamp(left, std::chrono::milliseconds(0), wait);
}

namespace {

// The results topic of `function` in the running stack; throws ConfigError saying what to do when
// it has none.
std::string ResultsTopicOf(const StackClient& stack, const std::string& function) {
  (void)stack.Function(function);  // an unknown function: the error names the known ones
  const auto& f = stack.Endpoints()["functions"][function];
  const auto topic = f.find("results_topic");
  if (topic == f.end() || !topic->is_string() || topic->get<std::string>().empty()) {
    throw ConfigError(
        fmt::format("function {} has no results topic: --durable reads it (set results_topic for {} "
                    "in runnel.yaml), the feed without --durable has every function's outcomes",
                    function, function));
  }
  return topic->get<std::string>();
}

// The record's outcome, or why it is none (a results topic may hold anything a client wrote).
std::optional<Outcome> OutcomeOf(const kafka::Message& m, std::string& why) {
  for (const auto& h : m.headers) {
    if (h.name != header::kResult) continue;
    try {
      return Outcome::FromFrames(h.value, m.value);
    } catch (const std::exception& e) {
      why = e.what();
      return std::nullopt;
    }
  }
  why = "no runnel-result header";
  return std::nullopt;
}

}  // namespace

int ReadResultsTopic(const ResultsOptions& o, const std::string& state_dir_flag) {
  if (o.function.empty())
    throw ConfigError("--durable needs --function: it reads that function's results topic");
  const StackClient stack(state_dir_flag);
  const std::string topic = ResultsTopicOf(stack, o.function);
  const std::string group = o.group.empty() ? "runnel.results." + o.function : o.group;
  const kafka::KafkaOptions kafka = stack.Kafka();

  std::vector<kafka::TopicPartitionOffset> wanted;
  for (const auto p : kafka::Admin(kafka).Partitions(topic))
    wanted.push_back({topic, p, kafka::kOffsetStored});
  kafka::Consumer consumer(kafka, kafka::Consumer::Options{group, o.from_beginning ? "earliest" : "latest"});
  // Where each partition starts: the group's committed offset; for a partition without one, the
  // topic's end (or beginning), committed now, so that a reader killed before its first outcome
  // resumes there and not at a later end.
  std::vector<kafka::TopicPartitionOffset> start;
  std::vector<kafka::TopicPartitionOffset> fresh;
  for (const auto& tp : consumer.Committed(wanted)) {
    if (tp.offset >= 0) {
      start.push_back(tp);
      continue;
    }
    const auto [low, high] = consumer.Watermarks(topic, tp.partition);
    fresh.push_back({topic, tp.partition, o.from_beginning ? low : high});
    start.push_back(fresh.back());
  }
  if (!fresh.empty()) consumer.CommitOffsets(fresh);
  consumer.Assign(start);
  // Scripts wait for this line before they publish.
  Say(fmt::format(
      "reading results topic {} as group {} ({} partition(s), {} at the group's committed position)", topic,
      group, start.size(), start.size() - fresh.size()));

  OutcomePrinter printer(o);
  const Deadline deadline(o.timeout);
  std::map<std::int32_t, std::int64_t> uncommitted;  // partition -> next offset, printed but not committed
  auto commit = [&] {
    if (uncommitted.empty()) return;
    std::vector<kafka::TopicPartitionOffset> offsets;
    for (const auto& [p, next] : uncommitted) offsets.push_back({topic, p, next});
    try {
      consumer.CommitOffsets(offsets);
      uncommitted.clear();
    } catch (const kafka::KafkaError& e) {
      if (!e.Retriable()) throw;
      Say(fmt::format("committing group {} failed ({}); the next commit covers it", group, e.what()));
    }
  };
  while (!printer.Done()) {
    if (deadline.Passed()) {
      commit();
      return printer.TimedOut();
    }
    for (const auto& m : consumer.PollBatch(500, deadline.Cap(std::chrono::milliseconds(200)))) {
      if (printer.Done()) break;
      std::string why;
      if (const auto outcome = OutcomeOf(m, why)) {
        printer.Print(*outcome);
      } else {
        Say(fmt::format("skipping {}[{}]@{}: not an outcome record ({})", m.topic, m.partition, m.offset,
                        why));
      }
      uncommitted[m.partition] = m.offset + 1;
    }
    // Printed, then acknowledged: a reader killed in between prints those again, never misses them.
    printer.Flush();
    commit();
  }
  return 0;
}

}  // namespace runnel::cli
