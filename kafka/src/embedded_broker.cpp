#include "runnel/kafka/embedded_broker.hpp"

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <fmt/format.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "holders.hpp"
#include "runnel/core/log.hpp"
#include "runnel/kafka/consumer.hpp"

namespace runnel::kafka {

bool IsValidTopicName(const std::string& name) {
  return !name.empty() && name.size() <= 249 && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
         });
}

struct EmbeddedBroker::Impl {
  ClientHandle rk;  // the mock cluster lives inside a client handle; destroyed after the cluster
  std::unique_ptr<rd_kafka_mock_cluster_t, Deleter<rd_kafka_mock_cluster_destroy>> cluster;

  // ServeTopicRequests: the thread, and how the destructor stops it.
  std::thread requests;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;

  bool Stopping() {
    std::lock_guard lock(mutex);
    return stop;
  }
  // Waits up to `d`; true when the broker is stopping.
  bool WaitStop(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex);
    return wake.wait_for(lock, d, [this] { return stop; });
  }
};

namespace {

// One record of kTopicRequestsTopic: a topic to create, or why the request is refused (the
// record comes from any client of the broker, so anything may be in it).
struct TopicRequest {
  std::string topic;
  int partitions = 0;
  int replication_factor = 1;
  std::string refused;  // empty: valid
};

TopicRequest ParseTopicRequest(const std::string& value) {
  TopicRequest r;
  const auto j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    r.refused = fmt::format("not a JSON object ({} bytes)", value.size());
    return r;
  }
  const auto topic = j.find("topic");
  const auto partitions = j.find("partitions");
  const auto replicas = j.find("replication_factor");
  if (topic == j.end() || !topic->is_string()) {
    r.refused = "\"topic\" must be a string";
  } else if (partitions == j.end() || !partitions->is_number_integer()) {
    r.refused = "\"partitions\" must be an integer";
  } else if (!IsValidTopicName(topic->get<std::string>())) {
    r.refused = fmt::format("{} is not a valid topic name (1..249 of [A-Za-z0-9._-])", topic->dump());
  } else if (partitions->get<std::int64_t>() < 1 || partitions->get<std::int64_t>() > 10'000) {
    r.refused = fmt::format("partitions must be 1..10000, not {}", partitions->dump());
  } else if (replicas != j.end() && (!replicas->is_number_integer() || replicas->get<std::int64_t>() < 1 ||
                                     replicas->get<std::int64_t>() > kMaxReplicationFactor)) {
    r.refused = fmt::format("replication_factor must be an integer 1..{}, not {}", kMaxReplicationFactor,
                            replicas->dump());
  } else {
    if (replicas != j.end()) r.replication_factor = static_cast<int>(replicas->get<std::int64_t>());
    r.topic = topic->get<std::string>();
    r.partitions = static_cast<int>(partitions->get<std::int64_t>());
  }
  return r;
}

}  // namespace

EmbeddedBroker::EmbeddedBroker(Options options) : impl_(std::make_unique<Impl>()) {
  if (options.brokers < 1)
    throw ConfigError(fmt::format("embedded broker: brokers must be >= 1, not {}", options.brokers));
  impl_->rk = MakeClient(RD_KAFKA_PRODUCER,
                         MakeConf(KafkaOptions{"", "runnel-embedded-broker", {{"log_level", "4"}}}, {}, {}));
  impl_->cluster.reset(rd_kafka_mock_cluster_new(impl_->rk.get(), options.brokers));
  if (!impl_->cluster) throw Error("embedded broker: librdkafka could not start its mock cluster", true);
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(impl_->cluster.get());
  log::kBroker->info("embedded Kafka broker listening on {}", bootstrap_);
}

EmbeddedBroker::~EmbeddedBroker() {
  if (impl_->requests.joinable()) {
    {
      std::lock_guard lock(impl_->mutex);
      impl_->stop = true;
    }
    impl_->wake.notify_all();
    impl_->requests.join();
  }
  impl_->cluster.reset();
  impl_->rk.reset();
}

void EmbeddedBroker::CreateTopic(const std::string& topic, int partitions, int replication_factor) {
  if (partitions < 1 || partitions > 10'000) {
    throw ConfigError(fmt::format("topic {}: partitions must be 1..10000, not {}", topic, partitions));
  }
  if (replication_factor < 1 || replication_factor > kMaxReplicationFactor) {
    throw ConfigError(fmt::format("topic {}: replication_factor must be 1..{}, not {}", topic,
                                  kMaxReplicationFactor, replication_factor));
  }
  const auto err =
      rd_kafka_mock_topic_create(impl_->cluster.get(), topic.c_str(), partitions, replication_factor);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    ThrowKafkaError(err, fmt::format("creating topic {}", topic));
  }
}

void EmbeddedBroker::ServeTopicRequests() {
  if (impl_->requests.joinable()) return;
  CreateTopic(kTopicRequestsTopic, 1);
  impl_->requests = std::thread([this] {
    const auto logger = log::kBroker.Logger();
    // Every request from the first: a request is idempotent (an existing topic stays as it is), and
    // the log lives only as long as this broker.
    std::int64_t next = kOffsetBeginning;
    while (!impl_->Stopping()) {
      try {
        Consumer consumer(
            KafkaOptions{bootstrap_, "runnel-embedded-topic-requests", {}},
            Consumer::Options{"runnel.embedded.topic-requests", "earliest", std::chrono::milliseconds(10)});
        consumer.Assign({{kTopicRequestsTopic, 0, next}});
        while (!impl_->Stopping()) {
          for (const auto& m : consumer.PollBatch(100, std::chrono::milliseconds(200))) {
            next = m.offset + 1;
            const TopicRequest r = ParseTopicRequest(m.value);
            if (!r.refused.empty()) {
              logger->warn("embedded broker: topic request at {}[0]@{} refused: {}", kTopicRequestsTopic,
                           m.offset, r.refused);
              continue;
            }
            const auto err = rd_kafka_mock_topic_create(impl_->cluster.get(), r.topic.c_str(), r.partitions,
                                                        r.replication_factor);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
              logger->info("embedded broker: created topic {} with {} partition(s) (asked for on {})",
                           r.topic, r.partitions, kTopicRequestsTopic);
            } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
              logger->debug("embedded broker: topic {} asked for exists already", r.topic);
            } else {
              logger->warn("embedded broker: creating topic {} asked for on {}: {}", r.topic,
                           kTopicRequestsTopic, rd_kafka_err2str(err));
            }
          }
        }
      } catch (const std::exception& e) {
        // The broker is in this process: a failure here is transient (or the broker is stopping).
        logger->error("embedded broker: reading topic requests failed ({}); retrying in 1 s", e.what());
        impl_->WaitStop(std::chrono::seconds(1));
      }
    }
  });
}

void EmbeddedBroker::SetBrokerDown(int broker_id) {
  const auto err = rd_kafka_mock_broker_set_down(impl_->cluster.get(), broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ThrowKafkaError(err, fmt::format("taking broker {} down", broker_id));
}

void EmbeddedBroker::SetBrokerUp(int broker_id) {
  const auto err = rd_kafka_mock_broker_set_up(impl_->cluster.get(), broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ThrowKafkaError(err, fmt::format("bringing broker {} up", broker_id));
}

void EmbeddedBroker::PushRequestErrors(int api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster.get(), static_cast<int16_t>(api_key), codes.size(),
                                          codes.data());
}

rd_kafka_mock_cluster_t* EmbeddedBroker::Mock() const { return impl_->cluster.get(); }

}  // namespace runnel::kafka
