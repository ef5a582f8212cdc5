#include "runnel/testing/stack_process.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <zmq.hpp>

#include "runnel/core/envelope.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {

StackProcess::StackProcess(const std::string& yaml, const std::map<std::string, std::string>& env,
                           std::vector<std::string> extra_args)
    : StackProcess(SharedStateDir{TempDir("stack")}, yaml, env, std::move(extra_args)) {
  own_state_dir_ = true;
}

StackProcess::StackProcess(SharedStateDir state_dir, const std::string& yaml,
                           const std::map<std::string, std::string>& env, std::vector<std::string> extra_args)
    : state_dir_(std::move(state_dir.path)), own_state_dir_(false) {
  std::filesystem::create_directories(state_dir_);
  const auto config = state_dir_ / "runnel.yaml";
  std::ofstream(config) << yaml;
  std::vector<std::string> argv = {RunnelBin(),     "up",          "--config",
                                   config.string(), "--state-dir", state_dir_.string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<ChildProcess>(std::move(argv), env);
  if (!process_->WaitForOutput("runnel stack up", std::chrono::seconds(30))) {
    ADD_FAILURE() << "runnel up did not start: " << process_->Stderr();
    throw std::runtime_error("runnel up did not start");
  }
  endpoints_ = runnel::StateDir(state_dir_).ReadEndpoints();
}

namespace {

// The last `max_lines` lines of `text`.
std::string_view Tail(std::string_view text, int max_lines) {
  std::size_t pos = text.size();
  for (int lines = 0; pos > 0 && lines <= max_lines; ++lines) {
    const auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string_view::npos) return text;
    pos = nl;
  }
  return pos == 0 ? text : text.substr(pos + 1);
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

StackProcess::~StackProcess() {
  // A failed test leaves the logs it needs in CI's output: the state dir is about to go.
  if (::testing::Test::HasFailure()) DumpLogs();
  process_.reset();
  if (own_state_dir_) std::filesystem::remove_all(state_dir_);
}

void StackProcess::DumpLogs() const {
  constexpr int kLines = 200;
  std::cerr << "---- runnel up (stderr, last " << kLines << " lines) ----\n"
            << Tail(process_->Stderr(), kLines) << "\n";
  std::error_code ec;
  const auto logs = state_dir_ / "logs";
  for (auto it = std::filesystem::recursive_directory_iterator(logs, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::cerr << "---- " << std::filesystem::relative(it->path(), logs).string() << " (last " << kLines
              << " lines) ----\n"
              << Tail(ReadAll(it->path()), kLines) << "\n";
  }
}

bool StackProcess::WaitForWorkers(const std::string& function, int count,
                                  std::chrono::milliseconds deadline) {
  const std::regex joined("dispatcher " + function + ": worker \\S+ \\(pid \\d+\\) joined");
  return WaitFor(
      [&] {
        const std::string err = process_->Stderr();
        const auto n =
            std::distance(std::sregex_iterator(err.begin(), err.end(), joined), std::sregex_iterator());
        return n >= count;
      },
      deadline, std::chrono::milliseconds(20));
}

std::optional<security::ClientKeys> StackProcess::ClientKeys() const {
  return security::LocalClientKeysFor(state_dir_, endpoints_);
}

void StackProcess::Secure(zmq::socket_t& socket) const {
  if (const auto keys = ClientKeys()) security::MakeClient(socket, *keys);
}

nlohmann::json StackProcess::Status() const {
  const auto r = RunCommand({RunnelBin(), "status", "--json", "--state-dir", state_dir_.string()},
                            std::chrono::seconds(10));
  if (r.exit_code != 0) return nlohmann::json::object();
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

nlohmann::json StackProcess::FunctionStatus(const std::string& function) const {
  const auto status = Status();
  if (status.contains("functions")) {
    for (const auto& f : status["functions"]) {
      if (f.value("name", "") == function) return f;
    }
  }
  return nlohmann::json::object();
}

std::map<std::string, pid_t> StackProcess::WorkerPids(const std::string& function) const {
  const std::string dispatcher = endpoints_.at("dispatchers").at(function).get<std::string>();
  // The stack's own workers connect to its local (ipc://) endpoint when it has one.
  const std::string local = endpoints_.value("local", nlohmann::json::object())
                                .value("dispatchers", nlohmann::json::object())
                                .value(function, dispatcher);
  std::map<std::string, pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::vector<std::string> args;
    for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
    // A worker runs as `runnel-worker ...` (what the autoscaler starts) or `runnel worker ...`.
    const bool slim = !args.empty() && std::filesystem::path(args[0]).filename() == "runnel-worker";
    if (!slim && (args.size() < 2 || args[1] != "worker")) continue;
    // A standby process (`--standby`, not started yet) has a worker's command line but is no worker.
    std::string comm;
    std::getline(std::ifstream(entry.path() / "comm"), comm);
    if (comm == "runnel-standby") continue;
    std::string id;
    bool ours = false;
    for (std::size_t i = 1; i + 1 < args.size(); ++i) {
      if (args[i] == "--dispatcher" && (args[i + 1] == dispatcher || args[i + 1] == local)) ours = true;
      if (args[i] == "--id") id = args[i + 1];
    }
    if (ours) out[id] = static_cast<pid_t>(std::stoi(name));
  }
  return out;
}

void ReadFromBeginning(const kafka::KafkaOptions& kafka, const std::string& topic, const std::string& group,
                       std::chrono::milliseconds deadline, std::size_t batch,
                       const std::function<void(kafka::Message&)>& take, const std::function<bool()>& done) {
  kafka::Admin admin(kafka);
  kafka::Consumer consumer(kafka, kafka::Consumer::Options{group});
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (auto p : admin.Partitions(topic)) partitions.push_back({topic, p, kafka::kOffsetBeginning});
  consumer.Assign(partitions);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done() && std::chrono::steady_clock::now() < until) {
    for (auto& m : consumer.PollBatch(batch, std::chrono::milliseconds(50))) take(m);
  }
}

std::vector<kafka::Message> ReadRecords(const kafka::KafkaOptions& kafka, const std::string& topic,
                                        std::size_t count, std::chrono::milliseconds deadline) {
  std::vector<kafka::Message> out;
  ReadFromBeginning(
      kafka, topic, "e2e.read-records", deadline, 100,
      [&](kafka::Message& m) { out.push_back(std::move(m)); }, [&] { return out.size() >= count; });
  return out;
}

std::string HeaderValue(const kafka::Message& m, std::string_view name) {
  for (const Header& h : m.headers) {
    if (h.name == name) return h.value;
  }
  return "(none)";
}

std::vector<Outcome> ReadOutcomes(const kafka::KafkaOptions& kafka, const std::string& topic,
                                  std::size_t count, std::chrono::milliseconds deadline) {
  std::vector<Outcome> out;
  ReadFromBeginning(
      kafka, topic, "e2e.outcomes", deadline, 1000,
      [&](kafka::Message& m) {
        for (const auto& h : m.headers) {
          if (h.name == "runnel-result") out.push_back(Outcome::FromFrames(h.value, m.value));
        }
      },
      [&] { return out.size() >= count; });
  return out;
}

std::vector<std::string> PublishEvents(
    const kafka::KafkaOptions& kafka, const std::string& topic,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& events) {
  kafka::Producer producer(kafka);
  std::vector<std::string> ids;
  std::atomic<int> failed{0};
  for (const auto& [payload, key] : events) {
    Envelope env;
    env.id = NewEventId();
    producer.Produce({topic, kafka::kAnyPartition, key, payload, env.Encode()},
                     [&failed](const kafka::Delivery& d) {
                       if (!d.Ok()) failed.fetch_add(1);
                     });
    ids.push_back(env.id);
  }
  EXPECT_EQ(producer.Flush(std::chrono::seconds(60)), 0);
  EXPECT_EQ(failed.load(), 0);
  return ids;
}

bool CommittedReachesEnd(const kafka::KafkaOptions& kafka, const std::string& topic, const std::string& group,
                         std::chrono::milliseconds deadline) {
  kafka::Admin admin(kafka);
  return WaitFor(
      [&] {
        // Lag 0: committed at the end, or an empty partition nothing was ever consumed from.
        for (const auto& po : admin.Offsets(topic, group)) {
          if (po.Lag() != 0 || po.Lost() != 0) return false;
        }
        return true;
      },
      deadline, std::chrono::milliseconds(100));
}

}  // namespace runnel::testing
