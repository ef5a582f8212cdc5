// Inputs by reference through a real stack: `runnel up` on the embedded broker, a real worker, and
// an http:// reference served by a civetweb server in this test on 127.0.0.1 (docs/protocol.md §1.2).
#include <civetweb.h>
#include <gmock/gmock.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Serves fixed bodies by path; any other path is a 404.
class FileServer {
 public:
  explicit FileServer(std::map<std::string, std::string> bodies) : bodies_(std::move(bodies)) {
    const char* options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "4", nullptr};
    ctx_ = mg_start(nullptr, nullptr, options);
    if (ctx_ == nullptr) throw std::runtime_error("civetweb did not start");
    mg_server_port ports[1] = {};
    if (mg_get_server_ports(ctx_, 1, ports) != 1) throw std::runtime_error("civetweb has no port");
    port_ = ports[0].port;
    mg_set_request_handler(ctx_, "/", &FileServer::Handle, this);
  }
  ~FileServer() { mg_stop(ctx_); }
  FileServer(const FileServer&) = delete;
  FileServer& operator=(const FileServer&) = delete;

  std::string Url(const std::string& path_and_query) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path_and_query;
  }

 private:
  static int Handle(mg_connection* conn, void* self) {
    const auto& bodies = static_cast<FileServer*>(self)->bodies_;
    const auto it = bodies.find(mg_get_request_info(conn)->local_uri);
    if (it == bodies.end()) {
      mg_printf(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      return 404;
    }
    mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", it->second.size());
    mg_write(conn, it->second.data(), it->second.size());
    return 200;
  }

  std::map<std::string, std::string> bodies_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(UrlInputs, AnHttpReferenceRunsAndA404AndAMissingFileFailAtOnceWithTheirReasons) {
  FileServer server({{"/x.jpg", ReadFile(SourceDir() / "samples/data/landscape.jpg")}});
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
      publish(FileRef{{}, std::nullopt, "gone.jpg", server.Url("/gone.jpg?sig=s3cr3t")});
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
  EXPECT_THAT(not_found.error, HasSubstr("GET " + server.Url("/gone.jpg") + ": HTTP 404"));
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
