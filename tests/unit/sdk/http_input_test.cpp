// Context::ReadInput on http:// references, against a real HTTP server (civetweb) on 127.0.0.1.
#include <civetweb.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

#include "runnel/functions/function.hpp"

namespace runnel::functions {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// Bytes of every value, so a lost or reordered chunk shows.
std::string Body(std::size_t size) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return body;
}

// A civetweb server with one handler per path. The "held" paths answer in part (or not at all)
// and then wait until the server is destroyed, so a client can only end them by giving up.
class TestServer {
 public:
  TestServer() {
    const char* options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "8", nullptr};
    ctx_ = mg_start(nullptr, nullptr, options);
    if (ctx_ == nullptr) throw std::runtime_error("civetweb did not start");
    mg_server_port ports[1] = {};
    if (mg_get_server_ports(ctx_, 1, ports) != 1) throw std::runtime_error("civetweb has no port");
    port_ = ports[0].port;
    mg_set_request_handler(ctx_, "/", &TestServer::Handle, this);
  }
  ~TestServer() {
    {
      const std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    mg_stop(ctx_);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::string Url(const std::string& path_and_query) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path_and_query;
  }
  std::string Shown(const std::string& path) const { return "GET " + Url(path); }

  static inline const std::string kImage = Body(300'000);

 private:
  static int Handle(mg_connection* conn, void* self) {
    return static_cast<TestServer*>(self)->Serve(conn, mg_get_request_info(conn)->local_uri);
  }

  void Hold() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 60s, [this] { return released_; });
  }

  int Serve(mg_connection* conn, const std::string& path) {
    if (path == "/x.jpg") {
      mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n",
                kImage.size());
      mg_write(conn, kImage.data(), kImage.size());
      return 200;
    }
    if (path == "/missing") {
      mg_printf(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
      return 404;
    }
    if (path == "/unavailable") {
      mg_printf(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
      return 503;
    }
    if (path == "/once") return Redirect(conn, "/x.jpg");
    if (path == "/loop") return Redirect(conn, "/loop");
    if (path == "/to-ftp") return Redirect(conn, "ftp://127.0.0.1/x.jpg");
    if (path == "/to-file") return Redirect(conn, "file:///etc/passwd");
    if (path == "/slow") {  // accepts the request and never answers
      Hold();
      return 200;
    }
    if (path == "/announced-big") {  // says 10 MiB, sends 1 KiB, then stalls
      mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n");
      const std::string part = Body(1024);
      mg_write(conn, part.data(), part.size());
      Hold();
      return 200;
    }
    if (path == "/streamed-big") {  // no length: 256 KiB, then stalls with the connection open
      mg_printf(conn, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
      const std::string part = Body(256 * 1024);
      mg_write(conn, part.data(), part.size());
      Hold();
      return 200;
    }
    mg_printf(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    return 500;
  }

  static int Redirect(mg_connection* conn, const char* location) {
    mg_printf(conn, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n", location);
    return 302;
  }

  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

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

TEST_F(HttpInput, FetchesTheBodyWithinTheLimit) {
  EXPECT_EQ(Context::ReadInput(UrlEvent(server_.Url("/x.jpg")), TestServer::kImage.size()),
            TestServer::kImage);
  // A query (as a presigned URL has) goes to the server; one redirect is followed.
  EXPECT_EQ(Context::ReadInput(UrlEvent(server_.Url("/x.jpg?X-Amz-Signature=abc")), 1 << 20),
            TestServer::kImage);
  EXPECT_EQ(Context::ReadInput(UrlEvent(server_.Url("/once")), 1 << 20), TestServer::kImage);
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
