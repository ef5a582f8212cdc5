// A Kafka producer with per-record delivery reports and a bounded flush. Its message.max.bytes
// is Runnel's default (record_limits.hpp) unless the config's options set it.
// Thread-safety: every method may be called from any thread. Delivery callbacks run on the
// producer's own poll thread; keep them short. The destructor flushes (bounded by
// Options::close_timeout) and logs how many records were left undelivered.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/kafka.hpp"

namespace runnel::kafka {

class RetentionGuard;

inline constexpr std::int32_t kAnyPartition = -1;

struct Record {
  std::string topic;
  std::int32_t partition = kAnyPartition;  // kAnyPartition: the key's hash picks it (random when keyless)
  std::optional<std::string> key;
  std::string value;
  Headers headers;
  std::int64_t timestamp_ms = 0;  // the record's CreateTime in epoch ms; 0: now
};

// The outcome of one record: where it landed, or why it did not.
struct Delivery {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  int error = 0;  // rd_kafka_resp_err_t; 0 means the broker acknowledged the record
  std::string error_message;
  bool Ok() const { return error == 0; }
};

// True for the codes that say a record is too large for the producer (message.max.bytes, checked
// before it is queued) or for the broker (the topic's max.message.bytes): MSG_SIZE_TOO_LARGE,
// RECORD_LIST_TOO_LARGE, INVALID_MSG_SIZE.
bool IsRecordTooLarge(int code);
// True when a record that failed with `code` (refused at once, or in its delivery report, after
// librdkafka's own retries) may be written by producing it again as it is: the broker was away or
// too slow. False for what only a change can fix: unknown topic, authorization, too large, an
// invalid record, a producer in a fatal state.
bool IsRetriableDelivery(int code);
// Why the broker refuses records with `code`, as far as an operator's fix goes.
enum class Refusal {
  kNotAuthorized,  // TOPIC_/CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED: grant Write on the topic
  kNoSuchTopic,    // UNKNOWN_TOPIC_OR_PART, _UNKNOWN_TOPIC, _UNKNOWN_PARTITION, TOPIC_EXCEPTION
  kTooLarge,       // as IsRecordTooLarge
  kFatal,          // the producer is in a fatal state: only a restart helps
  kOther,
};
Refusal RefusalOf(int code);

class Producer {
 public:
  struct Options {
    std::string acks = "all";
    std::chrono::milliseconds linger{1};
    std::chrono::milliseconds close_timeout{10'000};
    // Optional: slows Produce down before a partition's unconsumed backlog outgrows the embedded
    // broker's in-memory log (see RetentionGuard). Shared so several producers can use one guard.
    std::shared_ptr<RetentionGuard> retention_guard;
  };

  Producer(const KafkaOptions& config, Options options);
  explicit Producer(const KafkaOptions& config) : Producer(config, Options{}) {}
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Fetches `topic`'s metadata now (one request, bounded by `timeout`), so that the first record
  // to it goes out at once: librdkafka 2.0 learns a topic it meets after its first metadata
  // request on its 1 s timer, which a short-lived client (a CLI command) would wait out. Errors
  // are logged at debug level and otherwise left to Produce to report.
  void Prepare(const std::string& topic, std::chrono::milliseconds timeout = std::chrono::seconds(2));
  // Queues a record; `done` runs once on the poll thread with its delivery report. Blocks while
  // the local queue is full or the retention guard says to wait. Throws KafkaError for records
  // that cannot be queued at all (unknown partition, too large).
  void Produce(Record record, std::function<void(const Delivery&)> done);
  // Produce without the throw: a record librdkafka refuses at once (too large for
  // message.max.bytes, a topic known to be unwritable, a fatal producer) comes back as a Delivery
  // with the error and its topic, and `done` is not called; std::nullopt means it was queued and
  // `done` will run.
  [[nodiscard]] std::optional<Delivery> TryProduce(Record record, std::function<void(const Delivery&)> done);
  // Produces and waits for the report; throws KafkaError when the record was not delivered.
  Delivery ProduceSync(Record record, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until every queued record has a report, or the timeout passes. Returns how many are
  // still outstanding (0 on success).
  std::int64_t Flush(std::chrono::milliseconds timeout);
  std::int64_t Outstanding() const { return outstanding_.load(); }
  // The message.max.bytes in force: the largest record (record_limits.hpp's RecordWireSize) it
  // accepts.
  std::size_t MaxMessageBytes() const { return max_message_bytes_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::int64_t> outstanding_{0};
  Options options_;
  std::size_t max_message_bytes_ = 0;
};

}  // namespace runnel::kafka
