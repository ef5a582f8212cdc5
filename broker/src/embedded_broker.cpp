#include "runnel/broker/embedded_broker.hpp"

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <librdkafka/rdkafka_mock.h>

#include <fmt/format.h>

#include "holders.hpp"
#include "runnel/core/log.hpp"

namespace runnel::broker {


struct EmbeddedBroker::Impl {
  ClientHandle rk;  // the mock cluster lives inside a client handle; destroyed after the cluster
  std::unique_ptr<rd_kafka_mock_cluster_t, Deleter<rd_kafka_mock_cluster_destroy>> cluster;
};

EmbeddedBroker::EmbeddedBroker(Options options) : impl_(std::make_unique<Impl>()) {
  if (options.brokers < 1) throw ConfigError(fmt::format("embedded broker: brokers must be >= 1, not {}", options.brokers));
  impl_->rk = MakeClient(RD_KAFKA_PRODUCER, MakeConf(KafkaConfig{"", "runnel-embedded-broker", {{"log_level", "4"}}}, {}, {}));
  impl_->cluster.reset(rd_kafka_mock_cluster_new(impl_->rk.get(), options.brokers));
  if (!impl_->cluster) throw Error("embedded broker: librdkafka could not start its mock cluster", true);
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(impl_->cluster.get());
  log::Get("broker")->info("embedded Kafka broker listening on {}", bootstrap_);
}

EmbeddedBroker::~EmbeddedBroker() {
  impl_->cluster.reset();
  impl_->rk.reset();
}

void EmbeddedBroker::CreateTopic(const std::string& topic, int partitions) {
  if (partitions < 1 || partitions > 10'000) {
    throw ConfigError(fmt::format("topic {}: partitions must be 1..10000, not {}", topic, partitions));
  }
  const auto err = rd_kafka_mock_topic_create(impl_->cluster.get(), topic.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    ThrowKafkaError(err, fmt::format("creating topic {}", topic));
  }
}

void EmbeddedBroker::SetBrokerDown(int broker_id) {
  const auto err = rd_kafka_mock_broker_set_down(impl_->cluster.get(), broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, fmt::format("taking broker {} down", broker_id));
}

void EmbeddedBroker::SetBrokerUp(int broker_id) {
  const auto err = rd_kafka_mock_broker_set_up(impl_->cluster.get(), broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) ThrowKafkaError(err, fmt::format("bringing broker {} up", broker_id));
}

void EmbeddedBroker::PushRequestErrors(int api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster.get(), static_cast<int16_t>(api_key), codes.size(), codes.data());
}

rd_kafka_mock_cluster_t* EmbeddedBroker::Mock() const { return impl_->cluster.get(); }

}  // namespace runnel::broker
