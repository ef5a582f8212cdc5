#include "runnel/kafka/producer.hpp"

#include <fmt/format.h>

#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <thread>

#include "holders.hpp"
#include "runnel/core/log.hpp"
#include "runnel/kafka/record_limits.hpp"
#include "runnel/kafka/retention_guard.hpp"

namespace runnel::kafka {
namespace {

struct Pending {
  std::function<void(const Delivery&)> done;
  std::atomic<std::int64_t>* outstanding;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(msg->_private));
  Delivery report;
  report.topic = rd_kafka_topic_name(msg->rkt);
  report.partition = msg->partition;
  report.offset = msg->offset;
  report.error = msg->err;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    report.error_message = fmt::format("{} ({})", rd_kafka_err2str(msg->err), rd_kafka_err2name(msg->err));
  }
  if (pending->done) {
    try {
      pending->done(report);
    } catch (const std::exception& e) {
      log::kBroker->error("delivery callback for {}[{}] threw: {}", report.topic, report.partition, e.what());
    }
  }
  pending->outstanding->fetch_sub(1);
}

}  // namespace

bool IsRecordTooLarge(int code) {
  switch (static_cast<rd_kafka_resp_err_t>(code)) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
      return true;
    default:
      return false;
  }
}

Refusal RefusalOf(int code) {
  switch (static_cast<rd_kafka_resp_err_t>(code)) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return Refusal::kNotAuthorized;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
      return Refusal::kNoSuchTopic;
    case RD_KAFKA_RESP_ERR__FATAL:
      return Refusal::kFatal;
    default:
      return IsRecordTooLarge(code) ? Refusal::kTooLarge : Refusal::kOther;
  }
}

bool IsRetriableDelivery(int code) {
  switch (static_cast<rd_kafka_resp_err_t>(code)) {
    // A delivery report with these comes after librdkafka waited out the topic's metadata
    // (topic.metadata.propagation.max.ms, message.timeout.ms): the topic is not there.
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return false;
    default:
      return IsRetriableKafkaError(code);
  }
}

struct Producer::Impl {
  ClientHandle rk;
  std::atomic<bool> stop{false};
  std::thread poller;
};

Producer::Producer(const KafkaOptions& config, Options options)
    : impl_(std::make_unique<Impl>()), options_(std::move(options)) {
  auto conf = MakeConf(config,
                       {{"acks", options_.acks},
                        {"linger.ms", std::to_string(options_.linger.count())},
                        {"enable.idempotence", "true"},
                        {"message.max.bytes", std::to_string(kDefaultMessageMaxBytes)}},
                       {});
  rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
  impl_->rk = MakeClient(RD_KAFKA_PRODUCER, std::move(conf));
  char value[32];
  std::size_t value_size = sizeof value;
  if (rd_kafka_conf_get(rd_kafka_conf(impl_->rk.get()), "message.max.bytes", value, &value_size) ==
      RD_KAFKA_CONF_OK) {
    max_message_bytes_ = static_cast<std::size_t>(std::strtoull(value, nullptr, 10));
  }
  if (max_message_bytes_ == 0) max_message_bytes_ = kDefaultMessageMaxBytes;
  impl_->poller = std::thread([impl = impl_.get()] {
    while (!impl->stop.load(std::memory_order_relaxed)) rd_kafka_poll(impl->rk.get(), 50);
  });
}

Producer::~Producer() {
  const std::int64_t left = Flush(options_.close_timeout);
  if (left > 0) {
    log::kBroker->error("producer closing with {} record(s) undelivered after {} ms", left,
                        options_.close_timeout.count());
  }
  impl_->stop = true;
  rd_kafka_yield(impl_->rk.get());  // the poller returns now, not at the end of its 50 ms wait
  impl_->poller.join();
  // Reports for records purged here still run (with an error) so their owners hear of them.
  rd_kafka_purge(impl_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(impl_->rk.get(), 0);
}

void Producer::Prepare(const std::string& topic, std::chrono::milliseconds timeout) {
  std::unique_ptr<rd_kafka_topic_t, Deleter<rd_kafka_topic_destroy>> rkt(
      rd_kafka_topic_new(impl_->rk.get(), topic.c_str(), nullptr));
  if (!rkt) return;  // Produce reports what is wrong with the topic
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(impl_->rk.get(), 0, rkt.get(), &md, static_cast<int>(timeout.count()));
  std::unique_ptr<const rd_kafka_metadata_t, Deleter<rd_kafka_metadata_destroy>> holder(md);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::kBroker->debug("producer: no metadata of {} within {} ms ({}); the first record waits for it", topic,
                        timeout.count(), rd_kafka_err2name(err));
  }
}

void Producer::Produce(Record record, std::function<void(const Delivery&)> done) {
  const std::string topic = record.topic;
  const std::size_t size = RecordWireSize(record);
  if (const auto refused = TryProduce(std::move(record), std::move(done))) {
    ThrowKafkaError(refused->error,
                    IsRecordTooLarge(refused->error)
                        ? fmt::format("producing a record of {} bytes to {} (message.max.bytes {})", size,
                                      topic, max_message_bytes_)
                        : fmt::format("producing to {}", topic));
  }
}

std::optional<Delivery> Producer::TryProduce(Record record, std::function<void(const Delivery&)> done) {
  if (options_.retention_guard) {
    options_.retention_guard->BeforeProduce(record, outstanding_);
  }
  auto pending = std::make_unique<Pending>(Pending{std::move(done), &outstanding_});
  // The producev macros cast their arguments without parentheses: pass plain variables.
  const void* key_data = record.key ? record.key->data() : nullptr;
  const std::size_t key_size = record.key ? record.key->size() : 0;
  const std::int64_t timestamp = record.timestamp_ms;
  for (int attempt = 0;; ++attempt) {
    rd_kafka_headers_t* headers = nullptr;
    if (!record.headers.empty()) {
      headers = rd_kafka_headers_new(record.headers.size());
      for (const Header& h : record.headers) {
        rd_kafka_header_add(headers, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
      }
    }
    HeadersHandle headers_holder(headers);
    outstanding_.fetch_add(1);
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        impl_->rk.get(), RD_KAFKA_V_TOPIC(record.topic.c_str()), RD_KAFKA_V_PARTITION(record.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key_data, key_size),
        RD_KAFKA_V_VALUE(record.value.data(), record.value.size()), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_TIMESTAMP(timestamp), RD_KAFKA_V_OPAQUE(pending.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      (void)headers_holder.release();  // owned by the message now
      (void)pending.release();         // owned by OnDelivery now
      return std::nullopt;
    }
    outstanding_.fetch_sub(1);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      Delivery refused;
      refused.topic = record.topic;
      refused.partition = record.partition;
      refused.error = err;
      refused.error_message = fmt::format("{} ({})", rd_kafka_err2str(err), rd_kafka_err2name(err));
      if (IsRecordTooLarge(err)) {
        refused.error_message += fmt::format(": the record is {} bytes, over message.max.bytes {}",
                                             RecordWireSize(record), max_message_bytes_);
      }
      return refused;
    }
    // The local queue is full: serving delivery reports frees room (librdkafka's recommended wait).
    if (attempt == 0) log::kBroker->debug("producer queue full; waiting for room");
    rd_kafka_poll(impl_->rk.get(), 10);
  }
}

Delivery Producer::ProduceSync(Record record, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Delivery>>();
  auto future = promise->get_future();
  const std::string topic = record.topic;
  Produce(std::move(record), [promise](const Delivery& d) { promise->set_value(d); });
  if (future.wait_for(timeout) != std::future_status::ready) {
    throw KafkaTimeout(
        RD_KAFKA_RESP_ERR__TIMED_OUT,
        fmt::format("no delivery report for a record to {} within {} ms", topic, timeout.count()));
  }
  Delivery d = future.get();
  if (!d.Ok()) ThrowKafkaError(d.error, fmt::format("delivering a record to {}", topic));
  return d;
}

std::int64_t Producer::Flush(std::chrono::milliseconds timeout) {
  // rd_kafka_flush also serves callbacks; the poll thread may serve some of them concurrently.
  rd_kafka_flush(impl_->rk.get(), static_cast<int>(timeout.count()));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (outstanding_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_poll(impl_->rk.get(), 10);
  }
  return outstanding_.load();
}

}  // namespace runnel::kafka
