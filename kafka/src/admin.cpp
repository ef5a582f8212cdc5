#include "runnel/kafka/admin.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "holders.hpp"
#include "runnel/core/log.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/kafka/producer.hpp"

namespace runnel::kafka {

std::int64_t PartitionOffsets::Lag() const {
  const std::int64_t from = std::max(committed.value_or(log_start), log_start);
  return std::max<std::int64_t>(0, end - from);
}

std::int64_t PartitionOffsets::Lost() const {
  return committed ? std::max<std::int64_t>(0, log_start - *committed) : 0;
}

std::optional<std::string> FewerReplicasWarning(const std::string& topic, int replicas,
                                                const std::string& input, int input_replicas) {
  if (replicas >= input_replicas) return std::nullopt;
  return fmt::format(
      "topic {} has {} replica(s), fewer than its function's input topic {} ({}): losing a broker could "
      "lose records of events the input still holds (set replication_factor in runnel.yaml, or add "
      "replicas to {})",
      topic, replicas, input, input_replicas, topic);
}

struct Admin::Impl {
  KafkaOptions config;
  ClientHandle rk;

  using MetadataHandle = std::unique_ptr<const rd_kafka_metadata_t, Deleter<rd_kafka_metadata_destroy>>;
  // The metadata of every topic (asked for all of them, so that a broker with
  // auto.create.topics.enable creates nothing by being asked).
  MetadataHandle AllTopics(std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* md = nullptr;
    const auto err =
        rd_kafka_metadata(rk.get(), /*all_topics=*/1, nullptr, &md, static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, "listing topics");
    return MetadataHandle(md);
  }

  // True when the broker is librdkafka's mock cluster (its cluster id says so). False when the
  // cluster id does not come in time: the caller's own request then reports what is wrong.
  bool IsMockCluster(std::chrono::milliseconds timeout) {
    char* raw = rd_kafka_clusterid(rk.get(), static_cast<int>(timeout.count()));
    if (raw == nullptr) return false;
    const bool mock = std::string_view(raw).starts_with(kMockClusterIdPrefix);
    rd_kafka_mem_free(rk.get(), raw);  // memory from a call that takes rk is freed with that rk
    return mock;
  }

  // Runs an admin request on a private queue and waits for its result event.
  template <typename Call>
  EventHandle Await(Call&& call, rd_kafka_admin_op_t op, std::chrono::milliseconds timeout,
                    const std::string& what) {
    QueueHandle queue(rd_kafka_queue_new(rk.get()));
    AdminOptionsHandle options(rd_kafka_AdminOptions_new(rk.get(), op));
    ErrorBuffer err;
    rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout.count()), err.data(),
                                              err.size());
    call(options.get(), queue.get());
    EventHandle event(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000));
    if (!event) ThrowKafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, what);
    if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError(rd_kafka_event_error(event.get()),
                       fmt::format("{}: {}", what, rd_kafka_event_error_string(event.get())),
                       IsRetriableKafkaError(rd_kafka_event_error(event.get())));
    }
    return event;
  }
};

Admin::Admin(const KafkaOptions& config) : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  // A producer handle: it can run admin requests, metadata and watermark queries without joining
  // any group.
  // Describing a topic must never create it as a side effect.
  impl_->rk = MakeClient(RD_KAFKA_PRODUCER, MakeConf(config, {}, {{"allow.auto.create.topics", "false"}}));
}

Admin::~Admin() = default;

bool Admin::IsMockCluster(std::chrono::milliseconds timeout) { return impl_->IsMockCluster(timeout); }

void Admin::CreateTopic(const std::string& topic, int partitions, int replication_factor,
                        std::chrono::milliseconds timeout) {
  // librdkafka's mock cluster has no CreateTopics, and its metadata names a controller (0) that is
  // none of its brokers, so the request below would only wait for a controller until it timed out.
  if (impl_->IsMockCluster(timeout))
    return CreateTopicOnEmbeddedBroker(topic, partitions, replication_factor, timeout);
  ErrorBuffer spec_error;
  std::unique_ptr<rd_kafka_NewTopic_t, Deleter<rd_kafka_NewTopic_destroy>> spec(rd_kafka_NewTopic_new(
      topic.c_str(), partitions, replication_factor, spec_error.data(), spec_error.size()));
  if (!spec) throw KafkaConfigError(fmt::format("topic {}: {}", topic, spec_error.text()));
  rd_kafka_NewTopic_t* specs[] = {spec.get()};
  const std::string what = fmt::format("creating topic {} with {} partitions", topic, partitions);
  auto event = impl_->Await(
      [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_CreateTopics(impl_->rk.get(), specs, 1, options, queue);
      },
      RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout, what);
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    const auto err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      throw KafkaError(err, fmt::format("{}: {}", what, rd_kafka_topic_result_error_string(results[i])),
                       IsRetriableKafkaError(err));
    }
  }
}

void Admin::CreateTopicOnEmbeddedBroker(const std::string& topic, int partitions, int replication_factor,
                                        std::chrono::milliseconds timeout) {
  const std::string what = fmt::format("creating topic {} with {} partitions", topic, partitions);
  if (!IsValidTopicName(topic)) throw KafkaConfigError(fmt::format("{}: not a valid topic name", what));
  if (partitions < 1 || partitions > 10'000)
    throw KafkaConfigError(fmt::format("{}: partitions must be 1..10000", what));
  if (ExistingPartitionCount(topic, timeout)) return;  // already existing is fine, as with CreateTopics
  if (!ExistingPartitionCount(kTopicRequestsTopic, timeout)) {
    throw KafkaError(
        RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE,
        fmt::format("{}: the broker at {} is librdkafka's mock cluster, which has no CreateTopics, and "
                    "it takes no topic requests (it has no topic {}, so it is not `runnel kafka`): create "
                    "the topic there beforehand, or run the broker with `runnel kafka`",
                    what, impl_->config.bootstrap, kTopicRequestsTopic),
        false);
  }
  // The record is the whole request; `runnel kafka` creates the topic, which then shows in metadata.
  {
    Producer producer(impl_->config);
    nlohmann::json request{{"topic", topic}, {"partitions", partitions}};
    if (replication_factor > 0)
      request["replication_factor"] = replication_factor;  // else the broker's default
    producer.ProduceSync({kTopicRequestsTopic, 0, topic, request.dump(), {}}, timeout);
  }
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto existing = ExistingPartitionCount(topic, timeout)) {
      if (*existing != partitions) {
        log::kBroker->warn(
            "topic {} has {} partition(s), not {}: a client mentioned it before it was created", topic,
            *existing, partitions);
      }
      return;
    }
    if (std::chrono::steady_clock::now() >= until) {
      throw KafkaTimeout(
          RD_KAFKA_RESP_ERR__TIMED_OUT,
          fmt::format("{}: asked the embedded broker at {} on {}, and the topic did not appear within "
                      "{} ms (see the log of `runnel kafka`)",
                      what, impl_->config.bootstrap, kTopicRequestsTopic, timeout.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // metadata has no push
  }
}

std::optional<int> Admin::ExistingPartitionCount(const std::string& topic,
                                                 std::chrono::milliseconds timeout) {
  const auto holder = impl_->AllTopics(timeout);
  const rd_kafka_metadata_t* md = holder.get();
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].topic == topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
      return md->topics[i].partition_cnt;
  }
  return std::nullopt;
}

std::optional<TopicReplication> Admin::Replication(const std::string& topic,
                                                   std::chrono::milliseconds timeout) {
  const auto holder = impl_->AllTopics(timeout);
  const rd_kafka_metadata_t* md = holder.get();
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (t.topic != topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt == 0) continue;
    TopicReplication r{t.partitions[0].replica_cnt, md->broker_cnt};
    for (int p = 1; p < t.partition_cnt; ++p) r.replicas = std::min(r.replicas, t.partitions[p].replica_cnt);
    return r;
  }
  return std::nullopt;
}

std::vector<std::string> Admin::FewerReplicasThanInput(const std::string& input,
                                                       const std::vector<std::string>& others,
                                                       std::chrono::milliseconds timeout) {
  std::vector<std::string> warnings;
  const auto in = Replication(input, timeout);
  if (!in) return warnings;
  for (const auto& topic : others) {
    if (topic.empty() || topic == input) continue;
    const auto r = Replication(topic, timeout);
    if (!r) continue;
    if (auto warning = FewerReplicasWarning(topic, r->replicas, input, in->replicas))
      warnings.push_back(std::move(*warning));
  }
  return warnings;
}

std::vector<std::int32_t> Admin::Partitions(const std::string& topic, std::chrono::milliseconds timeout) {
  std::unique_ptr<rd_kafka_topic_t, Deleter<rd_kafka_topic_destroy>> rkt(
      rd_kafka_topic_new(impl_->rk.get(), topic.c_str(), nullptr));
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(impl_->rk.get(), 0, rkt.get(), &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, fmt::format("describing topic {}", topic));
  std::unique_ptr<const rd_kafka_metadata_t, Deleter<rd_kafka_metadata_destroy>> holder(md);
  if (md->topic_cnt != 1)
    ThrowKafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, fmt::format("describing topic {}", topic));
  const auto& t = md->topics[0];
  if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(t.err, fmt::format("describing topic {}", topic));
  std::vector<std::int32_t> ids;
  for (int i = 0; i < t.partition_cnt; ++i) ids.push_back(t.partitions[i].id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<PartitionOffsets> Admin::Offsets(const std::string& topic, const std::string& group,
                                             std::chrono::milliseconds timeout) {
  std::vector<PartitionOffsets> out;
  for (std::int32_t p : Partitions(topic, timeout)) {
    PartitionOffsets po;
    po.partition = p;
    const auto err = rd_kafka_query_watermark_offsets(impl_->rk.get(), topic.c_str(), p, &po.log_start,
                                                      &po.end, static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      ThrowKafkaError(err, fmt::format("querying offsets of {}[{}]", topic, p));
    out.push_back(po);
  }
  if (group.empty() || out.empty()) return out;

  TopicPartitionList wanted(rd_kafka_topic_partition_list_new(static_cast<int>(out.size())));
  for (const auto& po : out) rd_kafka_topic_partition_list_add(wanted.get(), topic.c_str(), po.partition);
  std::unique_ptr<rd_kafka_ListConsumerGroupOffsets_t, Deleter<rd_kafka_ListConsumerGroupOffsets_destroy>>
      request(rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), wanted.get()));
  rd_kafka_ListConsumerGroupOffsets_t* requests[] = {request.get()};
  const std::string what = fmt::format("fetching committed offsets of group {} on {}", group, topic);
  auto event = impl_->Await(
      [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_ListConsumerGroupOffsets(impl_->rk.get(), requests, 1, options, queue);
      },
      RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout, what);
  size_t count = 0;
  const rd_kafka_group_result_t** groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
      rd_kafka_event_ListConsumerGroupOffsets_result(event.get()), &count);
  for (size_t g = 0; g < count; ++g) {
    if (const rd_kafka_error_t* gerr = rd_kafka_group_result_error(groups[g])) {
      const int code = rd_kafka_error_code(gerr);
      throw KafkaError(code, fmt::format("{}: {}", what, rd_kafka_error_string(gerr)),
                       IsRetriableKafkaError(code));
    }
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(groups[g]);
    for (int i = 0; parts != nullptr && i < parts->cnt; ++i) {
      const auto& tp = parts->elems[i];
      if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR || tp.offset < 0) continue;  // no committed offset
      for (auto& po : out) {
        if (po.partition != tp.partition) continue;
        po.committed = tp.offset;
        if (tp.metadata != nullptr && tp.metadata_size > 0)
          po.committed_metadata.assign(static_cast<const char*>(tp.metadata), tp.metadata_size);
      }
    }
  }
  return out;
}

}  // namespace runnel::kafka
