// Inputs by reference through a real stack: `runnel up` on the embedded broker, a real worker, and
// an http:// reference served by a civetweb server in this test on 127.0.0.1 (docs/protocol.md §1.2).
#include <gmock/gmock.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "test_http_server.hpp"  // tests/unit/sdk: the civetweb server the SDK tests use

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(UrlInputs, AnHttpReferenceRunsAndA404AndAMissingFileFailAtOnceWithTheirReasons) {
  functions::testing::TestServer server({{"/x.jpg", ReadFile(SourceDir() / "samples/data/landscape.jpg")}});
  StackProcess stack(R"(
functions:
  - name: image.metadata
    results_topic: meta.results
)",
                     {{"no_proxy", "127.0.0.1"}, {"NO_PROXY", "127.0.0.1"}});
  kafka::Producer producer(stack.Kafka());
  const auto publish = [&](FileRef file) {
    Envelope env;
    env.id = NewEventId();
    env.file = std::move(file);
    producer.ProduceSync({"image.metadata", kafka::kAnyPartition, std::nullopt, "", env.Encode()});
    return env.id;
  };
  const std::string fetched =
      publish(FileRef{{}, std::nullopt, "x.jpg", server.Url("/x.jpg?X-Amz-Signature=s3cr3t")});
  const std::string missing =
      publish(FileRef{{}, std::nullopt, "gone.jpg", server.Url("/missing?sig=s3cr3t")});
  const std::string elsewhere =
      publish(FileRef{"/nonexistent/runnel-e2e/photo.jpg", std::nullopt, "photo.jpg"});

  const auto outcomes = ReadOutcomes(stack.Kafka(), "meta.results", 3, std::chrono::seconds(60));
  ASSERT_EQ(outcomes.size(), 3u);
  std::map<std::string, Outcome> by_id;
  for (const auto& o : outcomes) by_id[o.id] = o;
  ASSERT_EQ(by_id.size(), 3u);

  const Outcome& ok = by_id.at(fetched);
  ASSERT_EQ(ok.status, OutcomeStatus::kOk) << ok.error;
  EXPECT_GT(nlohmann::json::parse(ok.output).value("width", 0), 0);

  const Outcome& not_found = by_id.at(missing);
  EXPECT_EQ(not_found.status, OutcomeStatus::kError);
  EXPECT_EQ(not_found.error_kind, "bad-input");
  EXPECT_EQ(not_found.attempts, 1) << "a 404 is permanent";
  EXPECT_THAT(not_found.error, HasSubstr("GET " + server.Url("/missing") + ": HTTP 404"));
  EXPECT_THAT(not_found.error, Not(HasSubstr("s3cr3t")));

  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  const Outcome& gone = by_id.at(elsewhere);
  EXPECT_EQ(gone.status, OutcomeStatus::kError);
  EXPECT_EQ(gone.error_kind, "bad-input");
  EXPECT_THAT(gone.error,
              HasSubstr("cannot open input file /nonexistent/runnel-e2e/photo.jpg: No such file or "
                        "directory (the file must be on this worker's host, " +
                        std::string(host)));
}

}  // namespace
}  // namespace runnel::testing
