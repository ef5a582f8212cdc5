#include "runnel/stack/control_server.hpp"

#include <fmt/format.h>

#include <atomic>
#include <exception>
#include <thread>
#include <utility>
#include <zmq.hpp>

#include "runnel/core/error.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/log.hpp"
#include "runnel/security/guard.hpp"

namespace runnel::stack {
namespace {

constexpr const char* kSocket = "control";
constexpr const char* kJobsDomain = "jobs";

// Who sent a request, for the protocol-error log: the TCP peer's address ("?" over ipc or inproc).
std::string PeerAddress(zmq::message_t& request) {
  try {
    return request.gets("Peer-Address");
  } catch (const zmq::error_t&) {
    return "?";
  }
}

}  // namespace

class ControlServer::Loop {
 public:
  explicit Loop(Options o) : opt_(std::move(o)), socket_(*opt_.zmq, zmq::socket_type::rep) {
    if (!opt_.protocol_errors) opt_.protocol_errors = std::make_shared<ProtocolErrors>();
    socket_.set(zmq::sockopt::linger, 0);
    if (opt_.guard != nullptr) opt_.guard->Secure(socket_, kSocket);
    socket_.bind(opt_.bind);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Run(); });
  }
  ~Loop() {
    stop_.store(true);
    wake_.Notify();
    thread_.join();
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  const std::string& Endpoint() const { return endpoint_; }

 private:
  void Run() {
    // No end of this thread goes unnoticed: without it `runnel status`, `trace`, `invoke` and
    // `job` get no answer, so a fault is the stack's to handle (runnel up exits).
    std::string failure;
    try {
      while (!stop_.load()) {
        failpoint::Hit("control.loop");
        zmq::pollitem_t items[] = {{nullptr, wake_.Fd(), ZMQ_POLLIN, 0},
                                   {socket_.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 2, std::chrono::milliseconds(-1));
        if (items[0].revents & ZMQ_POLLIN) wake_.Drain();
        if (items[1].revents & ZMQ_POLLIN) AnswerOne();
      }
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "an unknown exception";
    }
    if (failure.empty()) return;
    log_->critical("control socket: stopped by an error: {}", failure);
    if (opt_.on_failure) opt_.on_failure(failure);
  }

  void AnswerOne() {
    zmq::message_t request;
    if (!socket_.recv(request, zmq::recv_flags::dontwait)) return;
    const std::string reply = ReplyTo(request);
    try {
      socket_.send(zmq::buffer(reply), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      log_->warn("control socket: could not send a reply: {}", e.what());
    }
  }

  std::string ReplyTo(zmq::message_t& request) {
    if (opt_.guard != nullptr && !opt_.guard->StillAdmitsSender(request.handle(), kSocket)) {
      return ControlErrorReply("the join token of this client was revoked or has expired");
    }
    const auto decoded = DecodeControlRequest(request.to_string_view());
    if (!decoded) {
      opt_.protocol_errors->Report(kSocket, PeerAddress(request), decoded.error(), *log_);
      return ControlErrorReply(decoded.error().message);
    }
    const ControlRequest& r = *decoded;
    if (r.IsJobOp() && opt_.guard != nullptr &&
        !opt_.guard->StillAdmitsSender(request.handle(), kJobsDomain)) {
      return ControlErrorReply(fmt::format(
          "'{}': this client's join token is limited to functions; job control needs a token made "
          "without --function",
          OpName(r.op)));
    }
    try {
      return Answer(r);
    } catch (const std::exception& e) {
      log_->error("control request {}: {}", Encode(r), e.what());
      return ControlErrorReply(fmt::format("the stack could not answer: {}", e.what()));
    }
  }

  std::string Answer(const ControlRequest& r) const {
    const auto& h = opt_.handlers;
    switch (r.op) {
      case ControlRequest::Op::kStatus:
        if (h.status) return ControlOkReply(h.status());
        break;
      case ControlRequest::Op::kTrace:
      case ControlRequest::Op::kOutcome:
        if (h.events) return h.events(r);
        break;
      case ControlRequest::Op::kJobRun:
      case ControlRequest::Op::kJobStatus:
      case ControlRequest::Op::kJobList:
        if (h.jobs) return h.jobs(r);
        break;
    }
    return ControlErrorReply(fmt::format("'{}' is not answered by this stack", OpName(r.op)));
  }

  Options opt_;
  std::shared_ptr<spdlog::logger> log_ = log::kCli.Logger();
  zmq::socket_t socket_;
  std::string endpoint_;
  EventNotifier wake_{"the control socket"};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

ControlServer::ControlServer(Options options) : loop_(std::make_unique<Loop>(std::move(options))) {}
ControlServer::~ControlServer() = default;
const std::string& ControlServer::Endpoint() const { return loop_->Endpoint(); }

}  // namespace runnel::stack
