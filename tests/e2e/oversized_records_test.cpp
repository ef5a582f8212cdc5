// Records too large for the producer, through `runnel up` on the embedded broker (docs/protocol.md
// §4.5): a 1.5 MB output (an exec `cat` of a file passed by reference) with a results topic, and
// inputs over max_payload (1.05 MB and 1.5 MB) whose dead-letter copies are over librdkafka's
// default limit. Each gets a clear limit-exceeded outcome, the dead-letter copy is cut to fit and
// says so, and later events of the same partition keep getting outcomes. Today the first of them
// makes Producer::Produce throw inside the dispatcher's thread, which ends it.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <fstream>
#include <map>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

constexpr std::size_t kProducerLimit = 1'114'112;  // Runnel's default message.max.bytes (docs/config.md)

// Every record of `topic` from the beginning, by its runnel-id, until `count` arrived or the deadline passed.
std::map<std::string, kafka::Message> ReadById(const kafka::KafkaOptions& kafka, const std::string& topic,
                                               std::size_t count, std::chrono::milliseconds deadline) {
  std::map<std::string, kafka::Message> out;
  ReadFromBeginning(
      kafka, topic, "e2e.read-by-id", deadline, 100,
      [&](kafka::Message& m) { out[HeaderValue(m, header::kId)] = m; }, [&] { return out.size() >= count; });
  return out;
}

std::map<std::string, Outcome> ById(const std::vector<Outcome>& outcomes) {
  std::map<std::string, Outcome> out;
  for (const auto& o : outcomes) out[o.id] = o;
  return out;
}

TEST(OversizedRecords, OutputsAndDeadLettersOverTheLimitGetClearOutcomesAndThePartitionFlows) {
  const auto files = TempDir("oversized-inputs");
  const auto big_file = files / "big.txt";
  std::ofstream(big_file) << std::string(1'500'000, 'f');
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: echo
    partitions: 1
    workers: 1
    results_topic: echo.results
  - name: cat
    handler: exec:/bin/cat
    partitions: 1
    workers: 1
    results_topic: cat.results
)");
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, std::chrono::seconds(20)));
  ASSERT_TRUE(stack.WaitForWorkers("cat", 1, std::chrono::seconds(20)));

  // This test's own producer takes 4 MB records, so the inputs reach the stack on any build.
  kafka::KafkaOptions kafka = stack.Kafka();
  kafka.options["message.max.bytes"] = "4000000";
  kafka::Producer producer(kafka);
  auto publish = [&](const std::string& topic, std::string value,
                     std::optional<FileRef> file = std::nullopt) {
    Envelope env;
    env.id = NewEventId();
    env.file = std::move(file);
    (void)producer.ProduceSync({topic, kafka::kAnyPartition, std::nullopt, std::move(value), env.Encode()});
    return env.id;
  };
  const std::string big_output = publish("cat", "", FileRef{big_file.string(), 1'500'000, "big.txt"});
  const std::string input_105 = publish("echo", std::string(1'050'000, 'a'));
  const std::string input_150 = publish("echo", std::string(1'500'000, 'b'));
  std::vector<std::string> echo_after, cat_after;
  for (int i = 0; i < 3; ++i) {
    echo_after.push_back(publish("echo", fmt::format("after-{}", i)));
    cat_after.push_back(publish("cat", fmt::format("small-{}", i)));
  }

  auto echo = ById(ReadOutcomes(stack.Kafka(), "echo.results", 5, std::chrono::seconds(60)));
  auto cat = ById(ReadOutcomes(stack.Kafka(), "cat.results", 4, std::chrono::seconds(60)));
  ASSERT_EQ(echo.size(), 5u) << "echo's partition stopped";
  ASSERT_EQ(cat.size(), 4u) << "cat's partition stopped";

  const Outcome& output = cat[big_output];
  EXPECT_EQ(output.status, OutcomeStatus::kError);
  EXPECT_EQ(output.error_kind, "limit-exceeded");
  EXPECT_THAT(output.error, HasSubstr("its output of 1500000 bytes makes a record of"));
  EXPECT_THAT(output.error, HasSubstr(fmt::format("for results topic cat.results, over the producer's "
                                                  "message.max.bytes of {}",
                                                  kProducerLimit)));
  for (const auto& id : {input_105, input_150}) {
    EXPECT_EQ(echo[id].status, OutcomeStatus::kError);
    EXPECT_EQ(echo[id].error_kind, "limit-exceeded");
    EXPECT_THAT(echo[id].error, HasSubstr("over the function's max_payload of 1048576"));
  }
  for (std::size_t i = 0; i < echo_after.size(); ++i) {
    EXPECT_EQ(echo[echo_after[i]].status, OutcomeStatus::kOk) << echo[echo_after[i]].error;
    EXPECT_EQ(echo[echo_after[i]].output, fmt::format("after-{}", i));
    EXPECT_EQ(cat[cat_after[i]].status, OutcomeStatus::kOk) << cat[cat_after[i]].error;
    EXPECT_EQ(cat[cat_after[i]].output, fmt::format("small-{}", i));
  }

  // Dead letters: the 1.05 MB input whole (it fits the producer's default), the 1.5 MB one cut to
  // the limit and marked, the oversized output's event (its input was a reference) as it was.
  auto letters = ReadById(stack.Kafka(), "echo.dlq", 2, std::chrono::seconds(30));
  ASSERT_TRUE(letters.contains(input_105) && letters.contains(input_150))
      << letters.size() << " dead letters";
  EXPECT_EQ(letters[input_105].value, std::string(1'050'000, 'a'));
  EXPECT_EQ(HeaderValue(letters[input_105], "runnel-truncated"), "(none)");
  const kafka::Message& cut = letters[input_150];
  EXPECT_EQ(HeaderValue(cut, "runnel-truncated"), "1500000");
  EXPECT_GT(cut.value.size(), 1'000'000u);
  EXPECT_LT(cut.value.size(), 1'500'000u);
  EXPECT_EQ(cut.value, std::string(cut.value.size(), 'b')) << "the start of the input";
  EXPECT_EQ(HeaderValue(cut, "runnel-error-kind"), "limit-exceeded");
  auto cat_letters = ReadById(stack.Kafka(), "cat.dlq", 1, std::chrono::seconds(30));
  ASSERT_TRUE(cat_letters.contains(big_output));
  EXPECT_THAT(HeaderValue(cat_letters[big_output], "runnel-error"), HasSubstr("1500000 bytes"));
  EXPECT_EQ(HeaderValue(cat_letters[big_output], header::kFile), FileUriFromPath(big_file.string()));

  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "echo", "runnel.echo", std::chrono::seconds(20)));
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "cat", "runnel.cat", std::chrono::seconds(20)));
  EXPECT_FALSE(stack.FunctionStatus("echo").value("blocked", true));
  std::filesystem::remove_all(files);
}

}  // namespace
}  // namespace runnel::testing
