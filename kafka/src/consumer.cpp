#include "runnel/kafka/consumer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string_view>

#include "holders.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/core/log.hpp"

namespace runnel::kafka {
namespace {

TopicPartitionList ToList(const std::vector<TopicPartitionOffset>& partitions) {
  TopicPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    auto* elem = rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
    elem->offset = tp.offset == kOffsetStored ? RD_KAFKA_OFFSET_STORED : tp.offset;
  }
  return list;
}

// Sets an offset's commit metadata (nothing when empty); the list frees it.
void AttachMetadata(rd_kafka_topic_partition_t& elem, const std::string& metadata) {
  if (metadata.empty()) return;
  elem.metadata = rd_kafka_mem_malloc(nullptr, metadata.size());
  std::memcpy(elem.metadata, metadata.data(), metadata.size());
  elem.metadata_size = metadata.size();
}

void AttachMetadata(rd_kafka_topic_partition_list_t& list, const std::string& metadata) {
  for (int i = 0; i < list.cnt; ++i) AttachMetadata(list.elems[i], metadata);
}

Headers ReadHeaders(const rd_kafka_message_t* msg) {
  Headers out;
  rd_kafka_headers_t* hdrs = nullptr;  // owned by the message
  if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == nullptr) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    out.push_back(
        {name, value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string()});
  }
  return out;
}

void OnCommitted(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets, void*) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
      if (offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log::kBroker->warn("commit of {}[{}] failed: {}", offsets->elems[i].topic,
                           offsets->elems[i].partition, rd_kafka_err2str(offsets->elems[i].err));
      }
    }
    return;
  }
  log::kBroker->warn("offset commit failed (the next one covers it): {}", rd_kafka_err2str(err));
}

Message ToMessage(const rd_kafka_message_t* msg) {
  Message out;
  out.topic = rd_kafka_topic_name(msg->rkt);
  out.partition = msg->partition;
  out.offset = msg->offset;
  if (msg->key != nullptr) out.key.emplace(static_cast<const char*>(msg->key), msg->key_len);
  if (msg->payload != nullptr) out.value.assign(static_cast<const char*>(msg->payload), msg->len);
  out.headers = ReadHeaders(msg);
  rd_kafka_timestamp_type_t ts_type;
  out.timestamp_ms = rd_kafka_message_timestamp(msg, &ts_type);
  return out;
}

// Commits `list` synchronously; a failure of the request or of any partition in it is a KafkaError.
void CommitList(rd_kafka_t* rk, rd_kafka_topic_partition_list_t& list, const std::string& group) {
  const auto err = rd_kafka_commit(rk, &list, 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ThrowKafkaError(err, fmt::format("committing offsets of group {}", group));
  for (int i = 0; i < list.cnt; ++i) {
    if (list.elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ThrowKafkaError(list.elems[i].err, fmt::format("committing {}[{}] for group {}", list.elems[i].topic,
                                                     list.elems[i].partition, group));
    }
  }
}

std::vector<TopicPartitionOffset> FromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; list != nullptr && i < list->cnt; ++i)
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  return out;
}

}  // namespace

struct Consumer::Impl {
  ClientHandle rk;
  std::string group;
  std::string commit_metadata;        // SetCommitMetadata: on every offset CommitOffsets(Async) sends
  QueueHandle queue;                  // the consumer queue, for batch reads and the wake descriptor
  Pipe wake;                          // a pipe, not an eventfd: librdkafka writes its payload (1 byte) to it
  std::vector<Rebalance> rebalances;  // from OnRebalance, on the polling thread
  bool closing = false;               // the destructor's close: revocations are answered at once
  // The group is between a rejoin and its new assignment (Options::cooperative; see Rebalancing).
  std::atomic<bool> rebalancing{false};

  // librdkafka's log lines, watched for the group's join state: librdkafka 2.0 has no call that
  // tells it, and its `cgrp` debug line is written on its own thread the moment it changes, before
  // the JoinGroup request goes out.
  static void OnLog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    if (std::strcmp(fac, "CGRPJOINSTATE") == 0) {
      if (const char* to = std::strstr(buf, " -> "); to != nullptr) {
        const std::string_view state(to + 4, std::strcspn(to + 4, " "));
        auto* self = static_cast<Impl*>(rd_kafka_opaque(rk));
        if (self != nullptr) {
          self->rebalancing =
              state == "init" || state == "wait-join" || state == "wait-metadata" || state == "wait-sync";
        }
      }
    }
    LogCallback(rk, level, fac, buf);
  }

  // Served within the polling thread's PollBatch/Poll. Records the change for the caller; while
  // closing, answers it itself (close waits for the answer).
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    auto& self = *static_cast<Impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS || err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      const bool assigned = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
      if (self.closing) {
        rd_kafka_error_t* e = assigned ? rd_kafka_incremental_assign(rk, partitions)
                                       : rd_kafka_incremental_unassign(rk, partitions);
        if (e != nullptr) rd_kafka_error_destroy(e);
        return;
      }
      self.rebalances.push_back({assigned ? Rebalance::Kind::kAssigned : Rebalance::Kind::kRevoked,
                                 !assigned && rd_kafka_assignment_lost(rk) != 0, FromList(partitions)});
      return;
    }
    // A failed rebalance: librdkafka asks for the whole assignment to be dropped.
    log::kBroker->warn("group {}: rebalance failed ({}); dropping the assignment", self.group,
                       rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_t* current = nullptr;
    if (rd_kafka_assignment(rk, &current) == RD_KAFKA_RESP_ERR_NO_ERROR && current != nullptr) {
      self.rebalances.push_back({Rebalance::Kind::kRevoked, true, FromList(current)});
      rd_kafka_topic_partition_list_destroy(current);
    }
    rd_kafka_assign(rk, nullptr);
  }

  // Turns an errored record into an exception or a log line; true when it was an error.
  bool HandleError(const rd_kafka_message_t* msg) const {
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return true;
    const std::string what = fmt::format(
        "consuming{}", msg->rkt ? fmt::format(" {}[{}]", rd_kafka_topic_name(msg->rkt), msg->partition) : "");
    if (IsRetriableKafkaError(msg->err)) {
      log::kBroker->warn("{}: {} (retrying)", what, rd_kafka_err2str(msg->err));
      return true;
    }
    ThrowKafkaError(msg->err, what);
  }
};

Consumer::Consumer(const KafkaOptions& config, Options options) : impl_(std::make_unique<Impl>()) {
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
  rd_kafka_conf_set_offset_commit_cb(conf.get(), OnCommitted);
  if (options.cooperative) {
    char why[256];
    if (rd_kafka_conf_set(conf.get(), "partition.assignment.strategy", "cooperative-sticky", why,
                          sizeof why) != RD_KAFKA_CONF_OK) {
      throw KafkaConfigError(fmt::format("partition.assignment.strategy: {}", why));
    }
    rd_kafka_conf_set_rebalance_cb(conf.get(), &Impl::OnRebalance);
    rd_kafka_conf_set_opaque(conf.get(), impl_.get());
    // The `cgrp` debug context (added to what the options ask for) makes the join state visible to
    // OnLog; its lines are spdlog debug lines, shown only at RUNNEL_LOG=kafka=debug.
    char debug[512] = {};
    std::size_t size = sizeof debug;
    std::string contexts =
        rd_kafka_conf_get(conf.get(), "debug", debug, &size) == RD_KAFKA_CONF_OK ? debug : "";
    contexts += contexts.empty() ? "cgrp" : ",cgrp";
    if (rd_kafka_conf_set(conf.get(), "debug", contexts.c_str(), why, sizeof why) != RD_KAFKA_CONF_OK) {
      throw KafkaConfigError(fmt::format("debug: {}", why));
    }
    rd_kafka_conf_set_log_cb(conf.get(), &Impl::OnLog);
  }
  impl_->rk = MakeClient(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(impl_->rk.get());
  impl_->queue.reset(rd_kafka_queue_get_consumer(impl_->rk.get()));
}

Consumer::~Consumer() {
  try {
    Commit();
  } catch (const std::exception& e) {
    log::kBroker->warn("consumer {}: final commit failed: {}", impl_->group, e.what());
  }
  if (impl_->wake.read) rd_kafka_queue_io_event_enable(impl_->queue.get(), -1, nullptr, 0);
  impl_->queue.reset();
  impl_->closing = true;  // a group member leaves: the revocation close brings is answered at once
  rd_kafka_consumer_close(impl_->rk.get());
}

void Consumer::Subscribe(const std::vector<std::string>& topics) {
  TopicPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics)
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  const auto err = rd_kafka_subscribe(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, "subscribing");
}

void Consumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  auto list = ToList(partitions);
  const auto err = rd_kafka_assign(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, "assigning partitions");
}

std::vector<Consumer::Rebalance> Consumer::TakeRebalances() {
  std::vector<Rebalance> out;
  out.swap(impl_->rebalances);
  return out;
}

// Called also with no partitions: an empty assignment or revocation is answered like any other (the
// group waits for the call).
void Consumer::IncrementalAssign(const std::vector<TopicPartitionOffset>& partitions) {
  auto list = ToList(partitions);
  CheckError(rd_kafka_incremental_assign(impl_->rk.get(), list.get()), "adding assigned partitions");
}

void Consumer::IncrementalUnassign(const std::vector<TopicPartitionOffset>& partitions) {
  auto list = ToList(partitions);
  CheckError(rd_kafka_incremental_unassign(impl_->rk.get(), list.get()), "releasing revoked partitions");
}

bool Consumer::Rebalancing() const { return impl_->rebalancing.load(); }

std::string Consumer::MemberId() const {
  char* id = rd_kafka_memberid(impl_->rk.get());
  if (id == nullptr) return "";
  std::string out(id);
  rd_kafka_mem_free(impl_->rk.get(), id);
  return out;
}

std::optional<Message> Consumer::Poll(std::chrono::milliseconds timeout) {
  MessageHandle msg(rd_kafka_consumer_poll(impl_->rk.get(), static_cast<int>(timeout.count())));
  if (!msg || impl_->HandleError(msg.get())) return std::nullopt;
  return ToMessage(msg.get());
}

std::vector<Message> Consumer::PollBatch(std::size_t max, std::chrono::milliseconds timeout) {
  std::vector<rd_kafka_message_t*> raw(max);
  const ssize_t n =
      rd_kafka_consume_batch_queue(impl_->queue.get(), static_cast<int>(timeout.count()), raw.data(), max);
  if (n < 0) ThrowKafkaError(rd_kafka_last_error(), "consuming a batch");
  std::vector<MessageHandle> held;
  held.reserve(static_cast<std::size_t>(n));
  for (ssize_t i = 0; i < n; ++i) held.emplace_back(raw[static_cast<std::size_t>(i)]);
  std::vector<Message> out;
  out.reserve(held.size());
  for (const auto& msg : held) {
    if (!impl_->HandleError(msg.get())) out.push_back(ToMessage(msg.get()));
  }
  return out;
}

int Consumer::WakeFd() {
  if (!impl_->wake.read) {
    impl_->wake = MakePipe(O_NONBLOCK, "the consumer wake pipe");
    rd_kafka_queue_io_event_enable(impl_->queue.get(), impl_->wake.write.Get(), "1", 1);
  }
  return impl_->wake.read.Get();
}

void Consumer::DrainWakeFd() {
  char buf[256];
  while (impl_->wake.read && ::read(impl_->wake.read.Get(), buf, sizeof buf) > 0) {
  }
}

std::pair<std::int64_t, std::int64_t> Consumer::Watermarks(const std::string& topic, std::int32_t partition,
                                                           std::chrono::milliseconds timeout) {
  std::int64_t low = 0;
  std::int64_t high = 0;
  const auto err = rd_kafka_query_watermark_offsets(impl_->rk.get(), topic.c_str(), partition, &low, &high,
                                                    static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ThrowKafkaError(err, fmt::format("querying offsets of {}[{}]", topic, partition));
  return {low, high};
}

void Consumer::StoreOffset(const std::string& topic, std::int32_t partition, std::int64_t next_offset) {
  TopicPartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = next_offset;
  const auto err = rd_kafka_offsets_store(impl_->rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ThrowKafkaError(err, fmt::format("storing offset {} of {}[{}]", next_offset, topic, partition));
  if (list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ThrowKafkaError(list->elems[0].err,
                    fmt::format("storing offset {} of {}[{}]", next_offset, topic, partition));
  }
}

void Consumer::Commit() {
  const auto err = rd_kafka_commit(impl_->rk.get(), nullptr, 0);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  ThrowKafkaError(err, fmt::format("committing offsets of group {}", impl_->group));
}

void Consumer::SetCommitMetadata(std::string metadata) { impl_->commit_metadata = std::move(metadata); }

void Consumer::CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) {
  if (offsets.empty()) return;
  auto list = ToList(offsets);
  AttachMetadata(*list, impl_->commit_metadata);
  CommitList(impl_->rk.get(), *list, impl_->group);
}

void Consumer::CommitOffsetsWithMetadata(const std::vector<CommittedOffset>& offsets) {
  if (offsets.empty()) return;
  std::vector<TopicPartitionOffset> positions;
  for (const auto& o : offsets) positions.push_back(o.position);
  auto list = ToList(positions);
  for (std::size_t i = 0; i < offsets.size(); ++i) AttachMetadata(list->elems[i], offsets[i].metadata);
  CommitList(impl_->rk.get(), *list, impl_->group);
}

std::vector<CommittedOffset> Consumer::CommittedWithMetadata(
    const std::vector<TopicPartitionOffset>& partitions, std::chrono::milliseconds timeout) {
  auto list = ToList(partitions);
  const auto err = rd_kafka_committed(impl_->rk.get(), list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ThrowKafkaError(err, fmt::format("fetching committed offsets of {}", impl_->group));
  std::vector<CommittedOffset> out;
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    out.push_back({{e.topic, e.partition, e.offset},
                   e.metadata == nullptr
                       ? std::string()
                       : std::string(static_cast<const char*>(e.metadata), e.metadata_size)});
  }
  return out;
}

void Consumer::CommitOffsetsAsync(const std::vector<TopicPartitionOffset>& offsets) {
  if (offsets.empty()) return;
  auto list = ToList(offsets);
  AttachMetadata(*list, impl_->commit_metadata);
  const auto err = rd_kafka_commit(impl_->rk.get(), list.get(), 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::kBroker->warn("group {}: could not send a commit: {}", impl_->group, rd_kafka_err2str(err));
  }
}

std::vector<TopicPartitionOffset> Consumer::Committed(const std::vector<TopicPartitionOffset>& partitions,
                                                      std::chrono::milliseconds timeout) {
  auto list = ToList(partitions);
  const auto err = rd_kafka_committed(impl_->rk.get(), list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ThrowKafkaError(err, fmt::format("fetching committed offsets of {}", impl_->group));
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; i < list->cnt; ++i)
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
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

}  // namespace runnel::kafka
