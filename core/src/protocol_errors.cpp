#include "runnel/core/protocol_errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace runnel {

std::string ProtocolErrors::PeerName(std::string_view peer) {
  const bool printable = !peer.empty() && std::all_of(peer.begin(), peer.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u < 0x7f;
  });
  if (printable) return std::string(peer.substr(0, 64));
  std::string out = "0x";
  for (const char c : peer.substr(0, 32)) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return out;
}

void ProtocolErrors::Report(std::string_view socket, std::string_view peer, const DecodeError& error,
                            spdlog::logger& log, Clock::time_point now) {
  std::int64_t suppressed = 0;
  {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(std::string(socket), std::string(DecodeErrcName(error.reason)));
    ++counts_[key];
    if (peers_.size() >= kMaxPeers) {
      std::erase_if(peers_,
                    [&](const auto& entry) { return now - entry.second.last >= std::chrono::seconds(1); });
      if (peers_.size() >= kMaxPeers) peers_.clear();  // a flood of peers: forget them rather than grow
    }
    Peer& p = peers_[std::make_pair(std::string(socket), std::string(peer))];
    if (p.last != Clock::time_point{} && now - p.last < std::chrono::seconds(1)) {
      ++p.suppressed;
      return;
    }
    p.last = now;
    suppressed = std::exchange(p.suppressed, 0);
  }
  if (suppressed > 0) {
    log.warn("{}: dropped a message from {} ({}): {} ({} more from this peer in the last second, not logged)",
             socket, PeerName(peer), DecodeErrcName(error.reason), error.message, suppressed);
  } else {
    log.warn("{}: dropped a message from {} ({}): {}", socket, PeerName(peer), DecodeErrcName(error.reason),
             error.message);
  }
}

std::vector<ProtocolErrors::Count> ProtocolErrors::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<Count> out;
  out.reserve(counts_.size());
  for (const auto& [key, n] : counts_) out.push_back({key.first, key.second, n});
  return out;
}

std::int64_t ProtocolErrors::Total(std::string_view socket) const {
  std::lock_guard lock(mu_);
  std::int64_t total = 0;
  for (const auto& [key, n] : counts_) {
    if (key.first == socket) total += n;
  }
  return total;
}

}  // namespace runnel
