// deploy tier: the stack configs shipped in deploy/ pass Runnel's own config loader, through
// `runnel config check` (the check `runnel up` makes before starting anything), and the command
// refuses bad configs naming the problem.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "runnel/testing/child_process.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

// The per-function lines of `runnel config check` output (they start with two spaces).
std::vector<std::string> FunctionLines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  ", 0) == 0) lines.push_back(line);
  }
  return lines;
}

RunResult Check(const std::filesystem::path& file) {
  return RunCommand({RunnelBin(), "config", "check", file.string()}, std::chrono::seconds(30));
}

std::filesystem::path WriteFile(const std::string& tag, const std::string& text) {
  auto path = TempDir(tag) / "runnel.yaml";
  std::ofstream(path) << text;
  return path;
}

TEST(DeployConfig, ComposeRunnelYamlIsAccepted) {
  const auto result = Check(SourceDir() / "deploy" / "runnel.yaml");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("ok, 3 function(s)"));
  EXPECT_THAT(result.out, HasSubstr("Kafka: kafka:9092"));
  const auto lines = FunctionLines(result.out);
  ASSERT_EQ(lines.size(), 3u) << result.out;
  EXPECT_THAT(lines[0], ::testing::AllOf(HasSubstr("echo"), HasSubstr("results echo.results")));
  EXPECT_THAT(lines[1],
              ::testing::AllOf(HasSubstr("image.thumbnail"), HasSubstr("results image.thumbnail.results")));
  EXPECT_THAT(lines[2], ::testing::AllOf(HasSubstr("iot.ingest"), HasSubstr("topic sensors"),
                                         HasSubstr("results sensors.results")));
}

TEST(DeployConfig, TheBuiltInDefaultStackIsAccepted) {
  // `runnel up` without --config serves every built-in function with default params; each of them
  // must accept those params, or the stack would refuse to start.
  const auto result = RunCommand({RunnelBin(), "config", "check"}, std::chrono::seconds(30));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("(built-in default): ok"));
  const auto lines = FunctionLines(result.out);
  for (const char* name : {"echo", "sleep", "image.thumbnail", "image.convert", "image.metadata",
                           "video.thumbnails", "video.probe", "iot.ingest"}) {
    EXPECT_TRUE(std::any_of(
        lines.begin(), lines.end(),
        [name](const std::string& line) { return line.rfind(fmt::format("  {} ", name), 0) == 0; }))
        << name << " is missing from the default stack:\n"
        << result.out;
  }
}

TEST(DeployConfig, KubernetesConfigMapHoldsTheSameAcceptedStack) {
  const YAML::Node config_map = YAML::LoadFile((SourceDir() / "deploy" / "k8s" / "configmap.yaml").string());
  ASSERT_TRUE(config_map["data"] && config_map["data"]["runnel.yaml"])
      << "the ConfigMap has no data.runnel.yaml";
  const auto file = WriteFile("deploy-configmap", config_map["data"]["runnel.yaml"].as<std::string>());
  const auto result = Check(file);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  // Kafka comes from `--kafka $(KAFKA_BOOTSTRAP)` there, so only the functions must agree.
  const auto compose = Check(SourceDir() / "deploy" / "runnel.yaml");
  EXPECT_EQ(FunctionLines(result.out), FunctionLines(compose.out))
      << "deploy/k8s/configmap.yaml and deploy/runnel.yaml define different functions";
  std::filesystem::remove_all(file.parent_path());
}

TEST(DeployConfig, UnknownKeyIsRefusedWithFileLineAndKey) {
  const auto file = WriteFile("deploy-badkey", "functions:\n  - name: echo\n    workerz: 2\n");
  const auto result = Check(file);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr(file.string() + ":3: functions[0].workerz: unknown key"));
  EXPECT_EQ(result.out, "");
  std::filesystem::remove_all(file.parent_path());
}

// A bare number used to be milliseconds (10 ms where KEDA and Lambda mean 10 s), and `nan` passed.
TEST(DeployConfig, ADurationWithoutAUnitOrNotANumberIsRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"    timeout: 10\n",
       R"(:3: functions[0].timeout: '10' has no unit: durations need one, write "10s" or "10ms")"},
      {"    retries: {backoff: nan}\n",
       ":3: functions[0].retries.backoff: 'nan' is not a duration like 500ms"},
      {"    timeout: 0x10s\n", ":3: functions[0].timeout: '0x10s' is not a duration like 500ms"},
      {"    timeout: 1e3s\n", ":3: functions[0].timeout: '1e3s' is not a duration like 500ms"},
  };
  for (const auto& [line, message] : cases) {
    const auto file = WriteFile("deploy-duration", "functions:\n  - name: echo\n" + line);
    const auto result = Check(file);
    EXPECT_EQ(result.exit_code, 1) << line;
    EXPECT_THAT(result.err, HasSubstr(file.string() + message)) << line;
    std::filesystem::remove_all(file.parent_path());
  }
}

TEST(DeployConfig, ParamsTheFunctionRefusesAreAConfigError) {
  // Valid YAML and keys, but image.thumbnail refuses the size: `runnel up` would refuse to start.
  const auto file = WriteFile("deploy-badparams",
                              "functions:\n  - name: image.thumbnail\n    params:\n      sizes:\n"
                              "        - {width: 0, height: 64}\n");
  const auto result = Check(file);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("function image.thumbnail"));
  EXPECT_THAT(result.err, HasSubstr("sizes[0].width"));
  std::filesystem::remove_all(file.parent_path());
}

TEST(DeployConfig, EachFunctionsBatchIsTheConfigsElseItsOwn) {
  const auto file = WriteFile("deploy-batch",
                              "functions:\n  - name: iot.ingest\n    batch: {size: 50, window: 200ms}\n"
                              "  - name: sensors\n    handler: builtin:iot.ingest\n  - name: echo\n");
  const auto result = Check(file);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto lines = FunctionLines(result.out);
  ASSERT_EQ(lines.size(), 3u) << result.out;
  EXPECT_THAT(lines[0], HasSubstr("batch 50/200ms"));
  EXPECT_THAT(lines[1], HasSubstr("batch 100/500ms")) << "iot.ingest's own default";
  EXPECT_THAT(lines[2], HasSubstr("batch 1/0ms"));
  std::filesystem::remove_all(file.parent_path());
}

TEST(DeployConfig, ABatchForAFunctionWithoutBatchesIsRefusedWithItsLine) {
  const auto file = WriteFile("deploy-echo-batch", "functions:\n  - name: echo\n    batch: {size: 50}\n");
  const auto result = Check(file);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(
      result.err,
      HasSubstr(file.string() + ":3: functions[0].batch: function echo (builtin:echo): batch.size 50: this "
                                "function takes one event per call (it does not declare batches); remove "
                                "batch or set batch.size: 1"));
  std::filesystem::remove_all(file.parent_path());
}

TEST(DeployConfig, TheOldBatchParamsNameTheNewKey) {
  const auto file =
      WriteFile("deploy-old-batch",
                "functions:\n  - name: iot.ingest\n    params: {batch_size: 100, batch_window_ms: 100}\n");
  const auto result = Check(file);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err,
              HasSubstr("function iot.ingest (builtin:iot.ingest): iot.ingest: params.batch_size is no "
                        "longer a param: set the function's batch key instead, e.g. batch: {size: "
                        "100, window: 500ms}"));
  std::filesystem::remove_all(file.parent_path());
}

// A dead-letter copy of an input up to max_payload must fit the producer's message.max.bytes: the
// check `runnel up` makes names the file, the line and the key to change.
TEST(DeployConfig, AMaxPayloadOverTheProducersLimitIsRefusedNamingTheKeyToChange) {
  const auto big = WriteFile("deploy-max-payload", "functions:\n  - name: echo\n    max_payload: 2000000\n");
  const auto refused = Check(big);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err,
              HasSubstr(big.string() + ":3: functions[0].max_payload: 2000000 plus 65536 bytes for the "
                                       "headers Runnel adds is over the producer's message.max.bytes of "
                                       "1114112 (Runnel's default)"));
  EXPECT_THAT(refused.err, HasSubstr("set kafka.options.message.max.bytes to at least 2065536"));
  std::filesystem::remove_all(big.parent_path());

  const auto raised =
      WriteFile("deploy-max-payload-ok",
                "kafka:\n  options: {message.max.bytes: \"2065536\"}\nfunctions:\n  - name: echo\n"
                "    max_payload: 2000000\n");
  const auto accepted = Check(raised);
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  std::filesystem::remove_all(raised.parent_path());

  const auto small =
      WriteFile("deploy-message-max-bytes",
                "kafka:\n  options:\n    message.max.bytes: \"1000000\"\nfunctions:\n  - name: echo\n");
  const auto too_small = Check(small);
  EXPECT_EQ(too_small.exit_code, 1);
  EXPECT_THAT(too_small.err,
              HasSubstr(small.string() + ":3: kafka.options.message.max.bytes: 1000000 is too small for "
                                         "functions[0] (echo)"));
  std::filesystem::remove_all(small.parent_path());
}

TEST(DeployConfig, UnknownBuiltinAndMissingFileAreRefused) {
  const auto file = WriteFile("deploy-unknown", "functions:\n  - name: no.such.function\n");
  const auto unknown = Check(file);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("function no.such.function"));
  std::filesystem::remove_all(file.parent_path());

  const auto missing = Check("/nonexistent/runnel.yaml");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/runnel.yaml: cannot read the file"));
}

}  // namespace
}  // namespace runnel::testing
