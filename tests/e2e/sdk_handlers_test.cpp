// Plugin and exec functions through a real stack: `runnel up` loads the sample plugin
// (samples/plugin, built by this tree) and runs the Python sample (samples/exec-python) as an
// exec function; outcomes are read back from the functions' results topics.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <fstream>
#include <map>

#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;

std::map<std::string, Outcome> ById(const std::vector<Outcome>& outcomes) {
  std::map<std::string, Outcome> out;
  for (const auto& o : outcomes) EXPECT_TRUE(out.emplace(o.id, o).second) << "two outcomes for " << o.id;
  return out;
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
    params: {{precision: 2}}
    partitions: 2
    workers: 2
    concurrency: 4
    results_topic: enrich.results
    retries: {{max_attempts: 2, backoff: 20ms}}
)",
                                 RUNNEL_TEXT_TOOLS_PLUGIN, (SourceDir() / "samples/exec-python/enrich.py").string()));

  const auto word_ids = PublishEvents(stack.Kafka(), "words",
                                      {{"the quick brown fox\njumps", "k1"}, {"a b cc", std::nullopt},
                                       {std::string("bin\0ary", 7), std::nullopt}});
  Events readings;
  for (int i = 0; i < 20; ++i) {
    readings.emplace_back(fmt::format(R"({{"device":"d{}","celsius":{}}})", i % 3, i), fmt::format("d{}", i % 3));
  }
  readings.emplace_back("not json", std::nullopt);
  const auto reading_ids = PublishEvents(stack.Kafka(), "enrich", readings);

  const auto words = ById(ReadOutcomes(stack.Kafka(), "words.results", word_ids.size(), std::chrono::seconds(60)));
  ASSERT_EQ(words.size(), word_ids.size()) << stack.Process().Stderr();
  EXPECT_EQ(words.at(word_ids[0]).output, R"({"lines":2,"words":5,"bytes":25})");
  EXPECT_EQ(words.at(word_ids[0]).content_type, "application/json");
  EXPECT_EQ(words.at(word_ids[1]).output, R"({"lines":1,"words":1,"bytes":6})");
  const auto& binary = words.at(word_ids[2]);
  EXPECT_EQ(binary.status, OutcomeStatus::kError) << "permanent: an error outcome (and a dead letter) at once";
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
  }
  const auto& bad = enriched.at(reading_ids.back());
  EXPECT_EQ(bad.status, OutcomeStatus::kError);
  EXPECT_EQ(bad.attempts, 1);
  EXPECT_EQ(bad.error_kind, "bad-input");
  EXPECT_THAT(bad.error, HasSubstr("not JSON"));
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
  EXPECT_THAT(run.err, HasSubstr("built for plugin ABI version 2, this runnel loads version 1"));
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
  EXPECT_THAT(run.err, HasSubstr("runnel.yaml:3: functions[0].handler: program '" + (dir / "gone.py").string() +
                                     "' does not exist"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
