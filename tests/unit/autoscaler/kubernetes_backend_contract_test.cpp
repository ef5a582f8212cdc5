// KubernetesBackend against a local HTTP server that implements the scale subresource of
// Deployments as the Kubernetes API reference describes it (fake_kubernetes_api.hpp): a contract
// test. It checks what the backend sends (method, path, Authorization, Accept, Content-Type, the
// exact body) and what it makes of the answers (Scale objects, Status errors, no answer). What only
// a real cluster can show (RBAC, scheduling, the pods joining) is listed in deploy/README.md.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <spdlog/sinks/ostream_sink.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fake_kubernetes_api.hpp"
#include "runnel/autoscaler/autoscaler.hpp"
#include "runnel/autoscaler/kubernetes_backend.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/testing/child_process.hpp"

namespace runnel::autoscaler {
namespace {

using testing::FakeKubernetesApi;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Request = FakeKubernetesApi::Request;
using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;  // for conditions that hold within milliseconds when all is well

// The PATCHes a server saw, in order.
std::vector<Request> Patches(const std::vector<Request>& all) {
  std::vector<Request> out;
  for (const auto& r : all) {
    if (r.method == "PATCH") out.push_back(r);
  }
  return out;
}
bool HasPatch(const std::vector<Request>& all, int replicas, int status = 200) {
  for (const auto& r : Patches(all)) {
    if (r.body == fmt::format(R"({{"spec":{{"replicas":{}}}}})", replicas) && r.status == status) return true;
  }
  return false;
}
int Gets(const std::vector<Request>& all) {
  return static_cast<int>(
      std::count_if(all.begin(), all.end(), [](const Request& r) { return r.method == "GET"; }));
}

// Waits until `done` holds or the deadline passes; returns whether it held.
template <typename F>
bool Eventually(F done, std::chrono::milliseconds within = kDeadline) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(2ms);  // a poll of the condition, not a wait for time to pass
  }
  return true;
}

class KubernetesContract : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = runnel::testing::TempDir("k8s-contract");
    WriteToken("token-one");
    server_.AddDeployment("runnel-worker-image-thumbnail", 0);
    // Every line the autoscaler's logger writes, to check that no token reaches one.
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(logged_);
    log::kAutoscaler.Logger()->sinks().push_back(sink_);
  }
  void TearDown() override {
    auto& sinks = log::kAutoscaler.Logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    EXPECT_THAT(Logged(), Not(HasSubstr("token-")));  // the token's value is never logged
    std::filesystem::remove_all(dir_);
  }

  // As kubelet rotates a projected token: a new file renamed over the old one.
  void WriteToken(const std::string& token) {
    const auto tmp = dir_ / "token.new";
    std::ofstream(tmp) << token << "\n";
    std::filesystem::rename(tmp, dir_ / "token");
  }
  KubernetesBackend::Options Options() {
    KubernetesBackend::Options o;
    o.api_server = server_.Url();
    o.ns = "runnel";
    o.token_file = dir_ / "token";
    o.timeout = 2s;
    o.retry = 50ms;
    o.resync = 1h;  // reads only at Prepare and with each PATCH: the requests a test sees are its own
    return o;
  }
  std::string Logged() {
    sink_->flush();
    return logged_.str();
  }
  // The backend's view of the function, for status.
  static OrchestratorInfo Info(const KubernetesBackend& b, const std::string& fn = "image.thumbnail") {
    return b.OrchestratorOf(fn).value_or(OrchestratorInfo{});
  }

  std::filesystem::path dir_;
  FakeKubernetesApi server_{"runnel", "token-one"};
  std::ostringstream logged_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  const std::string path_ = "/apis/apps/v1/namespaces/runnel/deployments/runnel-worker-image-thumbnail/scale";
};

TEST_F(KubernetesContract, ScalesUpFromZeroOnTheFirstStartWithTheScaleSubresource) {
  KubernetesBackend backend(Options());
  backend.Prepare("image.thumbnail", "tcp://unused:1");
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return Gets(r) == 1; }, kDeadline));
  EXPECT_TRUE(Eventually([&] { return Info(backend).replicas == 0; }));
  EXPECT_THAT(backend.List("image.thumbnail"), IsEmpty());

  EXPECT_EQ(backend.Start("image.thumbnail", "tcp://unused:1"), "runnel-worker-image-thumbnail/1");
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 1); }, kDeadline));
  EXPECT_EQ(server_.SpecReplicas("runnel-worker-image-thumbnail"), 1);

  const auto requests = server_.Requests();
  const Request& get = requests.at(0);
  EXPECT_EQ(get.method, "GET");
  EXPECT_EQ(get.path, path_);
  EXPECT_EQ(get.Header("Authorization"), "Bearer token-one");
  EXPECT_EQ(get.Header("Accept"), "application/json");
  EXPECT_EQ(get.body, "");
  const auto patches = Patches(requests);
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].path, path_);
  EXPECT_EQ(patches[0].Header("Authorization"), "Bearer token-one");
  EXPECT_EQ(patches[0].Header("Accept"), "application/json");
  EXPECT_EQ(patches[0].Header("Content-Type"), "application/merge-patch+json");
  EXPECT_EQ(patches[0].body, R"({"spec":{"replicas":1}})");
  EXPECT_THAT(server_.Violations(), IsEmpty());

  ASSERT_TRUE(Eventually([&] { return Info(backend).applied; }));
  const auto info = Info(backend);
  EXPECT_EQ(info.kind, "kubernetes");
  EXPECT_EQ(info.target, "deployments/runnel-worker-image-thumbnail in namespace runnel");
  EXPECT_EQ(info.replicas_set, 1);
  EXPECT_EQ(info.spec_replicas, 1);
  EXPECT_EQ(info.replicas, 1);
  EXPECT_EQ(info.error, "");
  const auto listed = backend.List("image.thumbnail");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, "runnel-worker-image-thumbnail/1");
  EXPECT_EQ(listed[0].pid, 0);
  EXPECT_EQ(listed[0].state, WorkerState::kRunning);
}

// Starts asked for while a PATCH is on its way are applied by the next, with their sum; a Stop
// lowers the replicas by one, and pods still terminating are listed as stopping.
TEST_F(KubernetesContract, StopLowersTheReplicasAndPodsStillRunningAreListedAsStopping) {
  server_.FollowSpec(false);  // the pods stay until told otherwise
  KubernetesBackend backend(Options());
  backend.Start("image.thumbnail", "");
  backend.Start("image.thumbnail", "");
  EXPECT_EQ(backend.Start("image.thumbnail", ""), "runnel-worker-image-thumbnail/3");
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 3); }, kDeadline));
  ASSERT_TRUE(Eventually([&] { return Info(backend).applied; }));
  EXPECT_EQ(backend.List("image.thumbnail").size(), 3u);
  for (const auto& w : backend.List("image.thumbnail")) EXPECT_EQ(w.state, WorkerState::kStarting) << w.id;

  server_.AddDeployment("runnel-worker-image-thumbnail", 3);  // the pods came up
  backend.Stop("runnel-worker-image-thumbnail/1", 5s);
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 2); }, kDeadline));
  ASSERT_TRUE(Eventually([&] { return Info(backend).applied; }));
  const auto listed = backend.List("image.thumbnail");
  ASSERT_EQ(listed.size(), 3u);  // 2 wanted, 3 pods: one terminating
  EXPECT_EQ(listed[0].state, WorkerState::kRunning);
  EXPECT_EQ(listed[1].state, WorkerState::kRunning);
  EXPECT_EQ(listed[2].state, WorkerState::kStopping);

  backend.Stop("runnel-worker-image-thumbnail/2", 5s);
  backend.Stop("runnel-worker-image-thumbnail/1", 5s);
  backend.Stop("runnel-worker-image-thumbnail/1", 5s);  // nothing left to lower: no PATCH below 0
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 0); }, kDeadline));
  ASSERT_TRUE(Eventually([&] { return Info(backend).applied; }));
  EXPECT_EQ(server_.SpecReplicas("runnel-worker-image-thumbnail"), 0);
  for (const auto& p : Patches(server_.Requests())) EXPECT_THAT(p.body, Not(HasSubstr("-")));
  EXPECT_THAT(server_.Violations(), IsEmpty());
}

TEST_F(KubernetesContract, ARotatedTokenFileIsPickedUp) {
  KubernetesBackend backend(Options());
  backend.Start("image.thumbnail", "");
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 1); }, kDeadline));

  WriteToken("token-two");
  server_.SetToken("token-two");  // the old one is refused from now on
  backend.Start("image.thumbnail", "");
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 2); }, kDeadline));
  const auto patches = Patches(server_.Requests());
  EXPECT_EQ(patches.back().Header("Authorization"), "Bearer token-two");
  EXPECT_EQ(patches.back().status, 200);
  ASSERT_TRUE(Eventually([&] { return Info(backend).applied; }));
  EXPECT_EQ(Info(backend).error, "");
}

TEST_F(KubernetesContract, A403SaysWhatRbacIsMissing) {
  KubernetesBackend backend(Options());
  backend.Prepare("image.thumbnail", "");
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return Gets(r) == 1; }, kDeadline));
  server_.SetMode(FakeKubernetesApi::Mode::kForbid);
  backend.Start("image.thumbnail", "");
  ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
  const std::string expected = fmt::format(
      "PATCH {}{}: HTTP 403 Forbidden: deployments.apps \"runnel-worker-image-thumbnail\" is forbidden: User "
      "\"system:serviceaccount:runnel:runnel\" cannot patch resource \"deployments/scale\" in API group "
      "\"apps\" in "
      "the namespace \"runnel\" (the service account needs get and patch on deployments/scale in namespace "
      "runnel)",
      server_.Url(), path_);
  EXPECT_EQ(Info(backend).error, expected);
  EXPECT_FALSE(Info(backend).applied);
  EXPECT_GE(Info(backend).failures, 1);
  EXPECT_THAT(Logged(), HasSubstr(expected));
  // Still wanted, retried: once RBAC allows it, the PATCH goes through.
  ASSERT_EQ(backend.List("image.thumbnail").size(), 1u);
  EXPECT_EQ(backend.List("image.thumbnail")[0].state, WorkerState::kStarting);
  server_.SetMode(FakeKubernetesApi::Mode::kNormal);
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 1); }, kDeadline));
  ASSERT_TRUE(Eventually([&] { return Info(backend).applied && Info(backend).error.empty(); }));
  EXPECT_THAT(server_.Violations(), IsEmpty());
}

TEST_F(KubernetesContract, A404NamesTheDeploymentAndTheNamespace) {
  auto o = Options();
  o.deployments["image.thumbnail"] = "thumbnails";  // the server has no such Deployment
  KubernetesBackend backend(o);
  backend.Prepare("image.thumbnail", "");
  ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
  EXPECT_EQ(
      Info(backend).error,
      fmt::format("GET {}/apis/apps/v1/namespaces/runnel/deployments/thumbnails/scale: HTTP 404 NotFound: "
                  "deployments.apps \"thumbnails\" not found (is there a Deployment thumbnails in namespace "
                  "runnel?)",
                  server_.Url()));
  EXPECT_EQ(Info(backend).replicas, -1);  // never read
  EXPECT_THAT(backend.List("image.thumbnail"), IsEmpty());
}

TEST_F(KubernetesContract, A401ARefusedTokenNamesTheTokenFileNotTheToken) {
  WriteToken("token-stale");
  KubernetesBackend backend(Options());
  backend.Prepare("image.thumbnail", "");
  ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
  EXPECT_EQ(Info(backend).error,
            fmt::format(
                "GET {}{}: HTTP 401 Unauthorized: Unauthorized (the token in {} was refused: expired, or not "
                "this cluster's)",
                server_.Url(), path_, (dir_ / "token").string()));
}

TEST_F(KubernetesContract, ServerErrorsBadJsonAndNoServerArePreciseErrors) {
  server_.SetMode(FakeKubernetesApi::Mode::kServerError);
  {
    KubernetesBackend backend(Options());
    backend.Prepare("image.thumbnail", "");
    ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
    EXPECT_EQ(Info(backend).error,
              fmt::format("GET {}{}: HTTP 500: <html><body>upstream connect error</body></html>",
                          server_.Url(), path_));
  }
  server_.SetMode(FakeKubernetesApi::Mode::kBadJson);
  {
    KubernetesBackend backend(Options());
    backend.Prepare("image.thumbnail", "");
    ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
    EXPECT_EQ(Info(backend).error,
              fmt::format("GET {}{}: HTTP 200 with a body that is not a Scale object", server_.Url(), path_));
  }
  {
    auto o = Options();
    o.api_server = "http://127.0.0.1:1";  // nothing listens there
    KubernetesBackend backend(o);
    backend.Prepare("image.thumbnail", "");
    ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
    EXPECT_THAT(Info(backend).error,
                HasSubstr(fmt::format("GET http://127.0.0.1:1{}: Couldn't connect to server", path_)));
  }
  {
    auto o = Options();
    o.token_file = dir_ / "no-such-token";
    KubernetesBackend backend(o);
    backend.Prepare("image.thumbnail", "");
    ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
    EXPECT_EQ(Info(backend).error,
              fmt::format("GET {}{}: no bearer token: cannot read {}: No such file or directory",
                          server_.Url(), path_, (dir_ / "no-such-token").string()));
  }
}

// A server that takes the request and never answers: the request ends at the timeout, and the
// callers (the autoscaler's loop) never wait for it meanwhile.
TEST_F(KubernetesContract, ASlowServerIsBoundedByTheTimeoutAndNeverBlocksTheCaller) {
  auto o = Options();
  o.timeout = 2s;
  KubernetesBackend backend(o);
  server_.SetMode(FakeKubernetesApi::Mode::kHold);
  backend.Start("image.thumbnail", "");
  ASSERT_TRUE(server_.WaitForHeld(kDeadline));
  // While the PATCH hangs: Start, Stop, List and status answer from what the backend holds.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(backend.Start("image.thumbnail", ""), "runnel-worker-image-thumbnail/2");
  EXPECT_EQ(backend.List("image.thumbnail").size(), 2u);
  backend.Stop("runnel-worker-image-thumbnail/2", 1s);
  backend.Tick();
  (void)backend.OrchestratorOf("image.thumbnail");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "a caller waited for the hanging request";
  EXPECT_EQ(server_.Held(), 1) << "the request ended before the calls above were made";

  ASSERT_TRUE(Eventually([&] { return !Info(backend).error.empty(); }));
  EXPECT_EQ(Info(backend).error, fmt::format("PATCH {}{}: timed out after 2000 ms", server_.Url(), path_));
  server_.SetMode(FakeKubernetesApi::Mode::kNormal);  // the retry goes through
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 1); }, kDeadline));
  ASSERT_TRUE(Eventually([&] { return Info(backend).applied; }));
}

TEST_F(KubernetesContract, StopAllLeavesTheDeploymentsUnlessToldToScaleThemToZero) {
  {
    KubernetesBackend backend(Options());
    backend.Start("image.thumbnail", "");
    ASSERT_TRUE(Eventually([&] { return Info(backend).applied; }));
    backend.StopAll(1s);
  }
  EXPECT_EQ(server_.SpecReplicas("runnel-worker-image-thumbnail"), 1);
  EXPECT_FALSE(HasPatch(server_.Requests(), 0));
  {
    auto o = Options();
    o.scale_to_zero_on_stop = true;
    KubernetesBackend backend(o);
    backend.Prepare("image.thumbnail", "");  // adopts the 1 replica that runs
    ASSERT_TRUE(Eventually([&] { return Info(backend).replicas_set == 1; }));
    EXPECT_EQ(backend.List("image.thumbnail").size(), 1u);
    backend.StopAll(1s);  // waits for its PATCH
    EXPECT_TRUE(HasPatch(server_.Requests(), 0));
  }
  EXPECT_EQ(server_.SpecReplicas("runnel-worker-image-thumbnail"), 0);
}

TEST_F(KubernetesContract, ResolveTakesTheApiServerFromTheServiceEnvironment) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const std::string saved = host != nullptr ? host : "";
  KubernetesWorkers config;
  config.ns = "jobs";
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
  const auto o = KubernetesBackend::Resolve(config);
  EXPECT_EQ(o.api_server, "https://10.96.0.1:6443");
  EXPECT_EQ(o.ns, "jobs");
  EXPECT_EQ(o.token_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  try {
    (void)KubernetesBackend::Resolve(config);
    ADD_FAILURE() << "no error without an API server";
  } catch (const ConfigError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("workers.kubernetes.api_server is not set and "
                                                 "$KUBERNETES_SERVICE_HOST is not either"));
  }
  if (host != nullptr) ::setenv("KUBERNETES_SERVICE_HOST", saved.c_str(), 1);
  ::unsetenv("KUBERNETES_SERVICE_PORT");
}

// Through the real scaling loop: a dispatcher's wake (an event with no worker) makes the first
// PATCH replicas=1 at once, without any load in the stats; once idle for idle_to_zero, replicas=0.
TEST_F(KubernetesContract, TheAutoscalersWakeFromZeroPatchesOneReplicaThenIdleGoesBackToZero) {
  kafka::EmbeddedBroker broker;
  broker.CreateTopic("thumbnails", 1);
  KubernetesBackend backend(Options());
  FunctionSpec spec;
  spec.name = "image.thumbnail";
  spec.topic = "thumbnails";
  spec.scaling.idle_to_zero = 300ms;
  spec.scaling.stabilization = 300ms;
  Autoscaler::Options ao{&backend, broker.ClientConfig()};
  Autoscaler scaler(std::move(ao));
  const auto wake = scaler.Add(spec);
  scaler.Connect(spec.name, "tcp://127.0.0.1:1", [] { return broker::DispatcherStats{}; });
  scaler.Start();
  // Prepare reads the scale; with nothing arriving the loop asks for no worker.
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return Gets(r) == 1; }, kDeadline));
  ASSERT_TRUE(Eventually([&] {
    return scaler.Status()["functions"].size() == 1 &&
           scaler.Status()["functions"][0].contains("orchestrator");
  }));
  EXPECT_TRUE(Patches(server_.Requests()).empty());

  wake();
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 1); }, kDeadline));
  EXPECT_EQ(Patches(server_.Requests()).front().body, R"({"spec":{"replicas":1}})");
  ASSERT_TRUE(server_.WaitFor([](const auto& r) { return HasPatch(r, 0); }, kDeadline));
  scaler.Stop();
  const auto status = scaler.Status()["functions"][0];
  EXPECT_EQ(status["orchestrator"]["target"],
            "deployments/runnel-worker-image-thumbnail in namespace runnel");
  EXPECT_EQ(status["orchestrator"]["error"], "");
  EXPECT_THAT(server_.Violations(), IsEmpty());
}

}  // namespace
}  // namespace runnel::autoscaler
