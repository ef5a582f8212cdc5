#include "runnel/testing/scripted_worker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <zmq_addon.hpp>

#include "runnel/core/wire.hpp"

namespace runnel::testing {

ScriptedWorker::ScriptedWorker(zmq::context_t& ctx, const std::string& endpoint)
    : socket_(ctx, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

void ScriptedWorker::Send(std::string_view command, const std::vector<std::string>& frames) {
  std::vector<zmq::message_t> parts;
  parts.emplace_back(command.data(), command.size());
  for (const auto& f : frames) parts.emplace_back(f.data(), f.size());
  ASSERT_TRUE(zmq::send_multipart(socket_, parts));
}

void ScriptedWorker::Beat() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_beat_ < kBeat) return;
  last_beat_ = now;
  Send(wire::cmd::kHeartbeat, {R"({"in_flight":0})"});
}

std::vector<std::string> ScriptedWorker::Expect(std::string_view command,
                                                std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    Beat();
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::min(left, kBeat));
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
    if (parts.empty() || parts[0].to_string_view() != command) continue;
    std::vector<std::string> frames;
    for (const auto& part : parts) frames.push_back(part.to_string());
    return frames;
  }
}

std::vector<std::pair<std::string, std::string>> ScriptedWorker::TakeTasks(
    std::size_t count, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::vector<std::pair<std::string, std::string>> tasks;
  while (tasks.size() < count) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    const auto message = left.count() > 0 ? Expect(wire::cmd::kTasks, left) : std::vector<std::string>{};
    if (message.empty()) break;
    for (std::size_t i = 1; i + 1 < message.size(); i += 2) tasks.emplace_back(message[i], message[i + 1]);
  }
  return tasks;
}

void ScriptedWorker::Answer(const std::pair<std::string, std::string>& task) {
  wire::ResultHeader result;
  result.token = wire::DecodeTask(task.first).token;
  Send(wire::cmd::kResults, {wire::Encode(result), task.second});
}

}  // namespace runnel::testing
