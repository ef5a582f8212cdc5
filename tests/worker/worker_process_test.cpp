// End-to-end: the real worker process (`runnel-worker`, the slim binary the autoscaler starts, and
// `runnel worker`) against a test playing the dispatcher with a real ZeroMQ ROUTER socket
// (docs/protocol.md §3). Every wait is a condition with a deadline.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "dispatcher_peer.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/testing/child_process.hpp"

namespace runnel::testing {
namespace {

using namespace std::chrono_literals;
using functions::Errc;
using Result = DispatcherPeer::Result;

constexpr auto kDeadline = std::chrono::milliseconds(10s);

std::unique_ptr<ChildProcess> StartWorker(const std::string& function, const std::string& endpoint,
                                          const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {RunnelWorkerBin(), "--function", function, "--dispatcher", endpoint};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<ChildProcess>(argv, std::map<std::string, std::string>{{"RUNNEL_LOG", "info"}});
}

// Reads RESULTS messages until `count` results arrived (or the deadline passed); keyed by token.
std::map<std::uint64_t, Result> CollectResults(DispatcherPeer& peer, std::size_t count,
                                               std::chrono::milliseconds deadline = kDeadline) {
  std::map<std::uint64_t, Result> results;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (results.size() < count) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto m = peer.Expect(wire::cmd::kResults, left);
    if (!m) break;
    for (auto& r : DispatcherPeer::DecodeResults(*m)) {
      EXPECT_FALSE(results.contains(r.header.token)) << "token " << r.header.token << " reported twice";
      results[r.header.token] = std::move(r);
    }
  }
  return results;
}

// Waits for a HEARTBEAT whose `field` reaches `value`.
bool WaitForHeartbeat(DispatcherPeer& peer, const std::string& field, std::int64_t value,
                      std::chrono::milliseconds deadline = kDeadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto m = peer.Expect(wire::cmd::kHeartbeat, left);
    if (!m) return false;
    if (m->Json().value(field, std::int64_t{-1}) == value) return true;
  }
}

std::size_t CountSeen(const DispatcherPeer& peer, std::string_view command) {
  std::size_t n = 0;
  for (const auto& m : peer.Seen()) n += m.command == command ? 1 : 0;
  return n;
}

TEST(WorkerProcess, HelloWelcomeAndHeartbeats) {
  DispatcherPeer peer;
  auto worker = StartWorker("echo", peer.Endpoint(), {"--id", "w-1"});
  auto hello = peer.Handshake("echo");
  ASSERT_TRUE(hello) << worker->Stderr();
  const auto body = hello->Json();
  EXPECT_EQ(body["v"], 1);
  EXPECT_EQ(body["function"], "echo");
  EXPECT_EQ(body["worker"], "w-1");
  EXPECT_EQ(body["pid"], worker->Pid());
  EXPECT_EQ(body["capacity"], 256) << "the default credit";
  auto heartbeat = peer.Expect(wire::cmd::kHeartbeat, kDeadline);
  ASSERT_TRUE(heartbeat) << worker->Stderr();
  EXPECT_EQ(heartbeat->Json()["in_flight"], 0);
  EXPECT_GT(heartbeat->Json()["rss_kb"].get<std::int64_t>(), 0);
}

TEST(WorkerProcess, EchoesManyTasksWithinCreditOnSeveralThreads) {
  DispatcherPeer peer;
  constexpr std::size_t kCapacity = 8;
  constexpr std::uint64_t kTasks = 300;
  auto worker = StartWorker("echo", peer.Endpoint(), {"--capacity", "8", "--threads", "3"});
  auto hello = peer.Handshake("echo");
  ASSERT_TRUE(hello) << worker->Stderr();
  EXPECT_EQ(hello->Json()["capacity"], kCapacity);

  std::map<std::uint64_t, Result> results;
  std::uint64_t next = 1;
  std::size_t max_pairs = 0;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (results.size() < kTasks && std::chrono::steady_clock::now() < until) {
    // Hand out exactly the free credit, several tasks per TASKS message.
    const std::size_t outstanding = (next - 1) - results.size();
    std::vector<std::pair<wire::TaskHeader, std::string>> batch;
    for (std::size_t i = outstanding; i < kCapacity && next <= kTasks; ++i, ++next) {
      batch.emplace_back(DispatcherPeer::Task(next, 0, {{"content-type", "text/plain"}}),
                         "payload-" + std::to_string(next));
    }
    if (!batch.empty()) peer.SendTasks(hello->identity, batch);
    auto m = peer.Expect(wire::cmd::kResults, 5s);
    ASSERT_TRUE(m) << worker->Stderr();
    const auto decoded = DispatcherPeer::DecodeResults(*m);
    max_pairs = std::max(max_pairs, decoded.size());
    for (const auto& r : decoded) {
      ASSERT_FALSE(results.contains(r.header.token));
      ASSERT_GE(r.header.token, 1u);
      ASSERT_LT(r.header.token, next) << "a result for a token never sent";
      results[r.header.token] = r;
    }
  }
  ASSERT_EQ(results.size(), kTasks);
  for (const auto& [token, r] : results) {
    EXPECT_EQ(r.header.status, wire::ResultStatus::kOk) << r.header.error;
    EXPECT_EQ(r.output, "payload-" + std::to_string(token));
    EXPECT_EQ(r.header.content_type, "text/plain");
  }
  EXPECT_EQ(CountSeen(peer, wire::cmd::kHello), 1u);
  RecordProperty("max_results_per_message", static_cast<int>(max_pairs));
}

TEST(WorkerProcess, RunsCapacityTasksConcurrently) {
  DispatcherPeer peer;
  auto worker = StartWorker("sleep", peer.Endpoint(), {"--capacity", "8"});
  auto hello = peer.Handshake("sleep");
  ASSERT_TRUE(hello) << worker->Stderr();
  std::vector<std::pair<wire::TaskHeader, std::string>> tasks;
  for (std::uint64_t t = 1; t <= 8; ++t) tasks.emplace_back(DispatcherPeer::Task(t), R"({"ms":1500})");
  peer.SendTasks(hello->identity, tasks);
  // All eight calls inside the function at once, before any of them reported.
  ASSERT_TRUE(WaitForHeartbeat(peer, "running", 8)) << worker->Stderr();
  EXPECT_EQ(CountSeen(peer, wire::cmd::kResults), 0u);
  const auto results = CollectResults(peer, 8);
  ASSERT_EQ(results.size(), 8u);
  for (const auto& [token, r] : results) EXPECT_EQ(r.header.status, wire::ResultStatus::kOk);
  EXPECT_EQ(CountSeen(peer, wire::cmd::kHello), 1u) << "the peer's heartbeats keep the session alive";
}

TEST(WorkerProcess, MapsFunctionErrorsToErrorCodes) {
  DispatcherPeer peer;
  auto worker = StartWorker("sleep", peer.Endpoint());
  auto hello = peer.Handshake("sleep");
  ASSERT_TRUE(hello) << worker->Stderr();
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(1), R"({"fail":"flaky dependency"})"},
                                   {DispatcherPeer::Task(2), R"({"fail":"corrupt","permanent":true})"},
                                   {DispatcherPeer::Task(3, 0, {{"runnel-hop", "3x"}}), "{}"},
                                   {DispatcherPeer::Task(4), R"({"ms":-1})"},
                                   {DispatcherPeer::Task(5), R"({"ms":0})"}});
  auto results = CollectResults(peer, 5);
  ASSERT_EQ(results.size(), 5u) << worker->Stderr();
  EXPECT_EQ(results[1].header.status, wire::ResultStatus::kError);
  EXPECT_EQ(results[1].header.error_code, static_cast<std::uint8_t>(Errc::kTransient));
  EXPECT_EQ(results[1].header.error, "flaky dependency");
  EXPECT_EQ(results[2].header.error_code, static_cast<std::uint8_t>(Errc::kBadInput));
  EXPECT_EQ(results[2].header.error, "corrupt");
  EXPECT_EQ(results[3].header.error_code, static_cast<std::uint8_t>(Errc::kBadInput));
  EXPECT_NE(results[3].header.error.find("runnel-hop"), std::string::npos) << results[3].header.error;
  EXPECT_EQ(results[4].header.error_code, static_cast<std::uint8_t>(Errc::kBadInput));
  EXPECT_EQ(results[5].header.status, wire::ResultStatus::kOk);
}

// The function is built from WELCOME's handler (default builtin:<function>), so an unknown one is
// refused there.
TEST(WorkerProcess, UnknownFunctionExitsOneWithAClearMessage) {
  DispatcherPeer peer;
  auto worker = StartWorker("no.such", peer.Endpoint());
  ASSERT_TRUE(peer.Handshake("no.such")) << worker->Stderr();
  ASSERT_TRUE(peer.Expect(wire::cmd::kBye, kDeadline));
  EXPECT_EQ(worker->Wait(kDeadline), 1);
  const auto err = worker->Stderr();
  EXPECT_NE(err.find("unknown function 'no.such'"), std::string::npos) << err;
  EXPECT_NE(err.find("echo"), std::string::npos) << "lists the known functions: " << err;
}

TEST(WorkerProcess, BuildsItsFunctionFromWelcomesHandler) {
  DispatcherPeer peer;
  auto worker = StartWorker("shout", peer.Endpoint());
  auto hello = peer.Handshake("shout", {{"handler", "exec:/bin/sh -c 'printf \"%s!\" \"$(cat)\"'"}});
  ASSERT_TRUE(hello) << worker->Stderr();
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(7), "hey"}});
  auto results = CollectResults(peer, 1);
  ASSERT_EQ(results.size(), 1u) << worker->Stderr();
  EXPECT_EQ(results[7].header.status, wire::ResultStatus::kOk) << results[7].header.error;
  EXPECT_EQ(results[7].output, "hey!");
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(kDeadline), 0);
}

// An exec function's control file reaches the dispatcher: the output file in the result's files,
// the emitted record with the result (docs/protocol.md §3), nothing for a failed call.
TEST(WorkerProcess, ExecOutputsAndEmitsTravelWithTheResult) {
  DispatcherPeer peer;
  auto worker = StartWorker("tag", peer.Endpoint());
  const auto outputs = TempDir("worker-exec-outputs");
  const auto script = outputs / "tag.sh";
  std::ofstream(script) << R"sh(test "$(cat)" = fail && exit 2
mkdir -p "$RUNNEL_OUTPUT_DIR" && printf x > "$RUNNEL_OUTPUT_DIR/x.txt"
printf '{"output":"x.txt"}\n{"emit":{"topic":"next","key":"k","payload":"p"}}\n' >> "$RUNNEL_CONTROL_FILE"
printf ok
)sh";
  auto hello = peer.Handshake(
      "tag", {{"handler", "exec:/bin/sh " + script.string()}, {"output_dir", outputs.string()}});
  ASSERT_TRUE(hello) << worker->Stderr();
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(1), "go"}, {DispatcherPeer::Task(2), "fail"}});
  auto results = CollectResults(peer, 2);
  ASSERT_EQ(results.size(), 2u) << worker->Stderr();
  const auto& ok = results[1].header;
  EXPECT_EQ(ok.status, wire::ResultStatus::kOk) << ok.error;
  EXPECT_EQ(results[1].output, "ok");
  const auto files = nlohmann::json::parse(ok.files_json.empty() ? "[]" : ok.files_json);
  ASSERT_EQ(files.size(), 1u) << ok.files_json;
  EXPECT_EQ(files[0].at("bytes"), 1);
  EXPECT_EQ(files[0].at("path").get<std::string>().rfind(outputs.string(), 0), 0u) << files[0];
  ASSERT_EQ(ok.emitted.size(), 1u);
  EXPECT_EQ(ok.emitted[0].topic, "next");
  EXPECT_EQ(ok.emitted[0].key, "k");
  EXPECT_EQ(ok.emitted[0].payload, "p");
  EXPECT_EQ(results[2].header.status, wire::ResultStatus::kError);
  EXPECT_TRUE(results[2].header.emitted.empty());
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(kDeadline), 0);
  std::filesystem::remove_all(outputs);
}

// The shared libraries a running process has mapped (/proc/PID/maps), by file name.
std::set<std::string> MappedLibraries(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::set<std::string> names;
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.rfind('/');
    if (slash != std::string::npos && line.find(".so", slash) != std::string::npos)
      names.insert(line.substr(slash + 1));
  }
  return names;
}

bool AnyStartsWith(const std::set<std::string>& names, std::string_view prefix) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n.starts_with(prefix); });
}

TEST(WorkerProcess, SlimWorkerMapsNeitherKafkaNorOpenCvForEcho) {
  DispatcherPeer peer;
  auto worker = StartWorker("echo", peer.Endpoint());
  auto hello = peer.Handshake("echo");
  ASSERT_TRUE(hello) << worker->Stderr();
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(1), "hi"}});
  auto results = CollectResults(peer, 1);
  ASSERT_EQ(results.size(), 1u) << worker->Stderr();
  EXPECT_EQ(results[1].output, "hi");
  const auto libs = MappedLibraries(worker->Pid());
  ASSERT_TRUE(AnyStartsWith(libs, "libzmq")) << "the maps were read: " << libs.size() << " libraries";
  EXPECT_FALSE(AnyStartsWith(libs, "librdkafka"));
  EXPECT_FALSE(AnyStartsWith(libs, "libopencv"));
  EXPECT_FALSE(AnyStartsWith(libs, "librunnel-media"));
}

TEST(WorkerProcess, SlimWorkerLoadsTheMediaModuleForAMediaFunction) {
  DispatcherPeer peer;
  auto worker = StartWorker("image.metadata", peer.Endpoint());
  auto hello = peer.Handshake("image.metadata");
  ASSERT_TRUE(hello) << worker->Stderr();
  std::ifstream in(SourceDir() / "samples/data/banner.png", std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(png.empty());
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(1), png}});
  auto results = CollectResults(peer, 1);
  ASSERT_EQ(results.size(), 1u) << worker->Stderr();
  ASSERT_EQ(results[1].header.status, wire::ResultStatus::kOk) << results[1].header.error;
  EXPECT_EQ(nlohmann::json::parse(results[1].output)["format"], "png") << results[1].output;
  const auto libs = MappedLibraries(worker->Pid());
  EXPECT_TRUE(libs.contains("librunnel-media.so"));
  EXPECT_TRUE(AnyStartsWith(libs, "libopencv_imgcodecs"));
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(kDeadline), 0);
}

TEST(WorkerProcess, TheRunnelWorkerCommandRunsTheSameWorker) {
  DispatcherPeer peer;
  ChildProcess worker(
      {RunnelBin(), "worker", "--function", "echo", "--dispatcher", peer.Endpoint(), "--id", "full"},
      {{"RUNNEL_LOG", "info"}});
  auto hello = peer.Handshake("echo");
  ASSERT_TRUE(hello) << worker.Stderr();
  EXPECT_EQ(hello->Json()["worker"], "full");
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(1), "same"}});
  auto results = CollectResults(peer, 1);
  ASSERT_EQ(results.size(), 1u) << worker.Stderr();
  EXPECT_EQ(results[1].output, "same");
  worker.Signal(SIGTERM);
  EXPECT_EQ(worker.Wait(kDeadline), 0);
}

TEST(WorkerProcess, SlimWorkerUsageErrorsExitTwoWithTheReason) {
  auto missing = RunCommand({RunnelWorkerBin(), "--function", "echo"}, 30s);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--dispatcher is required"), std::string::npos) << missing.err;
  auto bad = RunCommand(
      {RunnelWorkerBin(), "--function", "echo", "--dispatcher", "tcp://127.0.0.1:1", "--threads", "0"}, 30s);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--threads: must be a whole number in 1..1024, got '0'"), std::string::npos)
      << bad.err;
  auto help = RunCommand({RunnelWorkerBin(), "--help"}, 30s);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: runnel-worker"), std::string::npos) << help.out;
}

TEST(WorkerProcess, BadEndpointExitsOneWithAClearMessage) {
  auto run = RunCommand({RunnelBin(), "worker", "--function", "echo", "--dispatcher", "nonsense"}, 30s);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("cannot connect to dispatcher 'nonsense'"), std::string::npos) << run.err;
}

TEST(WorkerProcess, BadParamsExitOneAfterBye) {
  DispatcherPeer peer;
  auto worker = StartWorker("sleep", peer.Endpoint());
  ASSERT_TRUE(peer.Handshake("sleep", {{"params", {{"ms", -5}}}})) << worker->Stderr();
  auto bye = peer.Expect(wire::cmd::kBye, kDeadline);
  ASSERT_TRUE(bye);
  EXPECT_EQ(worker->Wait(kDeadline), 1);
  EXPECT_NE(worker->Stderr().find("params.ms -5"), std::string::npos) << worker->Stderr();
}

TEST(WorkerProcess, RaisesItsCapacityForAFullBatchPerCall) {
  DispatcherPeer peer;
  auto worker = StartWorker("iot.ingest", peer.Endpoint());
  auto hello =
      peer.Handshake("iot.ingest", {{"concurrency", 8}, {"batch", {{"size", 50}, {"window_ms", 200}}}});
  ASSERT_TRUE(hello) << worker->Stderr();
  EXPECT_EQ(hello->Json()["capacity"], 256);
  auto capacity = peer.Expect(wire::cmd::kCapacity, kDeadline);
  ASSERT_TRUE(capacity) << worker->Stderr();
  EXPECT_EQ(capacity->Json()["capacity"], 400) << "8 calls at once x 50 events each";
}

TEST(WorkerProcess, KeepsAnExplicitCapacityAndAsksNoMore) {
  DispatcherPeer peer;
  auto worker = StartWorker("iot.ingest", peer.Endpoint(), {"--capacity", "64"});
  ASSERT_TRUE(peer.Handshake("iot.ingest", {{"concurrency", 8}, {"batch", {{"size", 50}, {"window_ms", 0}}}}))
      << worker->Stderr();
  ASSERT_TRUE(WaitForHeartbeat(peer, "in_flight", 0)) << worker->Stderr();
  EXPECT_EQ(CountSeen(peer, wire::cmd::kCapacity), 0u);
}

TEST(WorkerProcess, ABatchForAFunctionWithoutBatchesExitsOneAfterBye) {
  DispatcherPeer peer;
  auto worker = StartWorker("echo", peer.Endpoint());
  ASSERT_TRUE(peer.Handshake("echo", {{"batch", {{"size", 50}, {"window_ms", 200}}}})) << worker->Stderr();
  ASSERT_TRUE(peer.Expect(wire::cmd::kBye, kDeadline));
  EXPECT_EQ(worker->Wait(kDeadline), 1);
  EXPECT_NE(worker->Stderr().find("batch.size 50: this function takes one event per call"), std::string::npos)
      << worker->Stderr();
}

TEST(WorkerProcess, RejectExitsOneWithTheReason) {
  DispatcherPeer peer;
  auto worker = StartWorker("echo", peer.Endpoint());
  auto hello = peer.Expect(wire::cmd::kHello, kDeadline);
  ASSERT_TRUE(hello);
  peer.Send(hello->identity, wire::cmd::kReject, {R"({"reason":"protocol version 7 is not served here"})"});
  EXPECT_EQ(worker->Wait(kDeadline), 1);
  EXPECT_NE(worker->Stderr().find("protocol version 7 is not served here"), std::string::npos)
      << worker->Stderr();
}

TEST(WorkerProcess, WatchdogReportsTimeoutThenLeavesWithStatusThree) {
  DispatcherPeer peer;
  auto worker = StartWorker("sleep", peer.Endpoint());
  auto hello = peer.Handshake("sleep");
  ASSERT_TRUE(hello) << worker->Stderr();
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(42, 300), R"({"ms":5000})"}});
  auto results = CollectResults(peer, 1);
  ASSERT_EQ(results.size(), 1u) << worker->Stderr();
  EXPECT_EQ(results[42].header.status, wire::ResultStatus::kError);
  EXPECT_EQ(results[42].header.error_code, static_cast<std::uint8_t>(Errc::kTimeout));
  EXPECT_EQ(results[42].header.error, "timed out after 300 ms");
  auto bye = peer.Expect(wire::cmd::kBye, kDeadline);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->Json()["reason"].get<std::string>().rfind("watchdog", 0), 0u) << bye->Json().dump();
  EXPECT_EQ(worker->Wait(kDeadline), 3);
}

TEST(WorkerProcess, ExitCommandGetsByeAndStatusThree) {
  DispatcherPeer peer;
  auto worker = StartWorker("sleep", peer.Endpoint());
  auto hello = peer.Handshake("sleep");
  ASSERT_TRUE(hello) << worker->Stderr();
  peer.SendTasks(hello->identity, {{DispatcherPeer::Task(1), R"({"ms":60000})"}});
  ASSERT_TRUE(WaitForHeartbeat(peer, "running", 1));
  peer.Send(hello->identity, wire::cmd::kExit, {R"({"reason":"overran its timeout"})"});
  auto bye = peer.Expect(wire::cmd::kBye, kDeadline);
  ASSERT_TRUE(bye);
  EXPECT_NE(bye->Json()["reason"].get<std::string>().find("overran its timeout"), std::string::npos);
  EXPECT_EQ(worker->Wait(kDeadline), 3) << "exits at once, without waiting for the 60 s call";
}

TEST(WorkerProcess, SigtermDrainsEveryHeldTaskThenExitsZero) {
  DispatcherPeer peer;
  auto worker = StartWorker("sleep", peer.Endpoint(), {"--capacity", "4"});
  auto hello = peer.Handshake("sleep");
  ASSERT_TRUE(hello) << worker->Stderr();
  std::vector<std::pair<wire::TaskHeader, std::string>> tasks;
  for (std::uint64_t t = 1; t <= 4; ++t) tasks.emplace_back(DispatcherPeer::Task(t), R"({"ms":1000})");
  peer.SendTasks(hello->identity, tasks);
  ASSERT_TRUE(WaitForHeartbeat(peer, "running", 4)) << worker->Stderr();
  worker->Signal(SIGTERM);
  ASSERT_TRUE(peer.Expect(wire::cmd::kDraining, kDeadline)) << worker->Stderr();
  const auto results = CollectResults(peer, 4);
  EXPECT_EQ(results.size(), 4u) << "no task lost";
  for (const auto& [token, r] : results)
    EXPECT_EQ(r.header.status, wire::ResultStatus::kOk) << r.header.error;
  auto bye = peer.Expect(wire::cmd::kBye, kDeadline);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->Json()["reason"], "drained");
  EXPECT_EQ(worker->Wait(kDeadline), 0) << worker->Stderr();
  EXPECT_EQ(CountSeen(peer, wire::cmd::kHello), 1u);
  // DRAINING came before every result, BYE after them.
  std::vector<std::string> order;
  for (const auto& m : peer.Seen()) {
    if (m.command != wire::cmd::kHeartbeat) order.push_back(m.command);
  }
  ASSERT_GE(order.size(), 4u);
  EXPECT_EQ(order.back(), "BYE");
  auto draining = std::find(order.begin(), order.end(), "DRAINING");
  auto first_results = std::find(order.begin(), order.end(), "RESULTS");
  EXPECT_LT(draining, first_results);
}

TEST(WorkerProcess, ReconnectsWithANewHelloWhenTheDispatcherFallsSilent) {
  DispatcherPeer peer;
  auto worker = StartWorker("echo", peer.Endpoint());
  auto hello = peer.Handshake("echo", {{"heartbeat_ms", 100}});
  ASSERT_TRUE(hello) << worker->Stderr();
  // The peer stops its heartbeats: after three silent intervals the worker says HELLO afresh.
  peer.SetSilent(true);
  auto again = peer.Expect(wire::cmd::kHello, kDeadline);
  ASSERT_TRUE(again) << worker->Stderr();
  peer.SetSilent(false);
  EXPECT_NE(again->identity, hello->identity) << "a new DEALER socket";
  EXPECT_EQ(again->Json()["function"], "echo");
  // And it serves the new session.
  peer.Send(again->identity, wire::cmd::kWelcome, {DispatcherPeer::DefaultWelcome("echo").dump()});
  peer.SendTasks(again->identity, {{DispatcherPeer::Task(7), "after reconnect"}});
  auto results = CollectResults(peer, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[7].output, "after reconnect");
}

TEST(WorkerProcess, AppliesTheMemoryLimit) {
  DispatcherPeer peer;
  auto worker = StartWorker("echo", peer.Endpoint());
  ASSERT_TRUE(peer.Handshake("echo", {{"memory_mb", 3072}})) << worker->Stderr();
  ASSERT_TRUE(peer.Expect(wire::cmd::kHeartbeat, kDeadline)) << worker->Stderr();
  std::ifstream limits("/proc/" + std::to_string(worker->Pid()) + "/limits");
  std::string line;
  bool found = false;
  while (std::getline(limits, line)) {
    if (line.rfind("Max address space", 0) != 0) continue;
    found = true;
    std::istringstream fields(line.substr(std::string("Max address space").size()));
    std::string soft, hard;
    fields >> soft >> hard;
    EXPECT_EQ(soft, std::to_string(3072ull * 1024 * 1024));
    EXPECT_EQ(hard, std::to_string(3072ull * 1024 * 1024));
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace runnel::testing
