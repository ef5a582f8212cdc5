// The gate of every socket a stack binds (docs/protocol.md §6). One thread per stack runs:
//
//  - the ZAP handler (ZeroMQ RFC 27) on the stack's ZeroMQ context: a CURVE client whose public key
//    the stack admits gets in, under that key's name as its ZMQ "User-Id" property; any other key
//    is refused (status 400) before the socket sees one byte from it;
//  - a monitor of each socket it secured: a client that is refused (no CURVE, a wrong server key,
//    an unknown key) is counted per socket and reason and logged with its address, at most one
//    line a second per socket and reason.
//
// A refused client gets nothing: no reply, no WELCOME, no outcome. The guard fails closed: if its
// thread ends, ZAP requests go unanswered and no new client gets in; `on_failure` is called.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runnel/security/key_files.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace runnel::security {

// Refusal reasons, as counted and as runnel_connections_refused_total's `reason` label.
inline constexpr std::string_view kRefusedNoCurve = "no-curve";          // a plain client
inline constexpr std::string_view kRefusedUnknownKey = "unknown-key";    // a key the stack does not admit
inline constexpr std::string_view kRefusedBadHandshake = "bad-handshake";  // e.g. the wrong server key
// The client hung up before the server saw its mechanism: a plain client does so once it has read
// that the server wants CURVE (which side sees the mismatch first is a race).
inline constexpr std::string_view kRefusedHungUp = "hung-up";

class Guard {
 public:
  struct Options {
    KeyPair server;
    std::vector<AuthorizedKey> clients;  // the only keys admitted
    std::function<void(const std::string&)> on_failure;
  };

  // Binds the ZAP handler on `ctx` (one per context) and starts the thread. Throws runnel::Error
  // when CURVE is missing or the handler cannot bind.
  Guard(zmq::context_t& ctx, Options options);
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  // Makes `socket` a CURVE server with the stack's key, before it binds, and watches it; its
  // refusals are counted under `name` ("dispatcher/echo", "results", "status", "control").
  void Secure(zmq::socket_t& socket, const std::string& name);

  struct Count {
    std::string socket;
    std::string reason;
    std::int64_t count = 0;
    bool operator==(const Count&) const = default;
  };
  // Every (socket, reason) refused so far, sorted.
  std::vector<Count> Refused() const;

  const std::string& ServerKey() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace runnel::security
