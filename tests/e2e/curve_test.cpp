// CURVE on every socket of a stack, by default (issue 13, docs/protocol.md §6): a plain client gets
// nothing from a dispatcher, the results feed, the status or the control socket, and is counted
// and logged with its address; so is a client with a key the stack does not admit, or with the
// wrong server key. The stack's own workers and `runnel` commands on its host work unchanged; a
// key listed in `security.clients` is admitted; the keys are kept across restarts, private, and
// never logged; `security: {curve: false}` is the explicit opt-out.
#include "runnel/security/curve.hpp"

#include <gmock/gmock.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/security/tokens.hpp"
#include "runnel/testing/http_get.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kEcho = R"(
functions:
  - name: echo
    workers: 1
)";

// runnel_connections_refused_total{socket, reason} (-1: no such series yet).
double Refused(const StackProcess& stack, const std::string& socket, const std::string& reason) {
  return MetricSample(stack.Endpoints().value("metrics", ""), "runnel_connections_refused_total",
                      {{"socket", socket}, {"reason", reason}});
}

std::string Hello(const std::string& worker) {
  return nlohmann::json{{"v", 1}, {"function", "echo"}, {"worker", worker}, {"pid", 1}, {"capacity", 1}}
      .dump();
}

// A DEALER that says HELLO to the echo dispatcher, with `keys` or plain.
zmq::socket_t SayHello(zmq::context_t& ctx, const StackProcess& stack,
                       const std::optional<security::ClientKeys>& keys, const std::string& worker) {
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  if (keys) security::MakeClient(dealer, *keys);
  dealer.connect(stack.Endpoints().at("dispatchers").at("echo").get<std::string>());
  const std::string hello = Hello(worker);
  std::array<zmq::const_buffer, 2> frames = {zmq::str_buffer("HELLO"), zmq::buffer(hello)};
  EXPECT_TRUE(zmq::send_multipart(dealer, frames, zmq::send_flags::dontwait));
  return dealer;
}

// The first frame of the next message on `socket` within `deadline`, or nullopt.
std::optional<std::string> Receive(zmq::socket_t& socket, milliseconds deadline) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, deadline);
  std::vector<zmq::message_t> parts;
  if ((item.revents & ZMQ_POLLIN) == 0 ||
      !zmq::recv_multipart(socket, std::back_inserter(parts), zmq::recv_flags::dontwait) || parts.empty()) {
    return std::nullopt;
  }
  return parts[0].to_string();
}

RunResult Runnel(const StackProcess& stack, std::vector<std::string> args) {
  args.insert(args.begin(), RunnelBin());
  args.emplace_back("--state-dir");
  args.push_back(stack.StateDir().string());
  return RunCommand(std::move(args), seconds(60));
}

std::string ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

unsigned Mode(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(Curve, PlainClientsGetNothingFromAnySocketAndAreCountedWithTheirAddress) {
  StackProcess stack(kEcho);
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, seconds(20))) << "the stack's own worker could not join";
  EXPECT_EQ(stack.Endpoints().value("curve", false), true);
  EXPECT_THAT(stack.Process().Stdout(), HasSubstr("security: CURVE on every socket")) << "runnel up says so";
  zmq::context_t ctx(1);
  // The dispatcher: HELLO from a plain DEALER.
  auto dealer = SayHello(ctx, stack, std::nullopt, "plain");
  // The results feed: a plain SUB.
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(stack.Endpoints().at("results").get<std::string>());
  // The control socket: a plain REQ asking for the status, another for the schedules.
  std::vector<zmq::socket_t> reqs;
  for (const char* request : {R"({"op":"status"})", R"({"op":"job.list"})"}) {
    auto& req = reqs.emplace_back(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.connect(stack.Endpoints().at("control").get<std::string>());
    req.send(zmq::buffer(std::string(request)), zmq::send_flags::dontwait);
  }
  // A plain client is refused as "no-curve" when the stack reads its greeting first, "hung-up"
  // when the client read the stack's first and left (a race, both count).
  for (const char* socket : {"dispatcher/echo", "results", "control"}) {
    EXPECT_TRUE(WaitFor(
        [&] {
          return std::max(0.0, Refused(stack, socket, "no-curve")) +
                     std::max(0.0, Refused(stack, socket, "hung-up")) >=
                 1;
        },
        seconds(10)))
        << socket << ": a plain client was not counted as refused";
  }
  // While they keep knocking (libzmq reconnects), the stack serves its own clients: an event
  // through `runnel invoke`, whose outcome the feed publishes, and `runnel status`.
  const auto invoke = Runnel(stack, {"invoke", "echo", "--data", "through curve"});
  EXPECT_EQ(invoke.exit_code, 0) << invoke.err;
  EXPECT_EQ(invoke.out, "through curve");
  const auto status = Runnel(stack, {"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto refused = nlohmann::json::parse(status.out).at("security").at("refused");
  EXPECT_GE(refused.size(), 3u) << refused.dump();
  // Nothing reached the plain clients: no WELCOME, no outcome, no reply.
  EXPECT_EQ(Receive(dealer, milliseconds(0)), std::nullopt)
      << "a plain DEALER got a reply from the dispatcher";
  EXPECT_EQ(Receive(sub, milliseconds(0)), std::nullopt) << "a plain SUB got something from the results feed";
  for (auto& req : reqs) EXPECT_EQ(Receive(req, milliseconds(0)), std::nullopt) << "a plain REQ got a reply";
  // Logged per socket; with the client's address, unless the client was gone before the stack
  // could read it (then "an unknown address": the monitor learns it from the accepted socket).
  for (const char* socket : {"dispatcher/echo", "results", "control"}) {
    EXPECT_THAT(stack.Process().Stderr(), HasSubstr(fmt::format("{}: refused a client from ", socket)));
  }
  EXPECT_THAT(stack.Process().Stderr(),
              ::testing::ContainsRegex("refused a client from 127\\.0\\.0\\.1:[0-9]+ "));
}

TEST(Curve, AnUnknownKeyOrTheWrongServerKeyIsRefusedAndCounted) {
  StackProcess stack(kEcho);
  ASSERT_TRUE(stack.ClientKeys());
  zmq::context_t ctx(1);
  const security::ClientKeys stranger{stack.ClientKeys()->server_key, security::NewKeyPair()};
  auto unknown = SayHello(ctx, stack, stranger, "stranger");
  ASSERT_TRUE(WaitFor([&] { return Refused(stack, "dispatcher/echo", "unknown-key") >= 1; }, seconds(10)));
  EXPECT_EQ(Receive(unknown, milliseconds(0)), std::nullopt) << "an unknown key got a reply";
  EXPECT_THAT(stack.Process().Stderr(),
              HasSubstr(fmt::format("its key {} is not admitted", stranger.own.public_key)));

  // The stack's own client key, with a server key that is not the stack's.
  const security::ClientKeys wrong_server{security::NewKeyPair().public_key, stack.ClientKeys()->own};
  auto misdirected = SayHello(ctx, stack, wrong_server, "misdirected");
  ASSERT_TRUE(WaitFor([&] { return Refused(stack, "dispatcher/echo", "bad-handshake") >= 1; }, seconds(10)));
  EXPECT_EQ(Receive(misdirected, milliseconds(0)), std::nullopt);

  // The local key works as before: the same HELLO gets WELCOME.
  auto local = SayHello(ctx, stack, stack.ClientKeys(), "local");
  EXPECT_EQ(Receive(local, seconds(10)), "WELCOME");
}

TEST(Curve, AKeyInSecurityClientsIsAdmitted) {
  const auto dir = TempDir("curve-clients");
  const auto laptop = security::NewKeyPair();
  std::ofstream(dir / "laptop.pub") << "# the build laptop\n\n" << laptop.public_key << " alice@laptop\n";
  StackProcess stack(fmt::format("security:\n  clients: {}\n{}", dir.string(), kEcho));
  zmq::context_t ctx(1);
  auto admitted =
      SayHello(ctx, stack, security::ClientKeys{stack.ClientKeys()->server_key, laptop}, "laptop");
  EXPECT_EQ(Receive(admitted, seconds(10)), "WELCOME") << "a key listed in security.clients was not admitted";
  EXPECT_THAT(stack.Process().Stderr(), HasSubstr("2 client key(s) admitted"));
  std::filesystem::remove_all(dir);
}

TEST(Curve, TheStacksKeysAreKeptAcrossRestartsPrivateAndNeverLogged) {
  const SharedStateDir state{TempDir("curve-restart")};
  const auto keys = state.path / "keys";
  std::string first_server_key;
  {
    StackProcess stack(state, kEcho);
    ASSERT_TRUE(stack.WaitForWorkers("echo", 1, seconds(20)));
    first_server_key = stack.Endpoints().value("server_key", "");
    EXPECT_EQ(ReadFile(keys / "server.pub"), first_server_key + "\n");
    EXPECT_EQ(Mode(keys), 0700u);
    for (const char* file : {"server.pub", "server.secret", "local.pub", "local.secret"}) {
      EXPECT_EQ(Mode(keys / file), 0600u) << file;
    }
  }
  StackProcess again(state, kEcho);
  ASSERT_TRUE(again.WaitForWorkers("echo", 1, seconds(20))) << "a worker could not join with the kept keys";
  EXPECT_EQ(again.Endpoints().value("server_key", ""), first_server_key)
      << "the server key changed on a restart";
  const auto invoke = Runnel(again, {"invoke", "echo", "--data", "again"});
  EXPECT_EQ(invoke.out, "again") << invoke.err;
  // No secret in any log: the stack's, or a worker's.
  std::vector<std::string> logs = {again.Process().Stderr(), again.Process().Stdout()};
  for (const auto& entry : std::filesystem::recursive_directory_iterator(state.path / "logs")) {
    if (entry.is_regular_file()) logs.push_back(ReadFile(entry.path()));
  }
  for (const char* secret : {"server.secret", "local.secret"}) {
    std::string text = ReadFile(keys / secret);
    text.pop_back();
    ASSERT_EQ(text.size(), 40u);
    for (const auto& log : logs) EXPECT_THAT(log, Not(HasSubstr(text))) << secret << " was logged";
  }
  std::filesystem::remove_all(state.path);
}

TEST(Curve, TheStacksOwnWorkersConnectOverAPrivateIpcSocketWithoutCurve) {
  StackProcess stack(kEcho);
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, seconds(20)));
  const auto local = stack.Endpoints().at("local");
  const std::string dispatcher = local.at("dispatchers").at("echo").get<std::string>();
  EXPECT_TRUE(dispatcher.starts_with("ipc://" + (stack.StateDir() / "sockets").string())) << dispatcher;
  EXPECT_TRUE(local.at("results").get<std::string>().starts_with("ipc://")) << local.dump();
  EXPECT_EQ(Mode(stack.StateDir() / "sockets"), 0700u) << "only the stack's user may reach the local sockets";
  EXPECT_TRUE(stack.Endpoints().at("dispatchers").at("echo").get<std::string>().starts_with("tcp://"))
      << "the TCP endpoint, with CURVE, stays for other hosts";
  std::string logs;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(stack.StateDir() / "logs")) {
    if (entry.is_regular_file()) logs += ReadFile(entry.path());
  }
  EXPECT_THAT(logs, HasSubstr("for " + dispatcher)) << "the stack's worker did not use the local socket";
  const auto invoke = Runnel(stack, {"invoke", "echo", "--data", "over ipc"});
  EXPECT_EQ(invoke.out, "over ipc") << invoke.err;
}

// The results feed is one XPUB: it cannot drop one subscriber, so a revoked token makes it drop
// every TCP connection; the others come back through the guard, the revoked one is refused.
TEST(Curve, ARevokedTokensOpenResultsSubscriptionIsCutAndRefused) {
  StackProcess stack(kEcho);
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, seconds(20)));
  const auto dir = TempDir("curve-token");
  const auto file = (dir / "echo.token").string();
  const auto created = Runnel(stack, {"token", "create", "--function", "echo", "--out", file});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto token = security::ReadJoinToken(file);
  zmq::context_t ctx(1);
  const auto subscribe = [&](const security::ClientKeys& keys) {
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "");
    security::MakeClient(sub, keys);
    sub.connect(stack.Endpoints().at("results").get<std::string>());
    return sub;
  };
  auto revoked = subscribe(token.keys);
  auto allowed = subscribe(*stack.ClientKeys());
  ASSERT_EQ(Receive(revoked, seconds(10)), "runnel.welcome");
  ASSERT_EQ(Receive(allowed, seconds(10)), "runnel.welcome");
  ASSERT_EQ(Runnel(stack, {"token", "revoke", token.record.id}).exit_code, 0);
  // The allowed subscriber was cut too and came back: a second welcome.
  EXPECT_EQ(Receive(allowed, seconds(10)), "runnel.welcome") << "the feed did not drop its TCP subscribers";
  EXPECT_TRUE(WaitFor([&] { return Refused(stack, "results", "token-refused") >= 1; }, seconds(10)))
      << "the revoked subscriber's reconnection was not refused";
  const auto invoke = Runnel(stack, {"invoke", "echo", "--data", "after the revocation"});
  ASSERT_EQ(invoke.exit_code, 0) << invoke.err;
  EXPECT_THAT(Receive(allowed, seconds(10)).value_or("(nothing)"), ::testing::StartsWith("echo/"))
      << "the allowed subscriber no longer gets outcomes";
  EXPECT_EQ(Receive(revoked, milliseconds(0)), std::nullopt)
      << "a revoked token's subscription still gets outcomes";
  std::filesystem::remove_all(dir);
}

TEST(Curve, ListenFlagsChooseTheBindsOfEachSocketKind) {
  StackProcess stack(kEcho, {}, {"--listen", "127.0.0.2", "--listen", "dispatchers=127.0.0.3:7460-7469"});
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, seconds(20)));
  for (const char* kind : {"results", "control"}) {
    EXPECT_THAT(stack.Endpoints().at(kind).get<std::string>(), ::testing::StartsWith("tcp://127.0.0.2:"))
        << kind;
  }
  EXPECT_EQ(stack.Endpoints().at("dispatchers").at("echo"), "tcp://127.0.0.3:7460");
  const auto invoke = Runnel(stack, {"invoke", "echo", "--data", "bound where asked"});
  EXPECT_EQ(invoke.out, "bound where asked") << invoke.err;
  const auto status = Runnel(stack, {"status", "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
}

TEST(Curve, CurveOffIsAnExplicitOptOutOnLoopback) {
  StackProcess stack(fmt::format("security: {{curve: false}}\n{}", kEcho));
  EXPECT_EQ(stack.Endpoints().value("curve", true), false);
  EXPECT_FALSE(stack.ClientKeys());
  EXPECT_THAT(stack.Process().Stderr(), HasSubstr("CURVE is off"));
  EXPECT_THAT(stack.Process().Stdout(), HasSubstr("security: CURVE off"));
  zmq::context_t ctx(1);
  auto plain = SayHello(ctx, stack, std::nullopt, "plain");
  EXPECT_EQ(Receive(plain, seconds(10)), "WELCOME") << "with CURVE off a plain client is served";
  const auto invoke = Runnel(stack, {"invoke", "echo", "--data", "plain"});
  EXPECT_EQ(invoke.out, "plain") << invoke.err;
}

TEST(Curve, CurveOffWithABindBeyondLoopbackIsRefusedNamingTheLine) {
  const auto dir = TempDir("curve-off-wide");
  std::ofstream(dir / "runnel.yaml") << "security: {curve: false}\nlisten:\n  results: 0.0.0.0\n" << kEcho;
  const auto r = RunCommand({RunnelBin(), "up", "--config", (dir / "runnel.yaml").string(), "--state-dir",
                             (dir / "state").string()},
                            seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("runnel.yaml:3: listen.results: binds 0.0.0.0, beyond this host, while "
                               "security.curve is false (line 1)"));
  std::filesystem::remove_all(dir);
}

// A libzmq built without CURVE (zmq_has("curve") is 0; here an LD_PRELOADed shim says so): `runnel
// up` refuses to start with one clear line, before it binds anything. The explicit opt-out on
// loopback still starts. Without the check, the stack would start and bind every socket plain.
TEST(Curve, ALibzmqWithoutCurveFailsAtStartWithAClearMessage) {
  const auto dir = TempDir("no-curve");
  std::ofstream(dir / "runnel.yaml") << kEcho;
  const auto r =
      RunCommand({"env", std::string("LD_PRELOAD=") + RUNNEL_ZMQ_WITHOUT_CURVE, RunnelBin(), "up", "--config",
                  (dir / "runnel.yaml").string(), "--state-dir", (dir / "state").string()},
                 seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err,
              ::testing::ContainsRegex(
                  "this libzmq \\([0-9.]+\\) was built without CURVE, which every Runnel socket uses"));
  EXPECT_FALSE(std::filesystem::exists(dir / "state" / "endpoints.json")) << "it started anyway";

  StackProcess opted_out(fmt::format("security: {{curve: false}}\n{}", kEcho),
                         {{"LD_PRELOAD", RUNNEL_ZMQ_WITHOUT_CURVE}});
  EXPECT_EQ(opted_out.Endpoints().value("curve", true), false);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
