// Messages from peers that the stack could not use (decode.hpp's reasons), counted per socket and
// reason for runnel_protocol_errors_total{socket,reason} (docs/metrics.md), and logged at most
// once a second per peer and socket, so a peer that floods bad frames cannot flood the log.
//
// Sockets are named "dispatcher/<function>" (a dispatcher's ROUTER), "status" (the autoscaler's
// REP) and "control" (the scheduler's REP). Thread-safety: every method may be called from any
// thread (one mutex; only bad messages take it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runnel/core/decode.hpp"

namespace spdlog {
class logger;
}

namespace runnel {

class ProtocolErrors {
 public:
  using Clock = std::chrono::steady_clock;

  // Counts one error and logs it (warn) on `log`, unless this peer's last line for this socket is
  // less than a second old; the next line says how many were not logged. `peer` names the sender
  // as the socket knows it (a routing id, an address); any bytes.
  void Report(std::string_view socket, std::string_view peer, const DecodeError& error, spdlog::logger& log,
              Clock::time_point now = Clock::now());

  struct Count {
    std::string socket;
    std::string reason;
    std::int64_t count = 0;
    bool operator==(const Count&) const = default;
  };
  // Every (socket, reason) counted so far, sorted.
  std::vector<Count> Snapshot() const;
  // The errors counted on `socket`, all reasons.
  std::int64_t Total(std::string_view socket) const;

  // A peer's bytes as printable text for logs: the hex of a binary routing id.
  static std::string PeerName(std::string_view peer);

 private:
  static constexpr std::size_t kMaxPeers = 1024;
  struct Peer {
    Clock::time_point last{};
    std::int64_t suppressed = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::int64_t, std::less<>> counts_;
  std::map<std::pair<std::string, std::string>, Peer, std::less<>> peers_;
};

}  // namespace runnel
