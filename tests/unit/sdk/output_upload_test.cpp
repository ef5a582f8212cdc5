// functions::UploadOutputs (runnel.yaml's outputs.url) against a civetweb server on 127.0.0.1 that
// records PUTs: what arrives, what the file entries say afterwards, and each way a PUT fails.
#include "runnel/functions/output_upload.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "runnel/functions/function.hpp"
#include "test_http_server.hpp"

namespace runnel::functions {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using testing::Body;
using testing::TestServer;
using Clock = std::chrono::steady_clock;

class OutputUpload : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::setenv("no_proxy", "127.0.0.1", 1);
    ::setenv("NO_PROXY", "127.0.0.1", 1);
    server = new TestServer();
  }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "runnel-upload-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // An output the way OutputStore lays it out: <root>/<function>/<event id>/<name>.
  OutputFile Output(const std::string& event_id, const std::string& name, const std::string& bytes) {
    OutputStore store(root_);
    return store.Write("image.thumbnail", event_id, name, bytes, {{"width", 128}});
  }
  OutputTarget Target(const std::string& base) const {
    return OutputTarget{server->Url(base), {{"Authorization", Secret("Bearer s3cr3t")}}, 10s};
  }
  static std::vector<TestServer::Put> PutsTo(const std::string& path) {
    std::vector<TestServer::Put> found;
    for (auto& put : server->Puts()) {
      if (put.path == path) found.push_back(put);
    }
    return found;
  }

  static inline TestServer* server = nullptr;
  std::filesystem::path root_;
};

TEST(OutputUrl, EscapesEachSegment) {
  const OutputTarget target{"http://store:9000/bucket/runnel", {}, 30s};
  EXPECT_EQ(OutputUrl(target, "image.thumbnail", "topic-0-17", "thumb-128.jpg"),
            "http://store:9000/bucket/runnel/image.thumbnail/topic-0-17/thumb-128.jpg");
  EXPECT_EQ(OutputUrl(target, "f", "up:1", "holiday photo #1%.jpg"),
            "http://store:9000/bucket/runnel/f/up%3A1/holiday%20photo%20%231%25.jpg");
}

TEST_F(OutputUpload, EachFileIsPutWholeWithItsHeadersThenRemovedLocally) {
  // Larger than any one read of the body, so the stream must be put together in order.
  const std::string big = Body(std::size_t{3} * 1024 * 1024 + 17);
  std::vector<OutputFile> files = {Output("ev-1", "thumb-128.jpg", "small jpeg"),
                                   Output("ev-1", "frames.bin", big)};
  const auto dir = std::filesystem::path(files[0].path).parent_path();
  UploadOutputs(Target("/bucket/runnel"), "image.thumbnail", "ev-1", files, Clock::now() + 20s);

  const auto small_put = PutsTo("/bucket/runnel/image.thumbnail/ev-1/thumb-128.jpg");
  ASSERT_EQ(small_put.size(), 1u);
  EXPECT_EQ(small_put[0].body, "small jpeg");
  EXPECT_EQ(small_put[0].headers.at("Authorization"), "Bearer s3cr3t");
  EXPECT_EQ(small_put[0].headers.at("Content-Type"), "image/jpeg");
  const auto big_put = PutsTo("/bucket/runnel/image.thumbnail/ev-1/frames.bin");
  ASSERT_EQ(big_put.size(), 1u);
  EXPECT_EQ(big_put[0].body.size(), big.size());
  EXPECT_TRUE(big_put[0].body == big) << "the body arrived changed";
  EXPECT_EQ(big_put[0].headers.at("Content-Length"), std::to_string(big.size()));

  EXPECT_EQ(files[0].url, server->Url("/bucket/runnel/image.thumbnail/ev-1/thumb-128.jpg"));
  EXPECT_EQ(files[1].url, server->Url("/bucket/runnel/image.thumbnail/ev-1/frames.bin"));
  EXPECT_EQ(files[0].bytes, 10u);
  EXPECT_EQ(files[0].facts.value("width", 0), 128) << "the facts stay";
  EXPECT_FALSE(std::filesystem::exists(files[0].path)) << "a file PUT is removed from output_dir";
  EXPECT_FALSE(std::filesystem::exists(files[1].path));
  EXPECT_FALSE(std::filesystem::exists(dir)) << "and its event directory, once empty";
}

TEST_F(OutputUpload, A500IsTransientAndNamesTheUrlAndStatusAndTheFileStays) {
  std::vector<OutputFile> files = {Output("ev-2", "thumb.jpg", "jpeg")};
  try {
    UploadOutputs(Target("/fail500/b"), "image.thumbnail", "ev-2", files, Clock::now() + 20s);
    FAIL() << "no error";
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kTransient);
    EXPECT_TRUE(e.Retriable());
    EXPECT_EQ(std::string(e.what()),
              "PUT " + server->Url("/fail500/b/image.thumbnail/ev-2/thumb.jpg") + ": HTTP 500");
    EXPECT_THAT(e.what(), Not(HasSubstr("s3cr3t")));
  }
  EXPECT_EQ(PutsTo("/fail500/b/image.thumbnail/ev-2/thumb.jpg").size(), 1u) << "the server saw it";
  EXPECT_TRUE(files[0].url.empty());
  EXPECT_TRUE(std::filesystem::exists(files[0].path)) << "a file that was not stored stays where it is";
}

TEST_F(OutputUpload, AStalledPutTimesOutAndNoTimeLeftFailsAtOnce) {
  std::vector<OutputFile> files = {Output("ev-3", "thumb.jpg", "jpeg")};
  OutputTarget target = Target("/stall/b");
  target.timeout = 300ms;
  try {
    UploadOutputs(target, "image.thumbnail", "ev-3", files, Clock::now() + 20s);
    FAIL() << "no error";
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kTransient);
    EXPECT_EQ(std::string(e.what()),
              "PUT " + server->Url("/stall/b/image.thumbnail/ev-3/thumb.jpg") + ": timed out after 300 ms");
  }
  try {
    UploadOutputs(Target("/b"), "image.thumbnail", "ev-3", files, Clock::now() - 1ms);
    FAIL() << "no error";
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kTransient);
    EXPECT_THAT(e.what(), HasSubstr("no time left before the event's deadline"));
  }
  EXPECT_TRUE(PutsTo("/b/image.thumbnail/ev-3/thumb.jpg").empty());
}

TEST_F(OutputUpload, ARefusedConnectionIsTransientAndNamesTheUrl) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  const std::string base = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/b";
  std::vector<OutputFile> files = {Output("ev-4", "thumb.jpg", "jpeg")};
  try {
    UploadOutputs(OutputTarget{base, {}, 5s}, "image.thumbnail", "ev-4", files, Clock::time_point::max());
    FAIL() << "no error";
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kTransient);
    EXPECT_THAT(e.what(), HasSubstr("PUT " + base + "/image.thumbnail/ev-4/thumb.jpg: "));
  }
  EXPECT_TRUE(std::filesystem::exists(files[0].path));
}

}  // namespace
}  // namespace runnel::functions
