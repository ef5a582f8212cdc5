// Test helpers for the broker tier: a GoogleTest fixture with an embedded broker per test suite,
// and the few operations tests need (MakeTopic, Produce, ConsumeAll).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {

class KafkaCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static kafka::EmbeddedBroker& Broker() { return *broker_; }
  static kafka::KafkaOptions Config() { return broker_->ClientConfig(); }

  // A topic with a name unique to this test, created with `partitions` partitions.
  std::string MakeTopic(int partitions = 4);
  // Produces every record and waits for all delivery reports; fails the test on any error.
  void Produce(const std::vector<kafka::Record>& records);
  // Reads every partition of `topic` from the beginning until `count` records arrived or the
  // deadline passed (no group join, nothing committed).
  std::vector<kafka::Message> ConsumeAll(const std::string& topic, std::size_t count,
                                         std::chrono::milliseconds deadline = std::chrono::seconds(30));

 private:
  static std::unique_ptr<kafka::EmbeddedBroker> broker_;
  int topics_made_ = 0;
};

}  // namespace runnel::testing
