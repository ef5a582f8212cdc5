// The stack's control socket (docs/protocol.md §4.3): one REP socket on a thread of its own that
// answers the typed ControlRequest (runnel/core/control_messages.hpp) for every part of the stack:
// `status` from the autoscaler's snapshot, `trace` and `outcome` from telemetry, the job ops from
// the scheduler. It is a CURVE server like every socket the stack binds (socket "control"); a
// client whose join token ended gets an error reply, and one whose token is limited to functions
// may not use the job ops (security domain "jobs"). Every request gets exactly one reply, whatever
// its bytes: one that does not decode is answered with why and counted (socket "control").
// Thread-safety: construct and destroy from one thread; the handlers are called on the server's
// thread and must be thread-safe and quick (no handler blocks on the network).
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "runnel/core/control_messages.hpp"
#include "runnel/core/protocol_errors.hpp"

namespace zmq {
class context_t;
}

namespace runnel::security {
class Guard;
}

namespace runnel::stack {

class ControlServer {
 public:
  struct Handlers {
    std::function<nlohmann::json()> status;                    // the stack's status JSON
    std::function<std::string(const ControlRequest&)> events;  // trace, outcome: the whole reply
    std::function<std::string(const ControlRequest&)> jobs;    // the job ops: the whole reply
  };
  struct Options {
    zmq::context_t* zmq = nullptr;           // must outlive the server
    std::string bind = "tcp://127.0.0.1:*";  // port * or 0: any free one
    security::Guard* guard = nullptr;        // null: plain (security.curve: false)
    std::shared_ptr<ProtocolErrors> protocol_errors;
    Handlers handlers;
    // Called on the server's thread, once, when a fault ends it (the reason as text).
    std::function<void(const std::string&)> on_failure;
  };

  // Binds (throws zmq::error_t when the address cannot be bound) and starts the thread.
  explicit ControlServer(Options options);
  // Stops the thread (a request being answered is answered first) and closes the socket.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // The endpoint as bound (tcp://HOST:PORT), for endpoints.json `control`.
  const std::string& Endpoint() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace runnel::stack
