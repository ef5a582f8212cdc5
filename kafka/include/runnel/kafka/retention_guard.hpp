// Keeps producers from outrunning the embedded broker's in-memory log.
//
// librdkafka's mock cluster (the embedded broker) keeps a partition's log only up to
// kMockMaxBatches record batches or kMockMaxBytes bytes; past either it drops the oldest batches,
// consumed or not, without telling anyone. RetentionGuard measures each topic's unconsumed
// backlog (end offset minus the slowest consumer group's committed offset) and makes Produce wait,
// with a visible log line, before that backlog could reach the cap. Against a real Kafka there is
// no such cap and no guard is installed.
//
// Thread-safety: BeforeProduce may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/producer.hpp"

namespace runnel::kafka {

// The mock cluster's per-partition caps in librdkafka 2.0.2 (rdkafka_mock.c: max_cnt, max_size).
inline constexpr std::int64_t kMockMaxBatches = 100'000;
inline constexpr std::int64_t kMockMaxBytes = std::int64_t{5} * 1024 * 1024;

// An upper bound on what one record costs in a partition's log: a v2 batch header (61 bytes, as if
// the record were alone in its batch), the record's varint framing, key, value and headers.
std::int64_t RecordLogBytes(const Record& record);

class RetentionGuard {
 public:
  struct Options {
    std::int64_t max_batches = kMockMaxBatches;
    std::int64_t max_bytes = kMockMaxBytes;
    double wait_fraction = 0.75;  // wait while the backlog is above this share of the cap
    double check_fraction = 0.5;  // below this share (estimated) no broker query is made
    std::chrono::milliseconds poll_interval{20};
    std::chrono::milliseconds report_interval{5000};
    std::chrono::milliseconds max_wait{0};  // 0: wait as long as it takes
  };
  using GroupsForTopic = std::function<std::vector<std::string>(const std::string& topic)>;

  // `groups_for` names the consumer groups whose commits free room on a topic; with none, every
  // record still in the log counts as backlog.
  RetentionGuard(const KafkaOptions& config, GroupsForTopic groups_for, Options options);
  RetentionGuard(const KafkaOptions& config, GroupsForTopic groups_for)
      : RetentionGuard(config, std::move(groups_for), Options{}) {}

  // Returns when producing `record` cannot push a backlog past the cap; `in_flight` is the
  // producer's live count of records sent but not yet acknowledged (read again at every check:
  // while this waits, those records are acknowledged and move into the log's end offset).
  // Throws KafkaTimeout after max_wait.
  void BeforeProduce(const Record& record, const std::atomic<std::int64_t>& in_flight);
  // How many times a producer had to wait (for tests and status).
  std::int64_t Waits() const;

 private:
  struct TopicState {
    std::int64_t records = 0;  // produced through this guard, for the mean record size
    std::int64_t bytes = 0;
    std::int64_t backlog_at_check = 0;
    std::int64_t since_check = 0;
  };
  std::int64_t CapacityRecords(const TopicState& state) const;
  // The largest backlog of any partition of `topic`, and which partition has it.
  std::pair<std::int64_t, std::int32_t> MeasureBacklog(const std::string& topic,
                                                       const std::vector<std::string>& groups);

  Admin admin_;
  GroupsForTopic groups_for_;
  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, TopicState, std::less<>> topics_;
  std::int64_t waits_ = 0;
};

}  // namespace runnel::kafka
