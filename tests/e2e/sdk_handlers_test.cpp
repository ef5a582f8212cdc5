// Plugin and exec functions through a real stack: `runnel up` loads the sample plugin
// (samples/plugin, built by this tree: plugin ABI version 2, a batching function and one that
// emits) and runs the Python sample (samples/exec-python) as an exec function that writes an output
// file and emits alerts; outcomes are read back from the functions' results topics, emitted records
// from their topics.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <fstream>
#include <map>
#include <set>

#include "runnel/kafka/consumer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;

std::map<std::string, Outcome> ById(const std::vector<Outcome>& outcomes) {
  std::map<std::string, Outcome> out;
  for (const auto& o : outcomes) EXPECT_TRUE(out.emplace(o.id, o).second) << "two outcomes for " << o.id;
  return out;
}

// Every record on `topic` (4 partitions) until `count` arrived or 30 s passed.
std::vector<kafka::Message> ReadRecords(const kafka::KafkaOptions& kafka, const std::string& topic,
                                        std::size_t count) {
  kafka::Consumer consumer(kafka, {"e2e." + topic});
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (int p = 0; p < 4; ++p) partitions.push_back({topic, p, kafka::kOffsetBeginning});
  consumer.Assign(partitions);
  std::vector<kafka::Message> got;
  WaitFor(
      [&] {
        for (auto& m : consumer.PollBatch(10, std::chrono::milliseconds(50))) got.push_back(std::move(m));
        return got.size() >= count;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(0));
  return got;
}

TEST(SdkHandlers, APluginAndAPythonProgramServeEventsThroughTheStack) {
  StackProcess stack(fmt::format(R"(
heartbeat: 200ms
functions:
  - name: words
    handler: plugin:{}#word-count
    params: {{min_length: 2}}
    partitions: 2
    workers: 1
    results_topic: words.results
    retries: {{max_attempts: 2, backoff: 20ms}}
  - name: enrich
    handler: exec:/usr/bin/python3 {}
    params: {{precision: 2, alert_above: 60, save: true}}
    partitions: 2
    workers: 2
    concurrency: 4
    results_topic: enrich.results
    retries: {{max_attempts: 2, backoff: 20ms}}
  - name: lines
    handler: plugin:{}#split-lines
    params: {{topic: lines.out}}
    workers: 1
    results_topic: lines.results
)",
                                 RUNNEL_TEXT_TOOLS_PLUGIN,
                                 (SourceDir() / "samples/exec-python/enrich.py").string(),
                                 RUNNEL_TEXT_TOOLS_PLUGIN));
  const auto line_ids = PublishEvents(stack.Kafka(), "lines", {{"alpha\nbeta\n", "doc"}});

  const auto word_ids = PublishEvents(stack.Kafka(), "words",
                                      {{"the quick brown fox\njumps", "k1"},
                                       {"a b cc", std::nullopt},
                                       {std::string("bin\0ary", 7), std::nullopt}});
  Events readings;
  for (int i = 0; i < 20; ++i) {
    readings.emplace_back(fmt::format(R"({{"device":"d{}","celsius":{}}})", i % 3, i),
                          fmt::format("d{}", i % 3));
  }
  readings.emplace_back("not json", std::nullopt);
  const auto reading_ids = PublishEvents(stack.Kafka(), "enrich", readings);

  const auto words =
      ById(ReadOutcomes(stack.Kafka(), "words.results", word_ids.size(), std::chrono::seconds(60)));
  ASSERT_EQ(words.size(), word_ids.size()) << stack.Process().Stderr();
  EXPECT_EQ(words.at(word_ids[0]).output, R"({"lines":2,"words":5,"bytes":25})");
  EXPECT_EQ(words.at(word_ids[0]).content_type, "application/json");
  EXPECT_EQ(words.at(word_ids[1]).output, R"({"lines":1,"words":1,"bytes":6})");
  const auto& binary = words.at(word_ids[2]);
  EXPECT_EQ(binary.status, OutcomeStatus::kError)
      << "permanent: an error outcome (and a dead letter) at once";
  EXPECT_EQ(binary.error_kind, "bad-input");
  EXPECT_EQ(binary.attempts, 1) << "bad input is not retried";
  EXPECT_THAT(binary.error, HasSubstr("binary input"));

  const auto enriched =
      ById(ReadOutcomes(stack.Kafka(), "enrich.results", reading_ids.size(), std::chrono::seconds(60)));
  ASSERT_EQ(enriched.size(), reading_ids.size()) << stack.Process().Stderr();
  for (int i = 0; i < 20; ++i) {
    const auto& o = enriched.at(reading_ids[static_cast<std::size_t>(i)]);
    ASSERT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    const auto body = nlohmann::json::parse(o.output);
    EXPECT_NEAR(body.at("fahrenheit").get<double>(), i * 9.0 / 5.0 + 32.0, 1e-9);
    EXPECT_EQ(body.at("event"), o.id);
    EXPECT_EQ(body.at("key"), fmt::format("d{}", i % 3));
    EXPECT_EQ(o.content_type, "application/json");
    // The output file the program listed in its control file.
    const auto files = nlohmann::json::parse(o.files_json.empty() ? "[]" : o.files_json);
    ASSERT_EQ(files.size(), 1u) << o.files_json;
    EXPECT_THAT(files[0].at("path").get<std::string>(), HasSubstr("/enrich/" + o.id + "/reading.json"));
    EXPECT_EQ(files[0].at("bytes").get<std::size_t>(), o.output.size());
  }
  const auto& bad = enriched.at(reading_ids.back());
  EXPECT_EQ(bad.status, OutcomeStatus::kError);
  EXPECT_EQ(bad.attempts, 1);
  EXPECT_EQ(bad.error_kind, "bad-input");
  EXPECT_THAT(bad.error, HasSubstr("not JSON"));

  // Readings 16..19 are above 60 F: four alerts, emitted by the Python program, keyed by device.
  const auto alerts = ReadRecords(stack.Kafka(), "enrich.alerts", 4);
  ASSERT_EQ(alerts.size(), 4u);
  for (const auto& alert : alerts) {
    const Envelope env = Envelope::Decode(alert.headers);
    EXPECT_EQ(env.hop, 1);
    const auto body = nlohmann::json::parse(alert.value);
    EXPECT_GT(body.at("fahrenheit").get<double>(), 60.0);
    EXPECT_EQ(alert.key, body.at("device").get<std::string>());
  }

  // The plugin's emits: one record per line, with the event's key.
  const auto split = ById(ReadOutcomes(stack.Kafka(), "lines.results", 1, std::chrono::seconds(30)));
  ASSERT_EQ(split.size(), 1u) << stack.Process().Stderr();
  EXPECT_EQ(split.at(line_ids[0]).output, R"({"emitted":2})");
  auto lines = ReadRecords(stack.Kafka(), "lines.out", 2);
  ASSERT_EQ(lines.size(), 2u);
  std::set<std::string> texts;
  for (const auto& line : lines) {
    texts.insert(line.value);
    EXPECT_EQ(line.key, "doc");
  }
  EXPECT_EQ(texts, (std::set<std::string>{"alpha", "beta"}));
}

TEST(SdkHandlers, UpRefusesAPluginBuiltForAnotherAbi) {
  const auto dir = TempDir("sdk-abi");
  {
    std::ofstream config(dir / "runnel.yaml");
    config << "functions:\n  - name: future\n    handler: plugin:" << RUNNEL_OTHER_ABI_PLUGIN << "\n";
  }
  const auto run = RunCommand({RunnelBin(), "up", "--config", (dir / "runnel.yaml").string(), "--state-dir",
                               (dir / "state").string()},
                              std::chrono::seconds(30));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("function future"));
  EXPECT_THAT(run.err, HasSubstr("built for plugin ABI version 3"));
  EXPECT_THAT(run.err, HasSubstr("this runnel loads versions 1 and 2"));
  std::filesystem::remove_all(dir);
}

TEST(SdkHandlers, UpRefusesAMissingProgramNamingTheLine) {
  const auto dir = TempDir("sdk-exec");
  {
    std::ofstream config(dir / "runnel.yaml");
    config << "functions:\n  - name: gone\n    handler: exec:./gone.py\n";
  }
  const auto run = RunCommand({RunnelBin(), "up", "--config", (dir / "runnel.yaml").string(), "--state-dir",
                               (dir / "state").string()},
                              std::chrono::seconds(30));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("runnel.yaml:3: functions[0].handler: program '" +
                                 (dir / "gone.py").string() + "' does not exist"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
