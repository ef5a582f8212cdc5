// A GoogleTest fixture for a dispatcher in the test's process: its own temp dir, an embedded broker
// with the function's three topics (<name>.in, <name>.in.dlq, <name>.results), a ZeroMQ context,
// the FunctionSpec of builtin:echo a test adjusts before StartDispatcher, the dispatcher, and
// `runnel worker` processes when a test asks for them (StartWorker). On two brokers every topic is
// led by broker 1, so RefuseWrites can make broker 2 refuse one topic's writes (mock cluster fault
// injection, kept out of this header). A test file's fixture derives from it and names the topics.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "runnel/autoscaler/local_backend.hpp"
#include "runnel/broker/dispatcher.hpp"
#include "runnel/core/config.hpp"
#include "runnel/kafka/embedded_broker.hpp"

namespace runnel::testing {

class DispatcherRig : public ::testing::Test {
 protected:
  struct Setup {
    std::string name;  // of the temp dir and the topics
    int partitions = 1;
    int brokers = 1;  // 2 for RefuseWrites
  };

  explicit DispatcherRig(Setup setup);

  // Creates the temp dir and the topics (on two brokers, led by broker 1).
  void SetUp() override;
  // Stops the workers, then the dispatcher, and removes the temp dir.
  void TearDown() override;

  // The dispatcher of spec_ (heartbeat 200 ms, outputs in <dir>/outputs), started, with `workers`
  // `runnel worker` processes connected to it (none: the test's scripted workers connect).
  void StartDispatcher(int workers = 0);
  // One more `runnel worker` process for the dispatcher.
  void StartWorker();

  // Every Produce request to broker 2 fails with TOPIC_AUTHORIZATION_FAILED (as a denied ACL does)
  // for the rest of the test, and `topic` is led by broker 2 (the others by broker 1). Needs two
  // brokers.
  void RefuseWrites(const std::string& topic);
  // Produce requests broker 2 has refused so far.
  int RefusedRequests();

  std::filesystem::path dir_;
  kafka::EmbeddedBroker broker_;
  zmq::context_t zmq_{1};
  FunctionSpec spec_;
  std::unique_ptr<broker::Dispatcher> dispatcher_;
  std::unique_ptr<autoscaler::LocalProcessBackend> workers_;

 private:
  Setup setup_;
};

}  // namespace runnel::testing
