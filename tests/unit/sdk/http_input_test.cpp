// Context::ReadInput on http:// references, against a real HTTP server (civetweb) on 127.0.0.1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/fiber/all.hpp>
#include <chrono>
#include <string>

#include "runnel/functions/function.hpp"
#include "test_http_server.hpp"

namespace runnel::functions {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using testing::TestServer;

Event UrlEvent(const std::string& url) {
  Event e;
  e.envelope.id = "e1";
  e.envelope.file = FileRef{{}, std::nullopt, "x.jpg", url};
  return e;
}

// The error ReadInput throws; fails the test when it returns instead.
FunctionError ReadError(const std::string& url, std::size_t max_bytes,
                        std::chrono::steady_clock::duration budget = 20s) {
  try {
    const std::string got =
        Context::ReadInput(UrlEvent(url), max_bytes, std::chrono::steady_clock::now() + budget);
    ADD_FAILURE() << "read " << got.size() << " bytes without error from " << url;
  } catch (const FunctionError& e) {
    return e;
  }
  return FunctionError(Errc::kInternal, "no error");
}

// One server for the suite (civetweb takes a second or two to stop).
class HttpInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // A proxy from the environment would take requests for 127.0.0.1 elsewhere.
    ::setenv("no_proxy", "127.0.0.1", 1);
    ::setenv("NO_PROXY", "127.0.0.1", 1);
    server = new TestServer();
  }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }
  static inline TestServer* server = nullptr;
  TestServer& server_ = *server;
};

// The bytes are the image's (the first bytes shown when not, never all 300 KB).
::testing::AssertionResult IsTheImage(const std::string& got) {
  if (got == TestServer::kImage) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << got.size() << " bytes, not the image's " << TestServer::kImage.size()
         << "; they start with: " << got.substr(0, 120);
}

TEST_F(HttpInput, FetchesTheBodyWithinTheLimit) {
  EXPECT_TRUE(IsTheImage(Context::ReadInput(UrlEvent(server_.Url("/x.jpg")), TestServer::kImage.size())));
  // A query (as a presigned URL has) goes to the server; one redirect is followed.
  EXPECT_TRUE(IsTheImage(Context::ReadInput(UrlEvent(server_.Url("/x.jpg?X-Amz-Signature=abc")), 1 << 20)));
  EXPECT_TRUE(IsTheImage(Context::ReadInput(UrlEvent(server_.Url("/once")), 1 << 20)));
}

// The fetch waits on a helper thread: a second fiber on the same thread must run while the
// transfer waits for it (it opens the server's gate).
TEST_F(HttpInput, TheFibersThreadKeepsRunningWhileTheFetchWaits) {
  std::string got;
  boost::fibers::fiber caller([&] {
    try {
      got =
          Context::ReadInput(UrlEvent(server_.Url("/gate")), 1 << 20, std::chrono::steady_clock::now() + 3s);
    } catch (const FunctionError& e) {
      got = e.what();  // a fetch that blocked the thread times out, the opener never ran
    }
  });
  boost::fibers::fiber opener([&] { server_.OpenGate(); });
  opener.join();
  caller.join();
  EXPECT_TRUE(IsTheImage(got));
}

TEST_F(HttpInput, A404IsBadInputWithTheStatusAndNoQuery) {
  const FunctionError e = ReadError(server_.Url("/missing?X-Amz-Signature=secret"), 1 << 20);
  EXPECT_EQ(e.Code(), Errc::kBadInput);
  EXPECT_FALSE(e.Retriable());
  EXPECT_EQ(std::string(e.what()), server_.Shown("/missing") + ": HTTP 404");
  EXPECT_THAT(e.what(), Not(HasSubstr("secret")));
}

TEST_F(HttpInput, A5xxIsTransientSoTheEventIsRetried) {
  const FunctionError e = ReadError(server_.Url("/unavailable"), 1 << 20);
  EXPECT_EQ(e.Code(), Errc::kTransient);
  EXPECT_TRUE(e.Retriable());
  EXPECT_EQ(std::string(e.what()), server_.Shown("/unavailable") + ": HTTP 503");
}

TEST_F(HttpInput, ASlowServerTimesOutWithinTheDeadline) {
  const auto start = std::chrono::steady_clock::now();
  const FunctionError e = ReadError(server_.Url("/slow?sig=secret"), 1 << 20, 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(e.Code(), Errc::kTransient);
  EXPECT_THAT(e.what(), HasSubstr(server_.Shown("/slow") + ": timed out after "));
  EXPECT_THAT(e.what(), Not(HasSubstr("secret")));
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 10s);  // bounded by the deadline, not by the server
}

TEST_F(HttpInput, AnAnnouncedOversizeBodyIsRefusedBeforeItArrives) {
  // The server stalls after 1 KiB of its 10 MiB: only a check of Content-Length ends this in time.
  const FunctionError e = ReadError(server_.Url("/announced-big"), 100'000);
  EXPECT_EQ(e.Code(), Errc::kLimitExceeded);
  EXPECT_EQ(std::string(e.what()),
            server_.Shown("/announced-big") + ": its Content-Length is over the limit of 100000 bytes");
}

TEST_F(HttpInput, AStreamedOversizeBodyIsCutAtTheLimit) {
  // No Content-Length and a stall after 256 KiB: only counting while streaming ends this in time.
  const FunctionError e = ReadError(server_.Url("/streamed-big"), 100'000);
  EXPECT_EQ(e.Code(), Errc::kLimitExceeded);
  EXPECT_EQ(std::string(e.what()),
            server_.Shown("/streamed-big") + ": the body is over the limit of 100000 bytes");
}

TEST_F(HttpInput, ARedirectLoopEndsAfterFiveRedirects) {
  const FunctionError e = ReadError(server_.Url("/loop"), 1 << 20);
  EXPECT_EQ(e.Code(), Errc::kBadInput);
  EXPECT_EQ(std::string(e.what()), server_.Shown("/loop") + ": more than 5 redirects");
}

TEST_F(HttpInput, ARedirectToAnotherSchemeIsRefused) {
  for (const std::string path : {"/to-ftp", "/to-file"}) {
    const FunctionError e = ReadError(server_.Url(path), 1 << 20);
    EXPECT_EQ(e.Code(), Errc::kBadInput) << path;
    EXPECT_EQ(std::string(e.what()),
              server_.Shown(path) + ": redirected to a scheme other than http or https, refused");
  }
}

TEST(HttpInputNoServer, ARefusedConnectionIsTransient) {
  // A port nothing listens on: bound, learnt and closed again.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.jpg";
  const FunctionError e = ReadError(url, 1 << 20);
  EXPECT_EQ(e.Code(), Errc::kTransient);
  EXPECT_THAT(e.what(), HasSubstr("GET " + url + ": "));
}

TEST(ReadInputFile, AMissingFileSaysItMustBeOnThisHost) {
  Event e;
  e.envelope.id = "e1";
  e.envelope.file = FileRef{"/nonexistent/runnel-input.jpg", std::nullopt, {}};
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  try {
    Context::ReadInput(e, 100);
    FAIL();
  } catch (const FunctionError& err) {
    EXPECT_EQ(err.Code(), Errc::kBadInput);
    EXPECT_EQ(
        std::string(err.what()),
        std::string("cannot open input file /nonexistent/runnel-input.jpg: No such file or directory (the "
                    "file must be on this worker's host, ") +
            host + ", or on a volume shared with it)");
  }
}

}  // namespace
}  // namespace runnel::functions
