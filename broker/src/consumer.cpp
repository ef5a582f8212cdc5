#include "runnel/broker/consumer.hpp"

#include <fmt/format.h>

#include "holders.hpp"
#include "runnel/core/log.hpp"

namespace runnel::broker {
namespace {

TopicPartitionList ToList(const std::vector<TopicPartitionOffset>& partitions) {
  TopicPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    auto* elem = rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
    elem->offset = tp.offset == kOffsetStored ? RD_KAFKA_OFFSET_STORED : tp.offset;
  }
  return list;
}

Headers ReadHeaders(const rd_kafka_message_t* msg) {
  Headers out;
  rd_kafka_headers_t* hdrs = nullptr;  // owned by the message
  if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == nullptr) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    out.push_back({name, value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string()});
  }
  return out;
}

}  // namespace

struct Consumer::Impl {
  ClientHandle rk;
  std::string group;
};

Consumer::Consumer(const KafkaConfig& config, Options options) : impl_(std::make_unique<Impl>()) {
  if (options.group.empty()) throw KafkaConfigError("a consumer needs a group id");
  impl_->group = options.group;
  auto conf = MakeConf(config,
                       {{"auto.offset.reset", options.auto_offset_reset},
                        {"fetch.wait.max.ms", std::to_string(options.fetch_wait_max.count())},
                        {"enable.partition.eof", "false"}},
                       {{"group.id", options.group},
                        // At-least-once: offsets are stored and committed only by the caller.
                        {"enable.auto.commit", "false"},
                        {"enable.auto.offset.store", "false"}});
  impl_->rk = MakeClient(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(impl_->rk.get());
}

Consumer::~Consumer() {
  try {
    Commit();
  } catch (const std::exception& e) {
    log::Get("broker")->warn("consumer {}: final commit failed: {}", impl_->group, e.what());
  }
  rd_kafka_consumer_close(impl_->rk.get());
}

void Consumer::Subscribe(const std::vector<std::string>& topics) {
  TopicPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  const auto err = rd_kafka_subscribe(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, "subscribing");
}

void Consumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  auto list = ToList(partitions);
  const auto err = rd_kafka_assign(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, "assigning partitions");
}

std::optional<Message> Consumer::Poll(std::chrono::milliseconds timeout) {
  MessageHandle msg(rd_kafka_consumer_poll(impl_->rk.get(), static_cast<int>(timeout.count())));
  if (!msg) return std::nullopt;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return std::nullopt;
    const std::string what = fmt::format(
        "consuming{}", msg->rkt ? fmt::format(" {}[{}]", rd_kafka_topic_name(msg->rkt), msg->partition) : "");
    if (IsRetriableKafkaError(msg->err)) {
      log::Get("broker")->warn("{}: {} (retrying)", what, rd_kafka_err2str(msg->err));
      return std::nullopt;
    }
    ThrowKafkaError(msg->err, what);
  }
  Message out;
  out.topic = rd_kafka_topic_name(msg->rkt);
  out.partition = msg->partition;
  out.offset = msg->offset;
  if (msg->key != nullptr) out.key.emplace(static_cast<const char*>(msg->key), msg->key_len);
  if (msg->payload != nullptr) out.value.assign(static_cast<const char*>(msg->payload), msg->len);
  out.headers = ReadHeaders(msg.get());
  rd_kafka_timestamp_type_t ts_type;
  out.timestamp_ms = rd_kafka_message_timestamp(msg.get(), &ts_type);
  return out;
}

void Consumer::StoreOffset(const std::string& topic, std::int32_t partition, std::int64_t next_offset) {
  TopicPartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = next_offset;
  const auto err = rd_kafka_offsets_store(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, fmt::format("storing offset {} of {}[{}]", next_offset, topic, partition));
  if (list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ThrowKafkaError(list->elems[0].err, fmt::format("storing offset {} of {}[{}]", next_offset, topic, partition));
  }
}

void Consumer::Commit() {
  const auto err = rd_kafka_commit(impl_->rk.get(), nullptr, 0);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  ThrowKafkaError(err, fmt::format("committing offsets of group {}", impl_->group));
}

void Consumer::CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) {
  if (offsets.empty()) return;
  auto list = ToList(offsets);
  const auto err = rd_kafka_commit(impl_->rk.get(), list.get(), 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, fmt::format("committing offsets of group {}", impl_->group));
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ThrowKafkaError(list->elems[i].err, fmt::format("committing {}[{}] for group {}", list->elems[i].topic,
                                                      list->elems[i].partition, impl_->group));
    }
  }
}

std::vector<TopicPartitionOffset> Consumer::Committed(const std::vector<TopicPartitionOffset>& partitions,
                                                      std::chrono::milliseconds timeout) {
  auto list = ToList(partitions);
  const auto err = rd_kafka_committed(impl_->rk.get(), list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, fmt::format("fetching committed offsets of {}", impl_->group));
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; i < list->cnt; ++i) out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  return out;
}

void Consumer::Pause(const std::vector<TopicPartitionOffset>& partitions) {
  auto list = ToList(partitions);
  const auto err = rd_kafka_pause_partitions(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, "pausing partitions");
}

void Consumer::Resume(const std::vector<TopicPartitionOffset>& partitions) {
  auto list = ToList(partitions);
  const auto err = rd_kafka_resume_partitions(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, "resuming partitions");
}

}  // namespace runnel::broker
