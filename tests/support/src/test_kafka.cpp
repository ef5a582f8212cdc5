#include "runnel/testing/test_kafka.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/admin.hpp"

namespace runnel::testing {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Unique across runs and processes: the topics of an earlier run of the same test on the same
// Kafka must never be read as this run's.
std::string RunPrefix() {
  static int counter = 0;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return fmt::format("rt{}-{}-{}", now, ::getpid(), ++counter);
}

}  // namespace

std::optional<std::string> TestKafka::SkipReason() {
  if (Env("RUNNEL_TEST_KAFKA_TIER").empty() || !Env("RUNNEL_TEST_KAFKA").empty()) return std::nullopt;
  return "the kafka tier runs against a real Kafka: set RUNNEL_TEST_KAFKA=host:port to run it";
}

bool TestKafka::RealKafkaTier() {
  return !Env("RUNNEL_TEST_KAFKA_TIER").empty() && !Env("RUNNEL_TEST_KAFKA").empty();
}

TestKafka::TestKafka(const std::string& topics, int partitions) {
  if (RealKafkaTier()) {
    bootstrap_ = Env("RUNNEL_TEST_KAFKA");
    prefix_ = RunPrefix();
    if (!topics.empty()) {
      kafka::Admin admin(Kafka());
      std::stringstream names(topics);
      for (std::string name; std::getline(names, name, ',');) admin.CreateTopic(Topic(name), partitions);
    }
    return;
  }
  state_dir_ = TempDir("kafka");
  std::vector<std::string> args{RunnelBin(), "kafka", "--state-dir", state_dir_.string()};
  if (!topics.empty()) {
    args.insert(args.end(), {"--topics", topics, "--partitions", std::to_string(partitions)});
  }
  process_ = std::make_unique<ChildProcess>(args);
  if (!process_->WaitForOutput("endpoints written to", std::chrono::seconds(30))) {
    ADD_FAILURE() << "runnel kafka did not start: " << process_->Stderr();
    throw std::runtime_error("runnel kafka did not start");
  }
  bootstrap_ = StateDir(state_dir_).KafkaBootstrap();
}

TestKafka::~TestKafka() {
  if (!process_) return;
  if (::testing::Test::HasFailure())
    std::cerr << "---- runnel kafka (stderr) ----\n" << process_->Stderr() << "\n";
  process_.reset();
  std::filesystem::remove_all(state_dir_);
}

std::string TestKafka::Topic(std::string_view name) const {
  return prefix_.empty() ? std::string(name) : fmt::format("{}.{}", prefix_, name);
}

}  // namespace runnel::testing
