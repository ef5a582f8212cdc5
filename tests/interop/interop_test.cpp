// Third-party clients against `runnel kafka`: kcat and kafka-python produce and consume alongside
// Runnel's own producer and consumer, headers included.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runnel/core/envelope.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

class Interop : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = TempDir("interop");
    kafka_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        RunnelBin(), "kafka", "--state-dir", state_dir_.string(), "--topics", "in,out", "--partitions", "2"});
    ASSERT_TRUE(kafka_->WaitForOutput("endpoints written", std::chrono::seconds(20))) << kafka_->Stderr();
    bootstrap_ = StateDir(state_dir_).KafkaBootstrap();
  }
  void TearDown() override {
    kafka_.reset();
    std::filesystem::remove_all(state_dir_);
  }
  kafka::KafkaOptions Config() const { return {bootstrap_, "interop-test", {}}; }

  std::filesystem::path state_dir_;
  std::unique_ptr<ChildProcess> kafka_;
  std::string bootstrap_;
};

TEST_F(Interop, EndpointsNameTheBrokerAndASecondInstanceIsRefused) {
  const auto endpoints = StateDir(state_dir_).ReadEndpoints();
  EXPECT_THAT(endpoints["kafka"].get<std::string>(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_TRUE(endpoints["embedded"].get<bool>());
  auto second = RunCommand({RunnelBin(), "kafka", "--state-dir", state_dir_.string()});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("a Runnel stack already runs with state dir"));
}

TEST_F(Interop, StopsOnSigtermAndRemovesItsEndpoints) {
  kafka_->Signal(SIGTERM);
  EXPECT_EQ(kafka_->Wait(std::chrono::seconds(20)), 0);
  EXPECT_FALSE(std::filesystem::exists(StateDir(state_dir_).EndpointsFile()));
}

TEST_F(Interop, KcatProducesAndRunnelConsumesWithHeaders) {
  const auto kcat =
      RunCommand({"kcat", "-P", "-b", bootstrap_, "-t", "in", "-k", "device-7", "-H", "runnel-id=kcat-1",
                  "-H", "content-type=application/json", "-H", "runnel-hop=3", "-H", "x-origin=kcat"},
                 std::chrono::seconds(30), "{\"temp\": 21.5}\n");
  ASSERT_EQ(kcat.exit_code, 0) << kcat.err;

  kafka::Consumer consumer(Config(), {"interop.kcat"});
  consumer.Assign({{"in", 0, kafka::kOffsetBeginning}, {"in", 1, kafka::kOffsetBeginning}});
  std::optional<kafka::Message> got;
  ASSERT_TRUE(WaitFor([&] { return (got = consumer.Poll(std::chrono::milliseconds(50))).has_value(); },
                      std::chrono::seconds(20), std::chrono::milliseconds(0)));
  EXPECT_EQ(got->key, "device-7");
  EXPECT_EQ(got->value, "{\"temp\": 21.5}");
  const Envelope env = Envelope::Decode(got->headers);
  EXPECT_EQ(env.id, "kcat-1");
  EXPECT_EQ(env.content_type, "application/json");
  EXPECT_EQ(env.hop, 3);
  EXPECT_EQ(env.extra, (Headers{{"x-origin", "kcat"}}));
}

class RunnelProduces : public Interop {
 protected:
  // Publishes `count` events to "out" through Runnel's producer; returns their ids.
  std::set<std::string> Publish(int count) {
    std::set<std::string> ids;
    kafka::Producer producer(Config());
    for (int i = 0; i < count; ++i) {
      Envelope env;
      env.id = NewEventId();
      env.content_type = "text/plain";
      env.trace_id = NewTraceId();
      producer.ProduceSync({"out", kafka::kAnyPartition, fmt::format("key-{}", i % 3),
                            fmt::format("event {}", i), env.Encode()});
      ids.insert(env.id);
    }
    return ids;
  }
};

TEST_F(RunnelProduces, KcatReadsEventsAndHeaders) {
  auto ids = Publish(10);
  const auto kcat =
      RunCommand({"kcat", "-C", "-b", bootstrap_, "-t", "out", "-e", "-q", "-f", "%k|%h|%s\\n"});
  ASSERT_EQ(kcat.exit_code, 0) << kcat.err;
  const auto lines = Lines(kcat.out);
  ASSERT_EQ(lines.size(), 10u) << kcat.out;
  for (const auto& line : lines) {
    EXPECT_THAT(line, ::testing::MatchesRegex("key-[0-2]\\|runnel-id=[0-9A-Z]{26},content-type=text/plain,"
                                              "runnel-trace=[0-9a-f]{32}\\|event [0-9]"));
    ids.erase(line.substr(line.find("runnel-id=") + 10, 26));
  }
  EXPECT_TRUE(ids.empty()) << "kcat missed some events";
}

TEST_F(RunnelProduces, KafkaPythonReadsEventsAndHeaders) {
  auto ids = Publish(10);
  const auto script = SourceDir() / "tests/interop/read_topic.py";
  const auto py = RunCommand({"/usr/bin/python3", script.string(), bootstrap_, "out", "10"});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  for (const auto& line : Lines(py.out)) {
    const auto record = nlohmann::json::parse(line);
    Headers headers;
    for (const auto& h : record["headers"]) headers.push_back({h[0], h[1]});
    ids.erase(Envelope::Decode(headers).id);
  }
  EXPECT_TRUE(ids.empty()) << "kafka-python missed some events: " << py.out;
}

}  // namespace
}  // namespace runnel::testing
