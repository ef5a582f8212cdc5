// Every sample's one-line command (samples/*/run.sh) and the README's first command (`runnel demo
// --short`) run for real: a `runnel up` on the embedded broker, worker processes, the CLI. Each
// asserts what a user would look at: files produced, results received, the job report's counts,
// and that nothing is left running. Plus environment variables in runnel.yaml end to end: a secret
// from the environment reaches the Kafka options and never the logs.
#include <gmock/gmock.h>

#include <fstream>
#include <regex>

#include "runnel/testing/child_process.hpp"
#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct SampleRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::filesystem::path state;
};

// Runs samples/<name>/run.sh with this build's runnel and a fresh state dir, bounded in time.
SampleRun RunSample(const std::string& name, std::map<std::string, std::string> env = {},
                    std::chrono::seconds deadline = std::chrono::seconds(90)) {
  SampleRun run;
  run.state = TempDir("sample-" + name);
  env["RUNNEL"] = RunnelBin();
  env["RUNNEL_STATE_DIR"] = run.state.string();
  ChildProcess script({"bash", (SourceDir() / "samples" / name / "run.sh").string()}, env);
  const auto code = script.Wait(deadline);
  EXPECT_TRUE(code.has_value()) << name << "/run.sh did not finish within " << deadline.count() << " s:\n"
                                << script.Stdout() << script.Stderr();
  run.exit_code = code.value_or(-1);
  run.out = script.Stdout();
  run.err = script.Stderr();
  return run;
}

std::vector<std::filesystem::path> FilesUnder(const std::filesystem::path& dir,
                                              const std::string& name = {}) {
  std::vector<std::filesystem::path> files;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && (name.empty() || e.path().filename() == name)) files.push_back(e.path());
  }
  return files;
}

bool IsJpeg(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[3] = {};
  in.read(magic, 3);
  return in && static_cast<unsigned char>(magic[0]) == 0xFF && static_cast<unsigned char>(magic[1]) == 0xD8 &&
         static_cast<unsigned char>(magic[2]) == 0xFF;
}

// The stack a sample started is gone: it removed its endpoints when it stopped.
void ExpectStackStopped(const SampleRun& run) {
  const auto endpoints = run.state / "endpoints.json";
  if (!std::filesystem::exists(endpoints)) return;
  std::ifstream in(endpoints);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(text, Not(HasSubstr("\"pid\""))) << "the sample left a stack behind";
}

TEST(Samples, ImagesMakeThumbnailsAndFeedMetadata) {
  const auto run = RunSample("images");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("4 file(s): 3 done, 1 failed"));
  EXPECT_THAT(run.out, ::testing::ContainsRegex("failed .*corrupt.jpg: bad-input"));
  const auto thumbnails = FilesUnder(run.state / "outputs" / "image.thumbnail");
  EXPECT_EQ(thumbnails.size(), 9u);  // 3 images x 3 sizes
  for (const auto& t : thumbnails) EXPECT_TRUE(IsJpeg(t)) << t;
  // Nine metadata records, counted by `uniq -c` per distinct size.
  int metadata = 0;
  const std::regex line(R"(^\s+(\d+) \d+x\d+ jpeg\s+\d+ bytes$)");
  std::istringstream lines(run.out);
  for (std::string l; std::getline(lines, l);) {
    std::smatch m;
    if (std::regex_match(l, m, line)) metadata += std::stoi(m[1]);
  }
  EXPECT_EQ(metadata, 9) << run.out;
  ExpectStackStopped(run);
  std::filesystem::remove_all(run.state);
}

TEST(Samples, VideoMakesAContactSheet) {
  const auto run = RunSample("video");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("1 file(s): 1 done, 0 failed"));
  const auto sheets = FilesUnder(run.state / "outputs" / "video.thumbnails", "contact.jpg");
  ASSERT_EQ(sheets.size(), 1u);
  EXPECT_TRUE(IsJpeg(sheets[0]));
  EXPECT_THAT(run.out, HasSubstr(sheets[0].string()));
  // The 6 s clip, a frame a second: frames at 0..5 s.
  EXPECT_EQ(FilesUnder(sheets[0].parent_path()).size(), 7u);
  ExpectStackStopped(run);
  std::filesystem::remove_all(run.state);
}

TEST(Samples, IotReadingsAllGetResultsAndWorkersReturnToZero) {
  const auto run = RunSample("iot", {{"DEVICES", "10"}, {"RATES", "100,400"}, {"PHASE_SECONDS", "2"}});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(run.out, m, std::regex(R"(published (\d+) reading\(s\) from 10 device\(s\))")))
      << run.out;
  const std::string published = m[1];
  EXPECT_GT(std::stoi(published), 0);
  // Exact counts come from the dispatcher (runnel status); the results feed may drop under load.
  EXPECT_THAT(run.out, HasSubstr("iot.ingest outcomes (runnel status): " + published +
                                 " ok, 0 errors, 0 dead letters"));
  EXPECT_THAT(run.out, ::testing::ContainsRegex("[0-9]+ readings accepted, 0 rejected"));
  EXPECT_THAT(run.out, HasSubstr("workers 0 running"));
  ExpectStackStopped(run);
  std::filesystem::remove_all(run.state);
}

TEST(Samples, BatchJobReportsEveryItem) {
  const auto run = RunSample("batch");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("nightly-thumbnails"));  // job list
  const std::string all = run.out + run.err;              // the progress and report may go to either
  EXPECT_THAT(all, HasSubstr("13 item(s) to image.thumbnail"));
  EXPECT_THAT(all, ::testing::ContainsRegex("done +12"));
  EXPECT_THAT(all, ::testing::ContainsRegex("failed +1"));
  EXPECT_THAT(all, HasSubstr("broken.jpg: bad-input"));
  const auto records = FilesUnder(run.state / "jobs");
  ASSERT_EQ(records.size(), 1u);
  std::ifstream in(records[0]);
  const auto record = nlohmann::json::parse(in);
  EXPECT_EQ(record["items"], 13);
  EXPECT_EQ(record["done"], 12);
  EXPECT_EQ(record["failed"], 1);
  EXPECT_EQ(FilesUnder(run.state / "outputs" / "image.thumbnail").size(), 12u);
  ExpectStackStopped(run);
  std::filesystem::remove_all(run.state);
}

TEST(Samples, PluginFunctionsAnswerInvoke) {
  // The plugin this build made, wherever the build directory is.
  const auto run = RunSample("plugin", {{"RUNNEL_TEXT_TOOLS", RUNNEL_TEXT_TOOLS_PLUGIN}});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("HELLO FROM A PLUGIN"));
  EXPECT_THAT(run.out, ::testing::ContainsRegex("\"words\": ?8"));  // 9 words, "a" is under min_length 2
  ExpectStackStopped(run);
  std::filesystem::remove_all(run.state);
}

TEST(Samples, PythonFunctionAnswersAndDeadLettersBadInput) {
  const auto run = RunSample("exec-python");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, ::testing::ContainsRegex("\"fahrenheit\": ?70.7"));
  EXPECT_THAT(run.out, HasSubstr("not JSON"));  // the dead letter's reason, listed by runnel dlq
  ExpectStackStopped(run);
  std::filesystem::remove_all(run.state);
}

// The README's first command ends with `runnel demo`; CI runs its short mode.
TEST(Samples, ACurveClientInPythonReadsTheResultsFeed) {
  const auto run = RunSample("clients");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, ::testing::ContainsRegex("echo [0-9A-Z]{26} ok hello over curve"));
  EXPECT_THAT(run.out, ::testing::ContainsRegex("echo [0-9A-Z]{26} ok and again"));
  ExpectStackStopped(run);
  std::filesystem::remove_all(run.state);
}

TEST(Demo, ShortModeShowsOutcomesScalingAndOutputsThenStops) {
  const auto state = TempDir("demo");
  const auto run = RunCommand({RunnelBin(), "demo", "--short", "--samples",
                               (SourceDir() / "samples/data").string(), "--state-dir", state.string()},
                              std::chrono::seconds(120));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("Uploaded 4 image(s) and 1 video(s)"));
  EXPECT_THAT(run.out, HasSubstr("bad-input: not a recognised image"));  // corrupt.jpg
  EXPECT_THAT(run.out, HasSubstr("240 readings accepted, 3 rejected"));  // readings.ndjson
  EXPECT_THAT(run.out, ::testing::ContainsRegex("contact sheet [0-9]+x[0-9]+"));
  EXPECT_THAT(run.out, HasSubstr("every reading has its outcome and every function is back to zero workers"));
  // During the stream iot.ingest ran at least one worker; at the end none.
  EXPECT_THAT(run.out, ::testing::ContainsRegex("workers [1-4] running"));
  EXPECT_EQ(FilesUnder(state / "outputs" / "image.thumbnail").size(), 6u);  // 3 images x 2 sizes
  EXPECT_EQ(FilesUnder(state / "outputs" / "video.thumbnails", "contact.jpg").size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(state / "endpoints.json")) << "the demo left a stack behind";
  std::filesystem::remove_all(state);
}

// A secret in runnel.yaml comes from the environment, reaches librdkafka (debug logs show the option
// applied) and is masked wherever it is logged.
TEST(ConfigEnvironment, SecretFromTheEnvironmentIsAppliedAndMasked) {
  const std::string secret = "pa55-from-env-7f3a";
  StackProcess stack(
      "kafka:\n  options:\n    sasl.password: ${RUNNEL_E2E_SECRET}\n"
      "functions:\n  - name: echo\n    results_topic: echo.results\n",
      {{"RUNNEL_E2E_SECRET", secret}, {"RUNNEL_LOG", "info,kafka=debug"}});
  // The stack serves: an event gets its outcome.
  const auto ids = PublishEvents(stack.Kafka(), "echo", {{"hello", std::nullopt}});
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", 1, std::chrono::seconds(30));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].id, ids[0]);
  const std::string logs = stack.Process().Stdout() + stack.Process().Stderr();
  EXPECT_THAT(logs, HasSubstr("sasl.password=***"));
  EXPECT_THAT(logs, Not(HasSubstr(secret)));
}

TEST(ConfigEnvironment, AnUnsetVariableStopsConfigCheckWithFileLineAndKey) {
  const auto dir = TempDir("config-env");
  const auto file = dir / "runnel.yaml";
  std::ofstream(file) << "functions:\n  - name: echo\n    topic: ${RUNNEL_E2E_UNSET_TOPIC}\n";
  const auto run =
      RunCommand({"env", "-u", "RUNNEL_E2E_UNSET_TOPIC", RunnelBin(), "config", "check", file.string()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.err,
            "runnel: " + file.string() +
                ":3: functions[0].topic: ${RUNNEL_E2E_UNSET_TOPIC} is not set (set it, or give a default: "
                "${RUNNEL_E2E_UNSET_TOPIC:-value})\n");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
