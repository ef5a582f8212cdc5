// A Kafka consumer that never commits on its own: offsets are stored only when the caller says an
// event is done (enable.auto.commit=false and enable.auto.offset.store=false are set in code).
// Thread-safety: one thread polls; Commit/StoreOffset may be called from that thread only.
// The destructor commits stored offsets (bounded wait) and closes the consumer.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/kafka.hpp"

namespace runnel::kafka {

struct Message {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::optional<std::string> key;
  std::string value;
  Headers headers;
  std::int64_t timestamp_ms = -1;  // the record's timestamp, -1 if none
};

struct TopicPartitionOffset {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;  // for Assign: kOffsetStored, kOffsetBeginning, or an absolute offset
};

// A committed offset with the metadata string Kafka keeps beside it (`runnel dlq --replay` keeps
// there which dead letters above the offset it replayed).
struct CommittedOffset {
  TopicPartitionOffset position;
  std::string metadata;
};

inline constexpr std::int64_t kOffsetBeginning = -2;
inline constexpr std::int64_t kOffsetEnd = -1;
inline constexpr std::int64_t kOffsetStored = -1000;  // the group's committed offset, else auto.offset.reset

class Consumer {
 public:
  struct Options {
    std::string group;  // group.id; commits go to this group
    std::string auto_offset_reset = "earliest";
    // The embedded broker holds an empty fetch for the full fetch.wait.max.ms even when data
    // arrives meanwhile: keep it small where latency matters.
    std::chrono::milliseconds fetch_wait_max{10};
    // Subscribe joins the group with librdkafka's cooperative-sticky assignor and hands each
    // assignment and revocation to the caller (TakeRebalances) instead of applying it.
    bool cooperative = false;
  };

  // A change of what the group gives this member (Options::cooperative). The caller answers an
  // assignment with IncrementalAssign and a revocation with IncrementalUnassign, when it is ready
  // to: the group's next step waits for the answer (within max.poll.interval.ms). `lost`: the
  // partitions are already someone else's (session timed out, fenced): nothing may be committed.
  struct Rebalance {
    enum class Kind { kAssigned, kRevoked };
    Kind kind = Kind::kAssigned;
    bool lost = false;
    std::vector<TopicPartitionOffset> partitions;
  };

  Consumer(const KafkaOptions& config, Options options);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Joins the group and lets the broker assign partitions (a new group waits ~3 s on the
  // embedded broker before its first assignment).
  void Subscribe(const std::vector<std::string>& topics);
  // Takes the given partitions directly, without a group join: the first records arrive in
  // milliseconds. Commits still go to the group.
  void Assign(const std::vector<TopicPartitionOffset>& partitions);

  // Group changes the last polls brought (Options::cooperative), oldest first.
  std::vector<Rebalance> TakeRebalances();
  // Adds partitions to the assignment, each from its offset (kOffsetStored: the group's commit).
  // Both calls answer a Rebalance, also one with no partitions: call them for every one.
  void IncrementalAssign(const std::vector<TopicPartitionOffset>& partitions);
  // Removes partitions from the assignment: the answer to a revocation.
  void IncrementalUnassign(const std::vector<TopicPartitionOffset>& partitions);
  // Whether the group is rebalancing: this member rejoined and waits for its new assignment
  // (Options::cooperative; false otherwise). A commit sent then is answered after the rejoin with
  // ILLEGAL_GENERATION, which librdkafka before 2.9 takes for a lost assignment (its issue #4908):
  // the caller holds commits back meanwhile.
  bool Rebalancing() const;
  // This member's id in the group ("" before it joined).
  std::string MemberId() const;

  // The next record, or nullopt when none arrived within `timeout`. End-of-partition events are
  // skipped; a consumer error that cannot be retried is thrown as KafkaError.
  std::optional<Message> Poll(std::chrono::milliseconds timeout);

  // Up to `max` records at once, waiting at most `timeout` for the first (0: do not wait).
  std::vector<Message> PollBatch(std::size_t max, std::chrono::milliseconds timeout);
  // A descriptor that becomes readable when records or events wait: poll it, drain it with
  // DrainWakeFd, then PollBatch until it returns fewer than asked. Created on first call.
  int WakeFd();
  void DrainWakeFd();

  // The broker's oldest and next offsets of a partition (blocking, bounded by `timeout`).
  std::pair<std::int64_t, std::int64_t> Watermarks(
      const std::string& topic, std::int32_t partition,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Marks everything below `next_offset` on the partition as done; Commit sends it.
  void StoreOffset(const std::string& topic, std::int32_t partition, std::int64_t next_offset);
  // Commits stored offsets synchronously. Throws KafkaError on failure (retriable ones included:
  // the caller decides); "nothing to commit" is not an error.
  void Commit();
  // The metadata every later CommitOffsets and CommitOffsetsAsync sends with each offset (Kafka
  // keeps it beside the offset; the dispatcher names its stack there, runnel/broker/group_lease.hpp).
  void SetCommitMetadata(std::string metadata);
  // Commits exactly these offsets synchronously.
  void CommitOffsets(const std::vector<TopicPartitionOffset>& offsets);
  // Sends these offsets without waiting; a failure is logged (the next commit covers it).
  void CommitOffsetsAsync(const std::vector<TopicPartitionOffset>& offsets);
  // The group's committed offsets for these partitions (offset -1001 when none).
  std::vector<TopicPartitionOffset> Committed(const std::vector<TopicPartitionOffset>& partitions,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // The same two with each offset's metadata.
  void CommitOffsetsWithMetadata(const std::vector<CommittedOffset>& offsets);
  std::vector<CommittedOffset> CommittedWithMetadata(
      const std::vector<TopicPartitionOffset>& partitions,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  void Pause(const std::vector<TopicPartitionOffset>& partitions);
  void Resume(const std::vector<TopicPartitionOffset>& partitions);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::kafka
