// The HTTP gateway (gateway/, issue 17) through a real `runnel up` and real workers: every status
// code it answers, each from curl and from Python's urllib (tests/e2e/gateway_client.py); async
// calls and their outcomes; hostile requests (malformed, huge headers, bad file names); 1,000
// concurrent synchronous calls all answered; a 200 MB upload streamed with a bounded RSS; the
// stack's token file private and never logged.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "runnel/testing/child_process.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kLimitedToken = "limited-token-for-sleep-0123";

// echo with a small max_payload (413), sleep failing on demand (422, 500) or slow (504).
constexpr const char* kYaml = R"(
gateway:
  max_concurrent: 32
  timeout: 20s
  tokens:
    - token: limited-token-for-sleep-0123
      functions: [sleep]
functions:
  - name: echo
    max_payload: 4096
    concurrency: 64
    scaling: {min: 2, max: 2}
  - name: sleep
    concurrency: 64
    retries: {max_attempts: 1}
    scaling: {min: 1, max: 1}
)";

struct Answer {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Request {
  std::string method = "GET";
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
  bool chunked = false;  // curl only: Transfer-Encoding: chunked
};

class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = std::make_unique<StackProcess>(kYaml);
    ASSERT_TRUE(stack_->Endpoints().contains("gateway")) << stack_->Endpoints().dump();
    url_ = stack_->Endpoints().at("gateway").get<std::string>();
    token_file_ = stack_->Endpoints().at("gateway_token_file").get<std::string>();
    std::string token = ReadFile(token_file_);
    while (!token.empty() && token.back() == '\n') token.pop_back();
    token_ = token;
    ASSERT_TRUE(stack_->WaitForWorkers("echo", 2, seconds(30)));
    ASSERT_TRUE(stack_->WaitForWorkers("sleep", 1, seconds(30)));
  }
  static void TearDownTestSuite() { stack_.reset(); }

  static std::pair<std::string, std::string> Bearer(const std::string& token) {
    return {"Authorization", "Bearer " + token};
  }
  static std::pair<std::string, std::string> Auth() { return Bearer(token_); }

  // curl -i: the status line and headers of the final answer (past any 100 Continue), the body.
  static Answer Curl(const Request& r) {
    std::vector<std::string> argv = {"curl",       "-sS", "-i", "--noproxy", "*",
                                     "--max-time", "60",  "-X", r.method};
    for (const auto& [name, value] : r.headers)
      argv.push_back("-H"), argv.push_back(fmt::format("{}: {}", name, value));
    const auto body_file = std::filesystem::temp_directory_path() / fmt::format("gw-body-{}", ::getpid());
    if (r.body) {
      std::ofstream(body_file, std::ios::binary) << *r.body;
      if (r.chunked) argv.push_back("-H"), argv.push_back("Transfer-Encoding: chunked");
      argv.push_back("--data-binary");
      argv.push_back(fmt::format("@{}", body_file.string()));
    }
    argv.push_back(url_ + r.path);
    const auto run = RunCommand(argv, seconds(90));
    std::filesystem::remove(body_file);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return ParseCurl(run.out);
  }

  static Answer ParseCurl(const std::string& out) {
    Answer a;
    std::size_t pos = 0;
    for (;;) {
      const auto end = out.find("\r\n\r\n", pos);
      if (end == std::string::npos) return a;
      std::istringstream head(out.substr(pos, end - pos));
      std::string line;
      std::getline(head, line);
      a.status = std::stoi(line.substr(line.find(' ') + 1, 3));
      a.headers.clear();
      while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        a.headers[Lower(line.substr(0, colon))] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      pos = end + 4;
      if (a.status != 100) break;
    }
    a.body = out.substr(pos);
    return a;
  }

  static Answer Urllib(const Request& r) {
    nlohmann::json spec = {
        {"url", url_ + r.path}, {"method", r.method}, {"headers", nlohmann::json::object()}};
    for (const auto& [name, value] : r.headers) spec["headers"][name] = value;
    if (r.body) spec["body"] = *r.body;
    const auto run = RunCommand(
        {"/usr/bin/python3", (SourceDir() / "tests/e2e/gateway_client.py").string(), "request", spec.dump()},
        seconds(90));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    const auto j = nlohmann::json::parse(run.out, nullptr, false);
    Answer a;
    if (!j.is_object()) return a;
    a.status = j.value("status", 0);
    for (const auto& [name, value] : j.at("headers").items())
      a.headers[Lower(name)] = value.get<std::string>();
    a.body = j.value("body", "");
    return a;
  }

  static nlohmann::json Json(const Answer& a) { return nlohmann::json::parse(a.body, nullptr, false); }

  // The raw bytes `request` gets back from the gateway (it closes every connection).
  static std::string Raw(const std::string& request) {
    const auto colon = url_.rfind(':');
    const int port = std::stoi(url_.substr(colon + 1));
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
      ::shutdown(fd, SHUT_WR);  // the request ends here: a short body is seen as such at once
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
  }

  static inline std::unique_ptr<StackProcess> stack_;
  static inline std::string url_;
  static inline std::string token_;
  static inline std::filesystem::path token_file_;
};

// More headers than civetweb takes (64).
std::vector<std::pair<std::string, std::string>> ManyHeaders(std::pair<std::string, std::string> auth) {
  std::vector<std::pair<std::string, std::string>> h{std::move(auth)};
  for (int i = 0; i < 80; ++i) h.emplace_back(fmt::format("X-Many-{}", i), "v");
  return h;
}

struct Case {
  std::string name;
  Request request;
  int status;
  std::string body_has;                             // a part of the body
  std::pair<std::string, std::string> header = {};  // a header (name lowercased) and a part of its value
  bool curl_only = false;
};

TEST_F(GatewayTest, EachStatusCodeFromCurlAndFromPythonUrllib) {
  const auto auth = Auth();
  const std::string over(5000, 'x');  // echo's max_payload is 4096
  const std::vector<Case> cases = {
      {"sync call",
       {"POST", "/function/echo", {auth, {"Content-Type", "text/plain"}}, "hello gateway"},
       200,
       "hello gateway",
       {"content-type", "text/plain"}},
      {"sync call, key in the query",
       {"POST", "/function/echo?key=k1", {auth}, "keyed"},
       200,
       "keyed",
       {"x-runnel-event-id", ""}},
      {"sync call, key in a header",
       {"POST", "/function/echo", {auth, {"X-Runnel-Key", "k2"}}, "keyed"},
       200,
       "keyed"},
      {"key too long", {"POST", "/function/echo?key=" + std::string(2000, 'k'), {auth}, "x"}, 400, "bad-key"},
      {"async call",
       {"POST", "/async-function/echo", {auth}, "later"},
       202,
       "\"location\"",
       {"location", "/outcomes/"}},
      {"no token", {"POST", "/function/echo", {}, "x"}, 401, "unauthorized", {"www-authenticate", "Bearer"}},
      {"wrong token",
       {"POST", "/function/echo", {Bearer("not-the-token-at-all-0000")}, "x"},
       401,
       "unauthorized"},
      {"not bearer",
       {"POST", "/function/echo", {{"Authorization", "Basic " + token_}}, "x"},
       401,
       "unauthorized"},
      {"limited token, other function",
       {"POST", "/function/echo", {Bearer(kLimitedToken)}, "x"},
       403,
       "may not call 'echo'"},
      {"limited token, its function",
       {"POST", "/function/sleep", {Bearer(kLimitedToken)}, "{\"ms\": 0}"},
       200,
       "\"ms\""},
      {"unknown function", {"POST", "/function/nope", {auth}, "x"}, 404, "unknown-function"},
      {"unknown path", {"GET", "/nothing/here", {auth}, std::nullopt}, 404, "not-found"},
      {"root", {"GET", "/", {auth}, std::nullopt}, 404, "not-found"},
      {"wrong method", {"GET", "/function/echo", {auth}, std::nullopt}, 405, "POST only", {"allow", "POST"}},
      {"wrong method on uploads",
       {"POST", "/uploads/sleep/a.txt", {auth}, "x"},
       405,
       "method-not-allowed",
       {"allow", "PUT"}},
      {"wrong method on outcomes",
       {"DELETE", "/outcomes/abc", {auth}, std::nullopt},
       405,
       "method-not-allowed",
       {"allow", "GET"}},
      {"over max_payload by Content-Length", {"POST", "/function/echo", {auth}, over}, 413, "4096"},
      {"over max_payload, chunked",
       {"POST", "/function/echo", {auth}, over, true},
       413,
       "too-large",
       {},
       true},
      {"refused input",
       {"POST", "/function/sleep", {auth}, R"({"fail": "no such thing", "permanent": true})"},
       422,
       "no such thing"},
      {"failed otherwise", {"POST", "/function/sleep", {auth}, R"({"fail": "boom"})"}, 500, "boom"},
      {"no outcome by the deadline",
       {"POST", "/function/sleep", {auth, {"X-Runnel-Timeout", "300ms"}}, R"({"ms": 3000})"},
       504,
       "no-outcome"},
      {"timeout without a unit",
       {"POST", "/function/echo", {auth, {"X-Runnel-Timeout", "10"}}, "x"},
       400,
       "bad-timeout"},
      {"timeout not a duration",
       {"POST", "/function/echo", {auth, {"X-Runnel-Timeout", "soon"}}, "x"},
       400,
       "bad-timeout"},
      {"timeout over max_timeout",
       {"POST", "/function/echo", {auth, {"X-Runnel-Timeout", "2h"}}, "x"},
       400,
       "max_timeout"},
      {"outcome not there",
       {"GET", "/outcomes/01NOSUCHEVENT0000000000000", {auth}, std::nullopt},
       404,
       "no-outcome"},
      {"bad event id", {"GET", "/outcomes/bad%20id", {auth}, std::nullopt}, 400, "bad-id"},
      {"file name with a slash", {"PUT", "/uploads/sleep/a%2Fb", {auth}, "x"}, 400, "bad-file-name"},
      {"file name with a control character",
       {"PUT", "/uploads/sleep/a%01b", {auth}, "x"},
       400,
       "bad-file-name"},
      {"file name too long",
       {"PUT", "/uploads/sleep/" + std::string(300, 'n'), {auth}, "x"},
       400,
       "bad-file-name"},
      {"upload to an unknown function", {"PUT", "/uploads/nope/a.txt", {auth}, "x"}, 404, "unknown-function"},
      {"huge header",
       {"POST", "/function/echo", {auth, {"X-Filler", std::string(20'000, 'h')}}, "x"},
       431,
       "headers-too-large"},
      {"too many headers", {"POST", "/function/echo", ManyHeaders(auth), "x"}, 431, "at most 63"},
  };
  for (const auto& c : cases) {
    for (const bool curl : {true, false}) {
      if (!curl && c.curl_only) continue;
      SCOPED_TRACE(fmt::format("{} ({})", c.name, curl ? "curl" : "urllib"));
      const Answer a = curl ? Curl(c.request) : Urllib(c.request);
      EXPECT_EQ(a.status, c.status) << a.body;
      EXPECT_THAT(a.body, HasSubstr(c.body_has));
      if (!c.header.first.empty()) {
        ASSERT_TRUE(a.headers.contains(c.header.first)) << c.header.first;
        EXPECT_THAT(a.headers.at(c.header.first), HasSubstr(c.header.second));
      }
      if (a.status >= 400) {  // every error is JSON naming its kind
        EXPECT_THAT(a.headers.contains("content-type") ? a.headers.at("content-type") : "",
                    HasSubstr("application/json"));
        EXPECT_TRUE(Json(a).contains("error")) << a.body;
      }
    }
  }
}

TEST_F(GatewayTest, RefusedInputSaysItsReasonAsJson) {
  const Answer a =
      Curl({"POST", "/function/sleep", {Auth()}, R"({"fail": "not a number", "permanent": true})"});
  ASSERT_EQ(a.status, 422) << a.body;
  const auto j = Json(a);
  EXPECT_EQ(j.value("error", ""), "bad-input");
  EXPECT_EQ(j.value("reason", ""), "not a number");
  ASSERT_TRUE(a.headers.contains("x-runnel-event-id"));
  EXPECT_EQ(j.value("id", ""), a.headers.at("x-runnel-event-id"));
}

constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";

TEST_F(GatewayTest, AnAsyncCallsOutcomeIsThereOnceItRan) {
  for (const bool curl : {true, false}) {
    SCOPED_TRACE(curl ? "curl" : "urllib");
    // The Kafka key from X-Runnel-Key (curl) or ?key= (urllib) reaches the record.
    const std::string key = curl ? "key-from-header" : "key from query";
    const Request post =
        curl ? Request{"POST",
                       "/async-function/echo",
                       {Auth(),
                        {"Content-Type", "text/plain"},
                        {"X-Runnel-Key", key},
                        {"traceparent", std::string("00-") + kTrace + "-00f067aa0ba902b7-01"}},
                       "async payload"}
             : Request{"POST",
                       "/async-function/echo?key=key%20from%20query",
                       {Auth(), {"Content-Type", "text/plain"}},
                       "async payload"};
    const Answer accepted = curl ? Curl(post) : Urllib(post);
    ASSERT_EQ(accepted.status, 202) << accepted.body;
    const std::string id = Json(accepted).value("id", "");
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(accepted.headers.at("location"), "/outcomes/" + id);
    Answer outcome;
    EXPECT_TRUE(WaitFor(
        [&] {
          const Request get{"GET", "/outcomes/" + id, {Auth()}, std::nullopt};
          outcome = curl ? Curl(get) : Urllib(get);
          return outcome.status == 200;
        },
        seconds(20), milliseconds(100)))
        << outcome.status << " " << outcome.body;
    const auto j = Json(outcome);
    ASSERT_TRUE(j.contains("outcomes")) << outcome.body;
    EXPECT_EQ(j["outcomes"][0].value("status", ""), "ok");
    EXPECT_EQ(j["outcomes"][0].value("output", ""), "async payload");
    EXPECT_EQ(j["outcomes"][0].value("function", ""), "echo");
    EXPECT_EQ(j["outcomes"][0]["meta"].value("key", ""), key) << outcome.body;
    EXPECT_EQ(j["outcomes"][0]["meta"].value("content_type", ""), "text/plain") << outcome.body;
    // The request's traceparent continues its trace; without one the event starts its own.
    const std::string trace = j["outcomes"][0]["meta"].value("trace", "");
    EXPECT_EQ(trace.size(), 32u) << outcome.body;
    if (curl) {
      EXPECT_EQ(trace, kTrace) << outcome.body;
    } else {
      EXPECT_NE(trace, kTrace) << outcome.body;
    }
  }
  // A token limited to sleep does not see echo's outcomes.
  const Answer accepted = Curl({"POST", "/async-function/echo", {Auth()}, "hidden"});
  const std::string id = Json(accepted).value("id", "");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Curl({"GET", "/outcomes/" + id, {Auth()}, std::nullopt}).status == 200;
      },
      seconds(20), milliseconds(100)));
  EXPECT_EQ(Curl({"GET", "/outcomes/" + id, {Bearer(kLimitedToken)}, std::nullopt}).status, 404);
}

TEST_F(GatewayTest, MalformedRequestsGetJsonErrorsAndTheGatewayKeepsAnswering) {
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GARBAGE\r\n\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/9.9\r\n\r\n", "HTTP/1.1 505"},
      {"POST /function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "HTTP/1.1 4"},
      {"POST /function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "HTTP/1.1 4"},
      {"POST /function/echo HTTP/1.1\r\nNo colon here\r\n\r\n", "HTTP/1.1 4"},
      {"\x01\x02\x03\r\n\r\n", "HTTP/1.1 400"},
  };
  for (const auto& [request, status] : requests) {
    SCOPED_TRACE(request);
    const std::string out = Raw(request);
    EXPECT_THAT(out, HasSubstr(status));
    EXPECT_THAT(out, HasSubstr("\"error\""));
  }
  // A body shorter than its Content-Length, the client gone: refused, nothing run.
  const std::string cut =
      Raw(fmt::format("POST /function/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
                      "Content-Length: 100\r\n\r\nonly this",
                      token_));
  EXPECT_THAT(cut, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(cut, HasSubstr("bad-body"));
  EXPECT_EQ(Curl({"POST", "/function/echo", {Auth()}, "still here"}).body, "still here");
}

TEST_F(GatewayTest, AThousandConcurrentSyncCallsAreAllAnswered) {
  const auto run = RunCommand({"/usr/bin/python3", (SourceDir() / "tests/e2e/gateway_client.py").string(),
                               "concurrent", url_ + "/function/echo", token_, "1000"},
                              seconds(240));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::cout << "1000 concurrent calls: " << run.out;
  const auto j = nlohmann::json::parse(run.out);
  int total = 0;
  for (const auto& [status, n] : j.at("statuses").items()) {
    EXPECT_TRUE(status == "200" || status == "503") << status << ": " << run.out;
    total += n.get<int>();
  }
  EXPECT_EQ(total, 1000);
  EXPECT_GT(j["statuses"].value("200", 0), 0) << run.out;
  EXPECT_EQ(j.value("without_retry_after", -1), 0) << run.out;
  EXPECT_TRUE(j.at("failures").empty()) << run.out;
}

TEST_F(GatewayTest, CallsOverMaxConcurrentGet503WithRetryAfterAtOnce) {
  // 100 calls of 1.5 s each at once against max_concurrent 32: the rest are refused, not queued.
  const auto t0 = std::chrono::steady_clock::now();
  const auto run = RunCommand({"/usr/bin/python3", (SourceDir() / "tests/e2e/gateway_client.py").string(),
                               "concurrent", url_ + "/function/sleep", token_, "100", R"({"ms": 1500})"},
                              seconds(120));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::cout << "100 slow calls: " << run.out;
  const auto j = nlohmann::json::parse(run.out);
  EXPECT_GT(j["statuses"].value("503", 0), 0) << run.out;
  EXPECT_GT(j["statuses"].value("200", 0), 0) << run.out;
  EXPECT_LE(j["statuses"].value("200", 0), 100 - j["statuses"].value("503", 0));
  EXPECT_EQ(j["statuses"].value("200", 0) + j["statuses"].value("503", 0), 100) << run.out;
  EXPECT_EQ(j.value("without_retry_after", -1), 0) << run.out;
  EXPECT_TRUE(j.at("failures").empty()) << run.out;
  // No call waited behind another: the slowest is one call's time, not several.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(30));
}

std::int64_t VmHwmKb(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST_F(GatewayTest, A200MegabyteUploadIsStreamedWithABoundedRss) {
  constexpr std::size_t kSize = 200u << 20;
  const auto dir = TempDir("gateway-upload");
  const auto file = dir / "big.bin";
  {
    std::ofstream out(file, std::ios::binary);
    std::string chunk(1 << 20, '\0');
    for (std::size_t i = 0; i < kSize / chunk.size(); ++i) {
      for (std::size_t k = 0; k < chunk.size(); k += 4096) chunk[k] = static_cast<char>(i + k / 4096);
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    }
  }
  const pid_t pid = stack_->Endpoints().at("pid").get<pid_t>();
  const auto before = VmHwmKb(pid);
  ASSERT_GT(before, 0);
  const auto run = RunCommand({"curl", "-sS", "--noproxy", "*", "--max-time", "120", "-T", file.string(),
                               "-H", "Authorization: Bearer " + token_, url_ + "/uploads/sleep/big.bin"},
                              seconds(150));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("id")) << run.out;
  EXPECT_EQ(j.value("bytes", std::uint64_t{0}), kSize);
  const std::filesystem::path stored = j.value("path", "");
  EXPECT_EQ(stored.filename(), "big.bin");
  EXPECT_EQ(stored.parent_path().filename(), j.value("id", ""));
  ASSERT_EQ(std::filesystem::file_size(stored), kSize);
  {
    std::ifstream a(file, std::ios::binary), b(stored, std::ios::binary);
    std::string x(1 << 20, '\0'), y(1 << 20, '\0');
    bool same = true;
    while (same && a.read(x.data(), static_cast<std::streamsize>(x.size()))) {
      b.read(y.data(), static_cast<std::streamsize>(y.size()));
      same = x == y;
    }
    EXPECT_TRUE(same) << "the stored file differs from the upload";
  }
  const auto after = VmHwmKb(pid);
  // The body went through 256 KiB chunks: the stack's peak grew by far less than the file.
  EXPECT_LT(after - before, 48 * 1024) << "VmHWM " << before << " kB -> " << after << " kB";
  // The event went to sleep by reference and ran.
  const std::string id = j.value("id", "");
  Answer outcome;
  EXPECT_TRUE(WaitFor(
      [&] {
        outcome = Curl({"GET", "/outcomes/" + id, {Auth()}, std::nullopt});
        return outcome.status == 200;
      },
      seconds(30), milliseconds(100)))
      << outcome.body;
  EXPECT_EQ(Json(outcome)["outcomes"][0].value("function", ""), "sleep");
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(stored.parent_path());
}

TEST_F(GatewayTest, TheTokenFileIsPrivateAndTheTokenNeverLogged) {
  struct stat st {};
  ASSERT_EQ(::stat(token_file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(token_.size(), 64u);
  EXPECT_EQ(Curl({"POST", "/function/echo", {Auth()}, "x"}).status, 200);
  const std::string logs = stack_->Process().Stdout() + stack_->Process().Stderr();
  EXPECT_THAT(logs, HasSubstr("HTTP gateway on"));
  EXPECT_THAT(logs, Not(HasSubstr(token_)));
  EXPECT_THAT(logs, Not(HasSubstr(kLimitedToken)));
}

TEST(GatewayRestart, TheTokenSurvivesARestartAndEnabledFalseServesNothing) {
  const SharedStateDir dir{TempDir("gateway-restart")};
  constexpr const char* kEcho = "functions:\n  - name: echo\n";
  std::string first;
  {
    StackProcess stack(dir, kEcho);
    first = ReadFile(stack.Endpoints().at("gateway_token_file").get<std::string>());
    ASSERT_EQ(first.size(), 65u) << first;  // 64 hex digits and a newline
  }
  {
    StackProcess stack(dir, kEcho);
    EXPECT_EQ(ReadFile(stack.Endpoints().at("gateway_token_file").get<std::string>()), first);
  }
  {
    StackProcess stack(dir, std::string(kEcho) + "gateway: {enabled: false}\n");
    EXPECT_FALSE(stack.Endpoints().contains("gateway")) << stack.Endpoints().dump();
    EXPECT_FALSE(stack.Endpoints().contains("gateway_token_file"));
    EXPECT_THAT(stack.Process().Stderr(), Not(HasSubstr("HTTP gateway on")));
  }
  std::filesystem::remove_all(dir.path);
}

}  // namespace
}  // namespace runnel::testing
