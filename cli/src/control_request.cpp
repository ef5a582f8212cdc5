#include "control_request.hpp"

#include <signal.h>

#include <fmt/format.h>

#include <cerrno>
#include <zmq.hpp>

#include "runnel/core/error.hpp"

namespace runnel::cli {

nlohmann::json AskStack(const StateDir& state, std::string_view request, double timeout_s) {
  const auto endpoints = state.ReadEndpoints();
  if (!endpoints.contains("status")) {
    throw ConfigError(
        fmt::format("no running stack with an autoscaler in {} (start one with 'runnel up')", state.Root().string()));
  }
  const int pid = endpoints.value("pid", 0);
  if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
    throw ConfigError(
        fmt::format("the stack in {} (pid {}) is not running; its endpoints.json is stale", state.Root().string(), pid));
  }
  const std::string endpoint = endpoints["status"].get<std::string>();
  zmq::context_t ctx(1);
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect(endpoint);
  req.send(zmq::buffer(request), zmq::send_flags::none);
  zmq::pollitem_t items[] = {{req.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000)));
  if ((items[0].revents & ZMQ_POLLIN) == 0) {
    throw Error(fmt::format("the stack (pid {}) did not answer at {} within {} s", pid, endpoint, timeout_s), true);
  }
  zmq::message_t reply;
  (void)req.recv(reply);
  auto answer = nlohmann::json::parse(reply.to_string_view(), nullptr, false);
  if (!answer.is_object()) throw Error("the stack's answer is not a JSON object: " + reply.to_string(), false);
  return answer;
}

}  // namespace runnel::cli
