// `runnel dlq FUNCTION`: lists a function's dead letters; with --replay, publishes them again to
// the function's topic, aimed by --id, --kind and --since. Permanent kinds (the same input fails the
// same way) are skipped unless --all, and a replayed event that failed again (its dead letter has
// `runnel-replayed`) unless --again. What was replayed is kept in the consumer group
// runnel.dlq-replay.<function>: per partition, the committed offset below which every dead letter
// was replayed, and in the commit's metadata the offsets above it replayed too (ranges, "7,9-12"),
// so that no --replay, whatever its filters, sends the same dead letter twice.
#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "commands.hpp"
#include "kafka_client.hpp"
#include "runnel/core/duration.hpp"
#include "runnel/core/errc.hpp"
#include "runnel/core/headers.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

// Every error kind a dead letter may carry (docs/protocol.md §2): the permanent ones, those a
// replay cannot fix, first.
std::vector<std::string> DeadLetterKinds() {
  std::vector<std::string> kinds;
  for (const bool retriable : {false, true}) {
    for (const ErrorKindInfo& info : kErrorKinds) {
      if (info.final && info.retriable == retriable) kinds.emplace_back(info.name);
    }
  }
  return kinds;
}

bool IsDeadLetterHeader(const std::string& name) {
  return name == header::kError || name == header::kErrorKind || name == header::kOrigin ||
         name == header::kFunction || name == header::kAttempt || name == header::kReplayed;
}

// --since: a duration ago ("1h", the rule of runnel/core/duration.hpp) or an RFC 3339 time. Returns
// the time in Unix milliseconds, or sets `error`.
std::optional<std::int64_t> SinceMs(const std::string& text, std::string& error) {
  absl::Time t;
  std::string time_error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &time_error)) return absl::ToUnixMillis(t);
  const auto ago = ParseDuration(text);
  if (ago) return absl::ToUnixMillis(absl::Now()) - ago.value.count();
  error = fmt::format("{}; or give an RFC 3339 time like 2026-12-03T10:00:00Z", ago.error);
  return std::nullopt;
}

std::string EncodeOffsets(const std::set<std::int64_t>& offsets) {
  std::string out;
  for (auto it = offsets.begin(); it != offsets.end();) {
    auto last = it;
    while (std::next(last) != offsets.end() && *std::next(last) == *last + 1) ++last;
    out += fmt::format("{}{}", out.empty() ? "" : ",", *it);
    if (last != it) out += fmt::format("-{}", *last);
    it = std::next(last);
  }
  return out;
}

// The metadata EncodeOffsets wrote; anything else (another tool's commit) counts as nothing.
std::set<std::int64_t> DecodeOffsets(const std::string& text) {
  std::set<std::int64_t> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find(',', pos), text.size());
    const std::string_view part(text.data() + pos, end - pos);
    const std::size_t dash = part.find('-');
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    const auto a = std::from_chars(part.data(), part.data() + std::min(dash, part.size()), lo);
    if (a.ec != std::errc() || lo < 0) return {};
    hi = lo;
    if (dash != std::string_view::npos) {
      const auto b = std::from_chars(part.data() + dash + 1, part.data() + part.size(), hi);
      if (b.ec != std::errc() || b.ptr != part.data() + part.size() || hi < lo || hi - lo > 10'000'000)
        return {};
    } else if (a.ptr != part.data() + part.size()) {
      return {};
    }
    for (std::int64_t o = lo; o <= hi; ++o) out.insert(o);
    pos = end + 1;
  }
  return out;
}

// Where a replay stands on one partition of the dead-letter topic.
struct ReplayPosition {
  std::int64_t next = 0;            // every dead letter below it was replayed
  std::set<std::int64_t> replayed;  // offsets at or above `next` replayed too
};

// Reads `topic` from `from` (partitions absent: the beginning) up to the end offsets measured now;
// bounded by 30 s.
std::vector<kafka::Message> ReadToEnd(kafka::Consumer& consumer, kafka::Admin& admin,
                                      const std::string& topic,
                                      const std::map<std::int32_t, ReplayPosition>& from) {
  std::map<std::int32_t, std::int64_t> end;  // partitions with something to read, and where they end
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (const auto& po : admin.Offsets(topic, "")) {
    const auto f = from.find(po.partition);
    const std::int64_t start = std::max(po.log_start, f == from.end() ? 0 : f->second.next);
    if (po.end <= start) continue;
    end[po.partition] = po.end;
    partitions.push_back({topic, po.partition, start});
  }
  if (partitions.empty()) return {};
  consumer.Assign(partitions);
  std::vector<kafka::Message> out;
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
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  return out;
}

struct Flags {
  std::string function;
  bool replay = false;
  bool json = false;
  std::vector<std::string> ids;
  std::vector<std::string> kinds;
  std::string since;
  bool all = false;
  bool again = false;
};

// Why a dead letter is not replayed (or, without --replay, not listed); empty: it is.
std::string SkipReason(const Flags& flags, std::map<std::string, std::string>& h, std::int64_t timestamp_ms,
                       std::optional<std::int64_t> since_ms) {
  if (!flags.ids.empty() &&
      std::find(flags.ids.begin(), flags.ids.end(), h[std::string(header::kId)]) == flags.ids.end()) {
    return "not an --id given";
  }
  const std::string& kind = h[std::string(header::kErrorKind)];
  const bool kind_named = std::find(flags.kinds.begin(), flags.kinds.end(), kind) != flags.kinds.end();
  if (!flags.kinds.empty() && !kind_named) return "not a --kind given";
  if (since_ms && timestamp_ms < *since_ms) return "dead-lettered before --since";
  if (!flags.replay) return {};
  if (const auto known = ParseErrorKind(kind); known && !IsRetriable(*known) && !flags.all && !kind_named) {
    return fmt::format("permanent kind {} (--all, or --kind {}, replays it)", kind, kind);
  }
  if (h.contains(std::string(header::kReplayed)) && !flags.again)
    return "replayed before and failed again (--again replays it)";
  return {};
}

}  // namespace

Command AddDlq(CLI::App& app, CommonOptions& common) {
  auto flags = std::make_shared<Flags>();
  auto* sub =
      app.add_subcommand("dlq", "List a function's dead letters, or publish them again with --replay");
  sub->add_option("function", flags->function, "The function")->required();
  auto* replay =
      sub->add_flag("--replay", flags->replay,
                    "Publish the dead letters not replayed before to the function's topic (permanent kinds "
                    "and events that failed again after a replay are skipped: --all, --again)");
  sub->add_flag("--json", flags->json, "One JSON object per dead letter");
  sub->add_option("--id", flags->ids, "Only the dead letter of this event id (repeatable)");
  sub->add_option("--kind", flags->kinds,
                  "Only dead letters of this error kind (repeatable); a permanent kind named "
                  "here is replayed without --all")
      ->check(CLI::IsMember(DeadLetterKinds()));
  sub->add_option("--since", flags->since,
                  "Only dead letters written since this time: a duration ago (1h, 30m) or an RFC 3339 time "
                  "(2026-12-03T10:00:00Z)")
      ->check(CLI::Validator(
          [](std::string& text) {
            std::string error;
            return SinceMs(text, error) ? std::string() : error;
          },
          "DURATION|TIME", "since"));
  sub->add_flag("--all", flags->all,
                "With --replay: permanent kinds too (bad-input, limit-exceeded, bad-config, "
                "unknown-function, malformed-envelope, recursion)")
      ->needs(replay);
  sub->add_flag("--again", flags->again,
                "With --replay: events that failed again after an earlier replay too")
      ->needs(replay);
  AddKafkaClientFlags(sub, common);
  return {
      sub, [flags, &common] {
        const StackClient stack(StackAccess::Resolve(common));
        const FunctionTopics topics = stack.Function(flags->function);
        std::string error;
        const auto since_ms = flags->since.empty() ? std::nullopt : SinceMs(flags->since, error);
        kafka::Admin admin(stack.Kafka());
        const std::string replay_group = "runnel.dlq-replay." + flags->function;
        kafka::Consumer consumer(stack.Kafka(), {flags->replay ? replay_group : "runnel.dlq-list"});
        std::map<std::int32_t, ReplayPosition> positions;
        if (flags->replay) {
          std::vector<kafka::TopicPartitionOffset> partitions;
          for (const auto p : admin.Partitions(topics.dead_letter_topic)) {
            partitions.push_back({topics.dead_letter_topic, p, kafka::kOffsetStored});
          }
          for (const auto& c : consumer.CommittedWithMetadata(partitions)) {
            if (c.position.offset >= 0)
              positions[c.position.partition] = {c.position.offset, DecodeOffsets(c.metadata)};
          }
        }
        const auto letters = ReadToEnd(consumer, admin, topics.dead_letter_topic, positions);
        std::unique_ptr<kafka::Producer> producer;
        if (flags->replay) producer = stack.Producer({topics.topic});
        std::size_t replayed = 0;
        std::map<std::string, std::size_t> skipped;  // by reason
        std::set<std::int32_t> changed;
        for (const auto& m : letters) {
          auto& position = positions[m.partition];
          if (flags->replay && position.replayed.contains(m.offset)) {
            ++skipped["replayed by an earlier --replay"];
            continue;
          }
          std::map<std::string, std::string> h;
          Headers original;
          for (const auto& header : m.headers) {
            h[header.name] = header.value;
            if (!IsDeadLetterHeader(header.name)) original.push_back(header);
          }
          if (const std::string why = SkipReason(*flags, h, m.timestamp_ms, since_ms); !why.empty()) {
            ++skipped[why];
            continue;
          }
          const int times_replayed = std::atoi(h[std::string(header::kReplayed)].c_str());
          if (flags->json) {
            nlohmann::json j = {{"id", h.count(std::string(header::kId)) ? h[std::string(header::kId)] : ""},
                                {"error", h[std::string(header::kError)]},
                                {"error_kind", h[std::string(header::kErrorKind)]},
                                {"attempts", std::atoi(h[std::string(header::kAttempt)].c_str())},
                                {"replayed", times_replayed},
                                {"origin", h[std::string(header::kOrigin)]},
                                {"partition", m.partition},
                                {"offset", m.offset},
                                {"timestamp_ms", m.timestamp_ms}};
            if (m.key) j["key"] = IsPrintableUtf8(*m.key) ? nlohmann::json(*m.key) : nlohmann::json(nullptr);
            j[IsPrintableUtf8(m.value) ? "payload" : "payload_base64"] =
                IsPrintableUtf8(m.value) ? m.value : Base64Encode(m.value);
            fmt::print("{}\n", JsonText(j));
          } else {
            fmt::print("{} {} attempts={}{} from {}: {}\n",
                       h.count(std::string(header::kId)) ? h[std::string(header::kId)] : "-",
                       h[std::string(header::kErrorKind)], h[std::string(header::kAttempt)],
                       times_replayed > 0 ? fmt::format(" replayed={}", times_replayed) : "",
                       h[std::string(header::kOrigin)], h[std::string(header::kError)]);
          }
          if (producer) {
            // Carried by the dispatcher onto the event's next dead letter, if it fails again.
            original.push_back({std::string(header::kReplayed), std::to_string(times_replayed + 1)});
            producer->ProduceSync({topics.topic, kafka::kAnyPartition, m.key, m.value, original});
            position.replayed.insert(m.offset);
            changed.insert(m.partition);
            ++replayed;
          }
        }
        if (producer && !changed.empty()) {
          std::vector<kafka::CommittedOffset> commits;
          for (const auto p : changed) {
            // Past every dead letter read in a row that is replayed (offsets may have gaps).
            auto& position = positions[p];
            for (const auto& m : letters) {
              if (m.partition != p || m.offset < position.next) continue;
              if (!position.replayed.contains(m.offset)) break;
              position.next = m.offset + 1;
            }
            position.replayed.erase(position.replayed.begin(), position.replayed.lower_bound(position.next));
            commits.push_back(
                {{topics.dead_letter_topic, p, position.next}, EncodeOffsets(position.replayed)});
          }
          consumer.CommitOffsetsWithMetadata(commits);
        }
        if (flags->replay) {
          fmt::print(stderr, "{} dead letter(s) published again to {}\n", replayed, topics.topic);
        } else if (letters.empty() && !flags->json) {
          fmt::print(stderr, "no dead letters for {}\n", flags->function);
        }
        for (const auto& [why, count] : skipped) fmt::print(stderr, "skipped {}: {}\n", count, why);
        return 0;
      }};
}

}  // namespace runnel::cli
