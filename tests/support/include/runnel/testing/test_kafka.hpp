// The Kafka a test's stacks run against when the broker must outlive them: `runnel kafka` started
// for the test (its own process, in its own state dir), or, in the `kafka` tier, the real Kafka
// named by RUNNEL_TEST_KAFKA=host:port. On a real Kafka topics outlive the test, so Topic() gives
// each TestKafka's topics a prefix of their own; on `runnel kafka` it returns the name as it is.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runnel/kafka/kafka.hpp"
#include "runnel/testing/child_process.hpp"

namespace runnel::testing {

class TestKafka {
 public:
  // `topics` (comma-separated, before Topic()) are created with `partitions` each when given:
  // by `runnel kafka --topics`, or on a real Kafka through the admin API.
  explicit TestKafka(const std::string& topics = "", int partitions = 1);
  ~TestKafka();
  TestKafka(const TestKafka&) = delete;
  TestKafka& operator=(const TestKafka&) = delete;

  const std::string& Bootstrap() const { return bootstrap_; }
  kafka::KafkaOptions Kafka() const { return {bootstrap_, "e2e-test", {}}; }
  // The topic a test means by `name`: `name` on `runnel kafka`, "<prefix>.<name>" on a real Kafka.
  std::string Topic(std::string_view name) const;
  bool External() const { return !process_; }

  // Why a test of the `kafka` tier cannot run here (RUNNEL_TEST_KAFKA_TIER=1 without
  // RUNNEL_TEST_KAFKA), or nothing. Outside that tier tests run on `runnel kafka`.
  static std::optional<std::string> SkipReason();
  // True in the `kafka` tier with RUNNEL_TEST_KAFKA set: a test that otherwise runs on its stack's
  // embedded broker runs on a TestKafka instead.
  static bool RealKafkaTier();

 private:
  std::filesystem::path state_dir_;
  std::unique_ptr<ChildProcess> process_;
  std::string bootstrap_;
  std::string prefix_;
};

// A test fixture for tests on a TestKafka: skipped, with the reason, in the `kafka` tier when no
// real Kafka is named.
class OnTestKafka : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = TestKafka::SkipReason()) GTEST_SKIP() << *why;
  }
};

}  // namespace runnel::testing
