#include "control_request.hpp"

#include <fmt/format.h>
#include <signal.h>

#include <cerrno>
#include <zmq.hpp>

#include "kafka_client.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/json.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/security/tokens.hpp"

namespace runnel::cli {

StackAccess StackAccess::Local(const StateDir& state) {
  StackAccess access;
  access.endpoints = state.ReadEndpoints();
  access.keys = security::LocalClientKeysFor(state.Root(), access.endpoints);
  // On the stack's host its results feed is also an ipc:// endpoint, without CURVE (protocol §6).
  if (const auto local = access.endpoints.value("local", nlohmann::json::object()).value("results", "");
      !local.empty()) {
    access.endpoints["results"] = local;
  }
  access.where = state.Root().string();
  return access;
}

StackAccess StackAccess::Joined(const std::string& token_file) {
  auto token = security::ReadJoinToken(token_file);
  StackAccess access;
  access.endpoints = std::move(token.endpoints);
  access.keys = std::move(token.keys);
  access.where = token_file;
  return access;
}

StackAccess StackAccess::Resolve(const CommonOptions& common) {
  KafkaClientOptions kafka = ResolveKafkaClient(common);
  StackAccess access;
  if (!common.join.empty()) {
    access = Joined(common.join);
  } else {
    try {
      access = Local(StateDir::Resolve(common.state_dir));
    } catch (const NoStackError&) {
      if (kafka.bootstrap.empty()) throw;
      access.where = "--kafka " + kafka.bootstrap;  // Kafka only: no stack on this host
    }
  }
  if (!kafka.bootstrap.empty()) access.endpoints["kafka"] = kafka.bootstrap;
  access.kafka_options = std::move(kafka.options);
  access.kafka_secrets = std::move(kafka.secrets);
  return access;
}

void AddJoinOption(CLI::App* command, CommonOptions& common) {
  command
      ->add_option("--join", common.join,
                   "Reach the stack with a join token from `runnel token create` (its endpoints and keys) "
                   "instead of a local state dir: from another host")
      ->check(CLI::ExistingFile);
}

ControlReply AskStack(const StackAccess& stack, const ControlRequest& request,
                      std::chrono::milliseconds timeout) {
  const auto& endpoints = stack.endpoints;
  if (!endpoints.contains("control")) {
    throw NoStackError(fmt::format("no running stack in {} (start one with 'runnel up')", stack.where));
  }
  const int pid = endpoints.value("pid", 0);
  if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
    throw NoStackError(fmt::format("the stack in {} (pid {}) is not running; its endpoints.json is stale",
                                   stack.where, pid));
  }
  const std::string endpoint = endpoints["control"].get<std::string>();
  zmq::context_t ctx(1);
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  if (stack.keys) security::MakeClient(req, *stack.keys);
  req.connect(endpoint);
  const std::string text = Encode(request);
  req.send(zmq::buffer(text), zmq::send_flags::none);
  zmq::pollitem_t items[] = {{req.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, timeout);
  zmq::message_t reply;
  if ((items[0].revents & ZMQ_POLLIN) == 0 || !req.recv(reply, zmq::recv_flags::dontwait)) {
    throw Error(
        fmt::format("the stack (pid {}) did not answer at {} within {} ms", pid, endpoint, timeout.count()),
        true);
  }
  auto answer = DecodeControlReply(reply.to_string_view());
  if (!answer) throw Error(answer.error().message, false);
  return std::move(*answer);
}

nlohmann::json AskStackOk(const StackAccess& stack, const ControlRequest& request,
                          std::chrono::milliseconds timeout) {
  auto reply = AskStack(stack, request, timeout);
  if (!reply.ok) throw ConfigError(reply.error);
  return std::move(reply.body);
}

nlohmann::json QueryStatus(const StackAccess& stack, std::chrono::milliseconds timeout) {
  auto status = AskStackOk(stack, ControlRequest::Status(), timeout);
  if (!status.contains("functions") || !status["functions"].is_array()) {
    throw Error("the stack's answer is not a status: " + JsonText(status), false);
  }
  return status;
}

}  // namespace runnel::cli
