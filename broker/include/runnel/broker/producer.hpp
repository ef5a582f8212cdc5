// A Kafka producer with per-record delivery reports and a bounded flush.
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

#include "runnel/broker/kafka.hpp"
#include "runnel/core/envelope.hpp"

namespace runnel::broker {

class RetentionGuard;

inline constexpr std::int32_t kAnyPartition = -1;

struct Record {
  std::string topic;
  std::int32_t partition = kAnyPartition;  // kAnyPartition: the key's hash picks it (random when keyless)
  std::optional<std::string> key;
  std::string value;
  Headers headers;
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

  Producer(const KafkaConfig& config, Options options);
  explicit Producer(const KafkaConfig& config) : Producer(config, Options{}) {}
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues a record; `done` runs once on the poll thread with its delivery report. Blocks while
  // the local queue is full or the retention guard says to wait. Throws KafkaError for records
  // that cannot be queued at all (unknown partition, too large).
  void Produce(Record record, std::function<void(const Delivery&)> done);
  // Produces and waits for the report; throws KafkaError when the record was not delivered.
  Delivery ProduceSync(Record record, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until every queued record has a report, or the timeout passes. Returns how many are
  // still outstanding (0 on success).
  std::int64_t Flush(std::chrono::milliseconds timeout);
  std::int64_t Outstanding() const { return outstanding_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::int64_t> outstanding_{0};
  Options options_;
};

}  // namespace runnel::broker
