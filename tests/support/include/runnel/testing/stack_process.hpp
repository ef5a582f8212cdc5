// A real `runnel up` for end-to-end tests: its own state dir and config, started as a child
// process (killed with its group when the test ends; its workers die with it), plus what tests
// need around it: endpoints, worker pids, the outcomes written to a results topic, and the records
// of any topic read from the beginning.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/core/outcome.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/kafka.hpp"
#include "runnel/security/curve.hpp"
#include "runnel/testing/child_process.hpp"

namespace zmq {
class socket_t;
}

namespace runnel::testing {

// A state dir the caller owns, for a stack restarted in place: StackProcess leaves it behind.
struct SharedStateDir {
  std::filesystem::path path;
};

class StackProcess {
 public:
  // Starts `runnel up --config <yaml> [extra_args...]`; fails the test (and throws) if it is not up
  // within 30 s.
  explicit StackProcess(const std::string& yaml, const std::map<std::string, std::string>& env = {},
                        std::vector<std::string> extra_args = {});
  // The same in `state_dir` (written there, not removed): a second StackProcess in the same dir
  // is the stack restarted. (The dir comes first: `{{"NAME", "value"}}`, an environment, must
  // never be taken for a path.)
  StackProcess(SharedStateDir state_dir, const std::string& yaml,
               const std::map<std::string, std::string>& env = {}, std::vector<std::string> extra_args = {});
  ~StackProcess();
  StackProcess(const StackProcess&) = delete;
  StackProcess& operator=(const StackProcess&) = delete;

  const std::filesystem::path& StateDir() const { return state_dir_; }
  const nlohmann::json& Endpoints() const { return endpoints_; }
  kafka::KafkaOptions Kafka() const { return {endpoints_.at("kafka").get<std::string>(), "e2e-test", {}}; }
  ChildProcess& Process() { return *process_; }
  // The local client keys (<state dir>/keys) when the stack runs with CURVE, as `runnel` commands
  // on its host use them; nullopt when CURVE is off.
  std::optional<security::ClientKeys> ClientKeys() const;
  // Makes `socket` a CURVE client of this stack with ClientKeys(), when CURVE is on.
  void Secure(zmq::socket_t& socket) const;

  // Waits until `count` workers of `function` have joined their dispatcher (from the stack's log).
  bool WaitForWorkers(const std::string& function, int count, std::chrono::milliseconds deadline);
  // `runnel status --json` of this stack: {"functions": [...]}; an empty object when it failed.
  nlohmann::json Status() const;
  // The status of one function (an empty object when it failed).
  nlohmann::json FunctionStatus(const std::string& function) const;
  // Pids of the running worker processes (`runnel-worker` or `runnel worker`) of `function` in
  // this stack, by worker id.
  std::map<std::string, pid_t> WorkerPids(const std::string& function) const;

 private:
  // Prints the tails of the stack's log and of every worker log to stderr (for a failed test).
  void DumpLogs() const;

  std::filesystem::path state_dir_;
  bool own_state_dir_ = true;
  std::unique_ptr<ChildProcess> process_;
  nlohmann::json endpoints_;
};

// Reads every partition of `topic` from the beginning (assigned: no group join, nothing committed)
// as `group`, in batches of up to `batch` records, each handed to `take`, until `done()` holds
// (asked before each batch) or the deadline passed.
void ReadFromBeginning(const kafka::KafkaOptions& kafka, const std::string& topic, const std::string& group,
                       std::chrono::milliseconds deadline, std::size_t batch,
                       const std::function<void(kafka::Message&)>& take, const std::function<bool()>& done);
// Every record of `topic` from the beginning until `count` arrived or the deadline passed.
std::vector<kafka::Message> ReadRecords(const kafka::KafkaOptions& kafka, const std::string& topic,
                                        std::size_t count, std::chrono::milliseconds deadline);
// The value of header `name` of `m`, or "(none)".
std::string HeaderValue(const kafka::Message& m, std::string_view name);
// Reads outcome records from a results topic (header runnel-result) until `count` arrived or the
// deadline passed.
std::vector<Outcome> ReadOutcomes(const kafka::KafkaOptions& kafka, const std::string& topic,
                                  std::size_t count, std::chrono::milliseconds deadline);
// Publishes events (payload, key) with fresh ids; returns the ids in order.
std::vector<std::string> PublishEvents(
    const kafka::KafkaOptions& kafka, const std::string& topic,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& events);
// True once the group's lag is 0 on every partition of `topic` (committed at the end offset, or
// an empty partition).
bool CommittedReachesEnd(const kafka::KafkaOptions& kafka, const std::string& topic, const std::string& group,
                         std::chrono::milliseconds deadline);

}  // namespace runnel::testing
