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

#include "runnel/core/protocol_errors.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/security/tokens.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace runnel::security {

// Refusal reasons, as counted and as runnel_connections_refused_total's `reason` label.
inline constexpr std::string_view kRefusedNoCurve = "no-curve";            // a plain client
inline constexpr std::string_view kRefusedUnknownKey = "unknown-key";      // a key the stack does not admit
inline constexpr std::string_view kRefusedBadHandshake = "bad-handshake";  // e.g. the wrong server key
// The client hung up before the server saw its mechanism: a plain client does so once it has read
// that the server wants CURVE (which side sees the mismatch first is a race).
inline constexpr std::string_view kRefusedHungUp = "hung-up";
// A join token's key, revoked, expired, or for other functions.
inline constexpr std::string_view kRefusedToken = "token-refused";

class Guard {
 public:
  struct Options {
    KeyPair server;
    std::vector<AuthorizedKey> clients;  // admitted always
    // The state dir whose join tokens (TokenStore) are admitted while they are valid, re-read
    // when its tokens/ directory changes (checked at most every 100 ms). Empty: no tokens.
    std::filesystem::path token_state_dir;
    std::function<void(const std::string&)> on_failure;
  };

  // Binds the ZAP handler on `ctx` (one per context) and starts the thread. Throws runnel::Error
  // when CURVE is missing or the handler cannot bind.
  Guard(zmq::context_t& ctx, Options options);
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  // Makes `socket` a CURVE server with the stack's key, before it binds, and watches it; its
  // refusals are counted under `name` ("dispatcher/echo", "results", "control").
  void Secure(zmq::socket_t& socket, const std::string& name);

  // Counted as protocol errors are: per socket and reason.
  using Count = ProtocolErrors::Count;
  // Every (socket, reason) refused so far, sorted.
  std::vector<Count> Refused() const;

  const std::string& ServerKey() const;

  // Whether the connection whose ZMQ "User-Id" is `user` may still use the socket `domain`: false
  // once the join token it came in with is revoked or expired (true for every other admitted key).
  // Thread-safe; sockets ask it for what a connection sends after its handshake.
  bool StillAdmitted(const std::string& user, const std::string& domain) const;
  // StillAdmitted for the connection a message came on (its User-Id property); true for a message
  // without one (a plain socket, or an in-process one). `message` is a zmq_msg_t*.
  bool StillAdmitsSender(const void* message, const std::string& domain) const;
  // How many join tokens are revoked or expired now; it grows when one ends. A socket that cannot
  // drop one connection (the results feed's XPUB) drops all of them when it grows.
  std::uint64_t EndedTokens() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace runnel::security
