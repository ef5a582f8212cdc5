#include "runnel/kafka/retention_guard.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <thread>

#include "runnel/core/log.hpp"

namespace runnel::kafka {

std::int64_t RecordLogBytes(const Record& record) {
  constexpr std::int64_t kBatchHeader = 61;
  constexpr std::int64_t kRecordFraming = 5 + 1 + 10 + 5 + 5 + 5 + 5;  // varints at their widest
  std::int64_t bytes = kBatchHeader + kRecordFraming + static_cast<std::int64_t>(record.value.size());
  if (record.key) bytes += static_cast<std::int64_t>(record.key->size());
  for (const Header& h : record.headers)
    bytes += 10 + static_cast<std::int64_t>(h.name.size() + h.value.size());
  return bytes;
}

RetentionGuard::RetentionGuard(const KafkaOptions& config, GroupsForTopic groups_for, Options options)
    : admin_(config), groups_for_(std::move(groups_for)), options_(options) {}

std::int64_t RetentionGuard::Waits() const {
  std::lock_guard lock(mu_);
  return waits_;
}

std::int64_t RetentionGuard::CapacityRecords(const TopicState& state) const {
  const std::int64_t mean_bytes =
      std::max<std::int64_t>(1, state.bytes / std::max<std::int64_t>(1, state.records));
  return std::min(options_.max_batches, options_.max_bytes / mean_bytes);
}

std::pair<std::int64_t, std::int32_t> RetentionGuard::MeasureBacklog(const std::string& topic,
                                                                     const std::vector<std::string>& groups) {
  std::vector<std::vector<PartitionOffsets>> per_group;
  if (groups.empty()) {
    per_group.push_back(admin_.Offsets(topic, ""));
  } else {
    for (const auto& group : groups) per_group.push_back(admin_.Offsets(topic, group));
  }
  std::pair<std::int64_t, std::int32_t> worst{0, -1};
  for (const auto& offsets : per_group) {
    for (const auto& po : offsets) {
      if (po.Lag() > worst.first) worst = {po.Lag(), po.partition};
    }
  }
  return worst;
}

void RetentionGuard::BeforeProduce(const Record& record, const std::atomic<std::int64_t>& in_flight) {
  std::unique_lock lock(mu_);
  TopicState& state = topics_[record.topic];
  state.records += 1;
  state.bytes += RecordLogBytes(record);
  const std::int64_t capacity = CapacityRecords(state);
  const auto estimate = [&] { return state.backlog_at_check + state.since_check + in_flight.load() + 1; };
  if (estimate() < static_cast<std::int64_t>(options_.check_fraction * static_cast<double>(capacity))) {
    ++state.since_check;
    return;
  }

  const auto logger = log::kBroker.Logger();
  const auto limit = static_cast<std::int64_t>(options_.wait_fraction * static_cast<double>(capacity));
  const auto started = std::chrono::steady_clock::now();
  auto next_report = started;
  bool waited = false;
  for (;;) {
    const std::vector<std::string> groups = groups_for_(record.topic);
    // Records sent but not yet acknowledged are not in the end offset yet: count them too. Read
    // before the offsets, a record acknowledged in between counts twice rather than not at all.
    // (A count taken once, before waiting, never shrank: with the backlog consumed and every
    // record acknowledged, a producer that had many records in flight waited forever.)
    const std::int64_t unacknowledged = in_flight.load();
    auto [backlog, partition] = MeasureBacklog(record.topic, groups);
    state.backlog_at_check = backlog;
    state.since_check = 0;
    if (backlog + unacknowledged + 1 < limit) break;
    const auto now = std::chrono::steady_clock::now();
    if (!waited) {
      waited = true;
      ++waits_;
    }
    if (now >= next_report) {
      logger->warn(
          "embedded broker: {}[{}] holds {} unconsumed records and {} more are in flight, near its in-memory "
          "cap "
          "(~{} records of this size); publishing waits until {} catch{} up so nothing is dropped",
          record.topic, partition, backlog, unacknowledged, capacity,
          groups.empty() ? std::string("a consumer group")
                         : fmt::format("group(s) {}", fmt::join(groups, ", ")),
          groups.size() == 1 ? "es" : "");
      next_report = now + options_.report_interval;
    }
    if (options_.max_wait.count() > 0 && now - started > options_.max_wait) {
      throw KafkaTimeout(RD_KAFKA_RESP_ERR__TIMED_OUT,
                         fmt::format("{}: backlog of {} records did not drain within {} ms", record.topic,
                                     backlog, options_.max_wait.count()));
    }
    lock.unlock();
    std::this_thread::sleep_for(options_.poll_interval);  // re-measure; the broker has no push for commits
    lock.lock();
  }
  if (waited) {
    logger->info(
        "embedded broker: {} backlog below {} records again; publishing resumes after {} ms", record.topic,
        limit,
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
            .count());
  }
  ++state.since_check;
}

}  // namespace runnel::kafka
