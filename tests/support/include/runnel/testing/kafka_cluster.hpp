// Test helpers for the broker tier: a GoogleTest fixture with an embedded broker per test suite,
// and the few operations tests need (MakeTopic, Produce, ConsumeAll).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runnel/broker/admin.hpp"
#include "runnel/broker/consumer.hpp"
#include "runnel/broker/embedded_broker.hpp"
#include "runnel/broker/producer.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {

class KafkaCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static broker::EmbeddedBroker& Broker() { return *broker_; }
  static broker::KafkaConfig Config() { return broker_->ClientConfig(); }

  // A topic with a name unique to this test, created with `partitions` partitions.
  std::string MakeTopic(int partitions = 4);
  // Produces every record and waits for all delivery reports; fails the test on any error.
  void Produce(const std::vector<broker::Record>& records);
  // Reads every partition of `topic` from the beginning until `count` records arrived or the
  // deadline passed (no group join, nothing committed).
  std::vector<broker::Message> ConsumeAll(const std::string& topic, std::size_t count,
                                          std::chrono::milliseconds deadline = std::chrono::seconds(30));

 private:
  static std::unique_ptr<broker::EmbeddedBroker> broker_;
  int topics_made_ = 0;
};

}  // namespace runnel::testing
