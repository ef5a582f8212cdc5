// Outputs stored by HTTP PUT (runnel.yaml's `outputs.url`, docs/config.md#outputs) through a real
// stack: `runnel up` on the embedded broker, a real worker, and a civetweb server in this test on
// 127.0.0.1 that records each PUT and serves it back, as an object store would.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "test_http_server.hpp"  // tests/unit/sdk: the civetweb server the SDK tests use

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using TestServer = functions::testing::TestServer;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every log file of the stack's workers, and the stack's own stdout and stderr.
std::string AllLogs(StackProcess& stack) {
  std::string all = stack.Process().Stdout() + stack.Process().Stderr();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(stack.StateDir() / "logs", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) all += ReadFile(it->path());
  }
  return all;
}

TEST(OutputsUrl, ThumbnailsArriveByPutFeedTheNextFunctionByUrlAndA500FailsTheEventUntilDeadLettered) {
  TestServer server;
  StackProcess stack(fmt::format(R"(
outputs:
  url: {}
  headers: {{Authorization: "Bearer e2e-s3cr3t"}}
  timeout: 10s
functions:
  - name: image.thumbnail
    results_topic: thumbs.results
    retries: {{max_attempts: 2, backoff: 50ms}}
    params: {{sizes: [{{width: 64, height: 64}}, {{width: 32, height: 32}}]}}
    next: image.metadata
  - name: image.metadata
    results_topic: meta.results
)",
                                 server.Url("/bucket/runnel/")),
                     {{"no_proxy", "127.0.0.1"}, {"NO_PROXY", "127.0.0.1"}, {"RUNNEL_LOG", "debug"}});
  kafka::Producer producer(stack.Kafka());
  const auto publish = [&](const std::string& id) {
    Envelope env;
    env.id = id;
    env.file = FileRef{(SourceDir() / "samples/data/landscape.jpg").string(), std::nullopt, "landscape.jpg"};
    producer.ProduceSync({"image.thumbnail", kafka::kAnyPartition, std::nullopt, "", env.Encode()});
  };
  const std::string stored = NewEventId();
  const std::string refused = "fail500-" + NewEventId();  // the server answers 500 to its PUTs
  publish(stored);
  publish(refused);

  const auto outcomes = ReadOutcomes(stack.Kafka(), "thumbs.results", 2, std::chrono::seconds(90));
  ASSERT_EQ(outcomes.size(), 2u);
  std::map<std::string, Outcome> by_id;
  for (const auto& o : outcomes) by_id[o.id] = o;
  ASSERT_EQ(by_id.size(), 2u);

  // Stored: both thumbnails PUT to <url>/<function>/<event id>/<name>, and the outcome says so.
  const Outcome& ok = by_id.at(stored);
  ASSERT_EQ(ok.status, OutcomeStatus::kOk) << ok.error;
  const auto files = nlohmann::json::parse(ok.files_json.empty() ? "[]" : ok.files_json);
  ASSERT_EQ(files.size(), 2u) << ok.files_json;
  const auto puts = server.Puts();
  for (const auto& f : files) {
    const std::string name = f.value("name", "");
    const std::string path = fmt::format("/bucket/runnel/image.thumbnail/{}/{}", stored, name);
    EXPECT_EQ(f.value("stored", ""), "url") << f.dump();
    EXPECT_EQ(f.value("url", ""), server.Url(path)) << f.dump();
    EXPECT_FALSE(f.contains("path")) << "the local file was removed: " << f.dump();
    std::vector<TestServer::Put> to_path;
    for (const auto& p : puts) {
      if (p.path == path) to_path.push_back(p);
    }
    ASSERT_EQ(to_path.size(), 1u) << path;
    EXPECT_EQ(to_path[0].body.size(), f.value("bytes", std::uint64_t{0})) << path;
    ASSERT_GE(to_path[0].body.size(), 2u);
    EXPECT_EQ(to_path[0].body.substr(0, 2), "\xff\xd8") << "a JPEG";
    EXPECT_EQ(to_path[0].headers["Authorization"], "Bearer e2e-s3cr3t");
    EXPECT_EQ(to_path[0].headers["Content-Type"], "image/jpeg");
  }
  EXPECT_FALSE(std::filesystem::exists(stack.StateDir() / "outputs" / "image.thumbnail" / stored))
      << "files stored by PUT leave nothing in output_dir";

  // Refused: a transient error naming the URL and the status, retried, then dead-lettered.
  const Outcome& failed = by_id.at(refused);
  EXPECT_EQ(failed.status, OutcomeStatus::kDeadLetter);
  EXPECT_EQ(failed.error_kind, "transient");
  EXPECT_EQ(failed.attempts, 2) << "retried per the function's retries";
  EXPECT_THAT(failed.error,
              HasSubstr("PUT " + server.Url("/bucket/runnel/image.thumbnail/" + refused + "/")));
  EXPECT_THAT(failed.error, HasSubstr(": HTTP 500"));
  EXPECT_THAT(failed.error, Not(HasSubstr("s3cr3t")));
  int attempts_seen = 0;
  for (const auto& p : puts) {
    if (p.path.find(refused) != std::string::npos) {
      EXPECT_EQ(p.status, 500);
      ++attempts_seen;
    }
  }
  EXPECT_EQ(attempts_seen, 2) << "one PUT per attempt: the first file's, which failed it";
  const auto dead = ReadRecords(stack.Kafka(), "image.thumbnail.dlq", 1, std::chrono::seconds(30));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_THAT(HeaderValue(dead[0], "runnel-error"), HasSubstr(": HTTP 500"));
  EXPECT_EQ(HeaderValue(dead[0], "runnel-error-kind"), "transient");

  // The pipeline passes each stored thumbnail on by its URL: image.metadata fetches it from there.
  const auto meta = ReadOutcomes(stack.Kafka(), "meta.results", 2, std::chrono::seconds(60));
  ASSERT_EQ(meta.size(), 2u);
  std::multiset<int> widths;
  for (const auto& m : meta) {
    ASSERT_EQ(m.status, OutcomeStatus::kOk) << m.error;
    widths.insert(nlohmann::json::parse(m.output).value("width", 0));
  }
  EXPECT_EQ(widths, (std::multiset<int>{32, 64})) << "each thumbnail fetched from the store";

  const std::string logs = AllLogs(stack);
  EXPECT_THAT(logs, HasSubstr("outputs PUT to " + server.Url("/bucket/runnel") + " (1 header(s))"))
      << "the worker says where its outputs go";
  EXPECT_THAT(logs, HasSubstr("outputs: PUT to " + server.Url("/bucket/runnel") + " (written to "))
      << "and so does runnel up";
  EXPECT_THAT(logs, Not(HasSubstr("e2e-s3cr3t"))) << "a header's value never reaches a log";
}

// `runnel config check` says where outputs go, with header names only; a bad URL stops it with
// its line, as `runnel up` would.
TEST(OutputsUrl, ConfigCheckShowsTheTargetButNoHeaderValueAndRefusesABadUrl) {
  const auto dir = TempDir("outputs-config");
  const auto good = dir / "good.yaml";
  std::ofstream(good)
      << "outputs:\n  url: http://store:9000/b/\n  headers: {Authorization: \"Bearer cfg-s3cr3t\"}\n"
         "functions:\n  - name: image.thumbnail\n";
  const auto ok = RunCommand({RunnelBin(), "config", "check", good.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out,
              HasSubstr("outputs: PUT to http://store:9000/b (headers: Authorization; timeout 30000 ms)"));
  EXPECT_THAT(ok.out + ok.err, Not(HasSubstr("cfg-s3cr3t")));
  const auto bad = dir / "bad.yaml";
  std::ofstream(bad) << "functions:\n  - name: echo\noutputs:\n  url: ftp://store/b\n";
  const auto refused = RunCommand({RunnelBin(), "config", "check", bad.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err,
              HasSubstr(bad.string() + ":4: outputs.url: 'ftp://store/b' is not an http:// or https:// URL"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
