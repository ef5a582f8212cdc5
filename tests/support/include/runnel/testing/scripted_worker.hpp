// The worker side of docs/protocol.md §3, scripted: a DEALER socket that a test drives step by step,
// to put a real dispatcher (in the test's process) in states a real worker reaches only by chance (a
// reconnect, tasks that arrive after a drain, results from a connection that does not hold them).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <zmq.hpp>

namespace runnel::testing {

class ScriptedWorker {
 public:
  ScriptedWorker(zmq::context_t& ctx, const std::string& endpoint);

  // Sends `command` with `frames` after it (fails the test if it cannot).
  void Send(std::string_view command, const std::vector<std::string>& frames = {});

  // Sends HEARTBEAT if the last one is kBeat old: a worker the test waits on must not fall silent.
  void Beat();

  // The frames of the next message whose command is `command` (others are skipped), or empty.
  // Beats while it waits.
  std::vector<std::string> Expect(std::string_view command, std::chrono::milliseconds deadline);

  // The tasks of TASKS messages (task header, payload) until `count` came; fewer if the deadline
  // passed first.
  std::vector<std::pair<std::string, std::string>> TakeTasks(std::size_t count,
                                                             std::chrono::milliseconds deadline);

  // RESULTS answering one task (its header and payload frames): ok, the payload echoed.
  void Answer(const std::pair<std::string, std::string>& task);

 private:
  static constexpr std::chrono::milliseconds kBeat{50};  // well within a 200 ms heartbeat
  zmq::socket_t socket_;
  std::chrono::steady_clock::time_point last_beat_{};
};

}  // namespace runnel::testing
