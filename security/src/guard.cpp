#include "runnel/security/guard.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/error.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/core/log.hpp"

namespace runnel::security {
namespace {

// The one ZAP endpoint libzmq asks, on the context of the socket that authenticates.
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr int kWatchedEvents = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
// Live connections remembered per socket, for the address of one that fails its handshake.
constexpr std::size_t kMaxPeers = 65'536;
// What a refusal's log line says when the client's address could not be read.
constexpr const char* kUnknownPeer = "an unknown address";
// The User-Id of a connection admitted by a join token: this, then the token's id.
constexpr std::string_view kTokenUserPrefix = "token:";

std::string PeerOf(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return kUnknownPeer;
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, text.data(), text.size());
    return fmt::format("{}:{}", text.data(), ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text.data(), text.size());
    return fmt::format("[{}]:{}", text.data(), ntohs(in6->sin6_port));
  }
  return "a non-IP address";
}

std::string Z85(std::string_view binary_key) {
  std::array<char, 41> text{};
  if (binary_key.size() != 32 ||
      zmq_z85_encode(text.data(), reinterpret_cast<const std::uint8_t*>(binary_key.data()), 32) == nullptr) {
    return "(not a 32-byte key)";
  }
  return text.data();
}

std::string Binary(const std::string& z85_key) {
  std::array<std::uint8_t, 32> bytes{};
  if (zmq_z85_decode(bytes.data(), z85_key.c_str()) == nullptr) {
    throw ConfigError(fmt::format("'{}' is not a CURVE public key", z85_key));
  }
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

class Guard::Loop {
 public:
  Loop(zmq::context_t& ctx, Options options)
      : ctx_(ctx), opt_(std::move(options)), zap_(ctx, zmq::socket_type::rep), wake_("security guard") {
    RequireCurve();
    for (const auto& key : opt_.clients) admitted_.emplace(Binary(key.public_key), key.name);
    zap_.set(zmq::sockopt::linger, 0);
    zap_.bind(kZapEndpoint);
    thread_ = std::thread([this] { Run(); });
  }

  ~Loop() {
    stop_.store(true);
    wake_.Notify();
    thread_.join();
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  void Secure(zmq::socket_t& socket, const std::string& name) {
    MakeServer(socket, opt_.server, name);
    const std::string endpoint = fmt::format("inproc://runnel-guard-monitor-{}", next_monitor_.fetch_add(1));
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), kWatchedEvents) != 0) {
      throw Error(fmt::format("{}: cannot watch the socket: {}", name, zmq_strerror(zmq_errno())), false);
    }
    auto watch = std::make_unique<Watch>(name, zmq::socket_t(ctx_, zmq::socket_type::pair));
    watch->events.set(zmq::sockopt::linger, 0);
    watch->events.connect(endpoint);
    {
      std::lock_guard lock(mu_);
      pending_.push_back(std::move(watch));
    }
    wake_.Notify();
  }

  std::vector<Count> Refused() const {
    std::lock_guard lock(mu_);
    std::vector<Count> out;
    out.reserve(counts_.size());
    for (const auto& [key, c] : counts_) out.push_back({key.first, key.second, c.count});
    return out;
  }

  const std::string& ServerKey() const { return opt_.server.public_key; }

  std::uint64_t EndedTokens() {
    std::lock_guard lock(tokens_mu_);
    RefreshTokens();
    const auto now = NowMs();
    return static_cast<std::uint64_t>(std::count_if(tokens_.begin(), tokens_.end(), [&](const auto& entry) {
      const TokenRecord& r = entry.second;
      return r.revoked || (r.expires_ms != 0 && now >= r.expires_ms);
    }));
  }

  bool StillAdmitted(const std::string& user, const std::string& domain) {
    if (!user.starts_with(kTokenUserPrefix)) return true;
    const std::string id = user.substr(kTokenUserPrefix.size());
    std::lock_guard lock(tokens_mu_);
    RefreshTokens();
    for (const auto& [key, record] : tokens_) {
      if (record.id == id) return record.Admits(domain, NowMs());
    }
    return false;
  }

 private:
  struct Watch {
    Watch(std::string n, zmq::socket_t s) : name(std::move(n)), events(std::move(s)) {}
    std::string name;
    zmq::socket_t events;
    std::map<int, std::string> peers;  // fd -> address, from ACCEPTED to DISCONNECTED
    // The handshake that just failed; its connection's DISCONNECTED follows it at once (one I/O
    // thread emits both, in order) and names the address.
    std::optional<std::pair<std::string_view, std::string>> failed;
    bool stopped = false;
  };

  // The token whose key is `binary_key`, after re-reading the tokens when they changed.
  std::optional<TokenRecord> FindToken(const std::string& binary_key) {
    std::lock_guard lock(tokens_mu_);
    RefreshTokens(/*always=*/true);  // a handshake: a token made a moment ago must work
    const auto it = tokens_.find(binary_key);
    if (it == tokens_.end()) return std::nullopt;
    return it->second;
  }

  // Under tokens_mu_. A stat of the directory (at most every 100 ms unless `always`); the records
  // again when its modification time moved (a token created or revoked renames a file into it).
  void RefreshTokens(bool always = false) {
    if (opt_.token_state_dir.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    if (!always && now - tokens_checked_ < std::chrono::milliseconds(100)) return;
    tokens_checked_ = now;
    std::error_code ec;
    const TokenStore store(opt_.token_state_dir);
    const auto mtime = std::filesystem::last_write_time(store.Dir(), ec);
    if (ec || mtime == tokens_mtime_) return;
    tokens_mtime_ = mtime;
    std::map<std::string, TokenRecord> fresh;
    for (auto& record : store.List()) {
      fresh.emplace(Binary(record.public_key), std::move(record));
    }
    tokens_ = std::move(fresh);
  }

  struct Tally {
    std::int64_t count = 0;
    std::int64_t unlogged = 0;
    std::chrono::steady_clock::time_point last_line{};
    bool last_line_unknown = false;  // the last line logged could not name the client's address
  };

  void Run() {
    try {
      while (!stop_.load()) {
        {
          std::lock_guard lock(mu_);
          for (auto& w : pending_) watches_.push_back(std::move(w));
          pending_.clear();
        }
        std::vector<zmq::pollitem_t> items;
        items.push_back({zap_.handle(), 0, ZMQ_POLLIN, 0});
        items.push_back({nullptr, wake_.Fd(), ZMQ_POLLIN, 0});
        for (const auto& w : watches_) items.push_back({w->events.handle(), 0, ZMQ_POLLIN, 0});
        zmq::poll(items, std::chrono::milliseconds(-1));
        if ((items[1].revents & ZMQ_POLLIN) != 0) wake_.Drain();
        if ((items[0].revents & ZMQ_POLLIN) != 0) AnswerZap();
        for (std::size_t i = 0; i < watches_.size(); ++i) {
          if ((items[i + 2].revents & ZMQ_POLLIN) != 0) ReadEvents(*watches_[i]);
        }
        std::erase_if(watches_, [](const auto& w) { return w->stopped; });
      }
    } catch (const std::exception& e) {
      log::kSecurity->critical("security guard: stopped by an error: {} (no new client is admitted)",
                               e.what());
      if (opt_.on_failure) opt_.on_failure(e.what());
    }
  }

  // One ZAP request, one reply (RFC 27): 200 with the key's name as User-Id, or 400.
  void AnswerZap() {
    std::vector<zmq::message_t> request;
    if (!zmq::recv_multipart(zap_, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
    const auto frame = [&](std::size_t i) {
      return i < request.size() ? request[i].to_string() : std::string();
    };
    const std::string request_id = frame(1);
    const std::string domain = frame(2);
    const std::string address = frame(3);
    std::string code = "400";
    std::string text;
    std::string user;
    if (frame(0) == "1.0" && frame(5) == "NULL" && domain.ends_with(kLocalDomainSuffix)) {
      code = "200";  // a BindLocal listener: the private directory is the check (curve.hpp)
      text = "OK";
      user = "local";
    } else if (request.size() < 7 || frame(0) != "1.0" || frame(5) != "CURVE") {
      code = "500";
      text = "not a ZAP 1.0 CURVE request";
      log::kSecurity->error("{}: a ZAP request the guard does not handle (mechanism '{}')", domain, frame(5));
    } else if (const auto it = admitted_.find(frame(6)); it != admitted_.end()) {
      code = "200";
      text = "OK";
      user = it->second;
    } else if (const auto token = FindToken(frame(6))) {
      if (token->Admits(domain, NowMs())) {
        code = "200";
        text = "OK";
        user = std::string(kTokenUserPrefix) + token->id;
      } else {
        text = "token refused";
        const char* why = token->revoked                                           ? "was revoked"
                          : token->expires_ms != 0 && NowMs() >= token->expires_ms ? "has expired"
                                                                                   : "is not for this socket";
        Refuse(domain, kRefusedToken, address, fmt::format("join token {} {}", token->id, why));
      }
    } else {
      text = "unknown key";
      Refuse(domain, kRefusedUnknownKey, address,
             fmt::format("its key {} is not admitted (add it to security.clients)", Z85(frame(6))));
    }
    std::array<zmq::const_buffer, 6> reply = {zmq::str_buffer("1.0"), zmq::buffer(request_id),
                                              zmq::buffer(code),      zmq::buffer(text),
                                              zmq::buffer(user),      zmq::str_buffer("")};
    (void)zmq::send_multipart(zap_, reply, zmq::send_flags::dontwait);
  }

  void ReadEvents(Watch& w) {
    for (;;) {
      std::vector<zmq::message_t> event;
      if (!zmq::recv_multipart(w.events, std::back_inserter(event), zmq::recv_flags::dontwait)) return;
      if (event.empty() || event[0].size() < 6) continue;
      std::uint16_t id = 0;
      std::uint32_t value = 0;
      std::memcpy(&id, event[0].data(), sizeof(id));
      std::memcpy(&value, static_cast<const char*>(event[0].data()) + sizeof(id), sizeof(value));
      const int fd = static_cast<int>(value);
      switch (id) {
        case ZMQ_EVENT_ACCEPTED:
          if (w.peers.size() >= kMaxPeers) w.peers.clear();
          w.peers[fd] = PeerOf(fd);
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
          if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
            w.failed.emplace(kRefusedNoCurve, "it does not use CURVE");
          } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
            w.failed.emplace(kRefusedBadHandshake, "its handshake does not decrypt (the wrong server key?)");
          } else {
            w.failed.emplace(kRefusedBadHandshake, fmt::format("ZMTP protocol error 0x{:08x}", value));
          }
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
          if (fd == EPIPE || fd == ECONNRESET) {
            w.failed.emplace(kRefusedHungUp, "it hung up during the handshake (a client without CURVE does)");
          } else {
            w.failed.emplace(kRefusedBadHandshake, fmt::format("its handshake failed: {}", zmq_strerror(fd)));
          }
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          w.failed.reset();  // refused by the ZAP handler, which counted it with its key
          break;
        case ZMQ_EVENT_DISCONNECTED: {
          const auto it = w.peers.find(fd);
          const std::string peer = it != w.peers.end() ? it->second : std::string(kUnknownPeer);
          if (it != w.peers.end()) w.peers.erase(it);
          if (w.failed) Refuse(w.name, w.failed->first, peer, w.failed->second);
          w.failed.reset();
          break;
        }
        case ZMQ_EVENT_MONITOR_STOPPED:
          w.stopped = true;
          return;
        default:
          break;
      }
    }
  }

  void Refuse(const std::string& socket, std::string_view reason, const std::string& peer,
              const std::string& why) {
    const auto now = std::chrono::steady_clock::now();
    std::int64_t unlogged = 0;
    {
      std::lock_guard lock(mu_);
      Tally& t = counts_[{socket, std::string(reason)}];
      ++t.count;
      // One line a second per socket and reason; but a line that could name no address (the
      // client was gone before its address was read) does not hide the next one that can.
      const bool unknown = peer == kUnknownPeer;
      if (t.last_line != std::chrono::steady_clock::time_point{} &&
          now - t.last_line < std::chrono::seconds(1) && !(t.last_line_unknown && !unknown)) {
        ++t.unlogged;
        return;
      }
      t.last_line = now;
      t.last_line_unknown = unknown;
      unlogged = std::exchange(t.unlogged, 0);
    }
    if (unlogged > 0) {
      log::kSecurity->warn(
          "{}: refused a client from {} ({}): {} ({} more refused in the last second, not logged)", socket,
          peer, reason, why, unlogged);
    } else {
      log::kSecurity->warn("{}: refused a client from {} ({}): {}", socket, peer, reason, why);
    }
  }

  zmq::context_t& ctx_;
  Options opt_;
  std::map<std::string, std::string> admitted_;  // binary public key -> name
  std::mutex tokens_mu_;
  std::map<std::string, TokenRecord> tokens_;  // binary public key -> record, under tokens_mu_
  std::chrono::steady_clock::time_point tokens_checked_{};
  std::filesystem::file_time_type tokens_mtime_{};
  zmq::socket_t zap_;
  EventNotifier wake_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_monitor_{0};
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Watch>> pending_;                  // under mu_
  std::map<std::pair<std::string, std::string>, Tally> counts_;  // under mu_
  std::vector<std::unique_ptr<Watch>> watches_;                  // the thread's own
  std::thread thread_;
};

Guard::Guard(zmq::context_t& ctx, Options options) : loop_(std::make_unique<Loop>(ctx, std::move(options))) {}
Guard::~Guard() = default;
void Guard::Secure(zmq::socket_t& socket, const std::string& name) { loop_->Secure(socket, name); }
std::vector<Guard::Count> Guard::Refused() const { return loop_->Refused(); }
const std::string& Guard::ServerKey() const { return loop_->ServerKey(); }
bool Guard::StillAdmitted(const std::string& user, const std::string& domain) const {
  return loop_->StillAdmitted(user, domain);
}
std::uint64_t Guard::EndedTokens() const { return loop_->EndedTokens(); }
bool Guard::StillAdmitsSender(const void* message, const std::string& domain) const {
  const char* user = zmq_msg_gets(static_cast<const zmq_msg_t*>(message), "User-Id");
  return user == nullptr || loop_->StillAdmitted(user, domain);
}

}  // namespace runnel::security
