#include "runnel/testing/dispatcher_rig.hpp"

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <librdkafka/rdkafka_mock.h>

#include "runnel/testing/child_process.hpp"

namespace runnel::testing {
namespace {

constexpr int kApiProduce = 0;
constexpr int kLeading = 1;   // leads every topic on two brokers
constexpr int kRefusing = 2;  // refuses every Produce request after RefuseWrites
constexpr int kInjected = 1000;

}  // namespace

DispatcherRig::DispatcherRig(Setup setup)
    : broker_(kafka::EmbeddedBroker::Options{setup.brokers}), setup_(std::move(setup)) {}

void DispatcherRig::SetUp() {
  dir_ = TempDir(setup_.name);
  spec_.name = "echo";
  spec_.handler = "builtin:echo";
  spec_.topic = setup_.name + ".in";
  spec_.dead_letter_topic = setup_.name + ".in.dlq";
  spec_.results_topic = setup_.name + ".results";
  for (const auto& t : {spec_.topic, spec_.dead_letter_topic, spec_.results_topic}) {
    broker_.CreateTopic(t, setup_.partitions);
    if (setup_.brokers < 2) continue;
    for (int p = 0; p < setup_.partitions; ++p) {
      ASSERT_EQ(rd_kafka_mock_partition_set_leader(broker_.Mock(), t.c_str(), p, kLeading),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  }
}

void DispatcherRig::TearDown() {
  workers_.reset();
  dispatcher_.reset();
  std::filesystem::remove_all(dir_);
}

void DispatcherRig::StartDispatcher(int workers) {
  broker::Dispatcher::Options o;
  o.spec = spec_;
  o.kafka = broker_.ClientConfig();
  o.zmq = &zmq_;
  o.heartbeat = std::chrono::milliseconds(200);
  o.output_dir = (dir_ / "outputs").string();
  dispatcher_ = std::make_unique<broker::Dispatcher>(o);
  dispatcher_->Start();
  for (int i = 0; i < workers; ++i) StartWorker();
}

void DispatcherRig::StartWorker() {
  if (!workers_) {
    workers_ = std::make_unique<autoscaler::LocalProcessBackend>(autoscaler::WorkerCommand(RunnelBin()),
                                                                 dir_ / "logs");
  }
  workers_->Start("echo", dispatcher_->Endpoint());
}

void DispatcherRig::RefuseWrites(const std::string& topic) {
  ASSERT_GE(setup_.brokers, 2) << "RefuseWrites needs two brokers";
  ASSERT_EQ(rd_kafka_mock_partition_set_leader(broker_.Mock(), topic.c_str(), 0, kRefusing),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int i = 0; i < kInjected; ++i) {
    ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(broker_.Mock(), kRefusing, kApiProduce, 1,
                                                           RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
}

int DispatcherRig::RefusedRequests() {
  std::size_t left = 0;
  EXPECT_EQ(rd_kafka_mock_broker_error_stack_cnt(broker_.Mock(), kRefusing, kApiProduce, &left),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  return kInjected - static_cast<int>(left);
}

}  // namespace runnel::testing
