// The dispatcher's side of docs/protocol.md §3 for worker tests: a real ZeroMQ ROUTER socket bound
// on an ephemeral TCP port, speaking to a real worker. Only what the tests need: receive messages
// with deadlines, answer HELLO with WELCOME, hand out TASKS, decode RESULTS.
//
// Thread-safety: one test thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/wire.hpp"

namespace runnel::testing {

class DispatcherPeer {
 public:
  struct Message {
    std::string identity;
    std::string command;
    std::vector<std::string> frames;  // after the command
    nlohmann::json Json() const {
      return frames.empty() ? nlohmann::json::object() : nlohmann::json::parse(frames[0]);
    }
  };

  DispatcherPeer() : socket_(ctx_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
  }

  std::string Endpoint() const { return socket_.get(zmq::sockopt::last_endpoint); }

  // Like a real dispatcher, the peer sends HEARTBEAT every kHeartbeat to each worker it heard from,
  // while it waits in Recv; a silent peer does not (to test the worker's reconnect).
  static constexpr std::chrono::milliseconds kHeartbeat{100};
  void SetSilent(bool silent) { silent_ = silent; }

  // The next message from any worker, or nullopt when none came before the deadline.
  std::optional<Message> Recv(std::chrono::milliseconds deadline) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (!silent_ && now - last_beat_ >= kHeartbeat) {
        last_beat_ = now;
        for (const auto& identity : identities_) Send(identity, wire::cmd::kHeartbeat);
      }
      std::vector<zmq::message_t> parts;
      if (zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        Message m;
        m.identity = parts.at(0).to_string();
        identities_.insert(m.identity);
        m.command = parts.size() > 1 ? parts[1].to_string() : "";
        for (std::size_t i = 2; i < parts.size(); ++i) m.frames.push_back(parts[i].to_string());
        seen_.push_back(m);
        return m;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      zmq::poll(&item, 1, std::min(left, kHeartbeat / 2));
    }
  }

  // The next message with `command`, skipping others (they stay in Seen()).
  std::optional<Message> Expect(std::string_view command, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto m = Recv(left);
      if (!m) return std::nullopt;
      if (m->command == command) return m;
    }
  }

  void Send(const std::string& identity, std::string_view command,
            const std::vector<std::string>& frames = {}) {
    std::vector<zmq::message_t> parts;
    parts.emplace_back(identity.data(), identity.size());
    parts.emplace_back(command.data(), command.size());
    for (const auto& f : frames) parts.emplace_back(f.data(), f.size());
    zmq::send_multipart(socket_, parts);
  }

  static nlohmann::json DefaultWelcome(const std::string& function) {
    return {{"v", 1},
            {"function", function},
            {"heartbeat_ms", 100},
            {"timeout_ms", 10000},
            {"params", nlohmann::json::object()},
            {"max_payload", 1 << 20},
            {"memory_mb", 0},
            {"output_dir", ""},
            {"concurrency", 0}};
  }

  // Waits for HELLO and answers WELCOME (DefaultWelcome with `overrides` merged in).
  std::optional<Message> Handshake(const std::string& function, const nlohmann::json& overrides = {},
                                   std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    auto hello = Expect(wire::cmd::kHello, deadline);
    if (!hello) return std::nullopt;
    nlohmann::json welcome = DefaultWelcome(function);
    if (overrides.is_object()) welcome.update(overrides);
    Send(hello->identity, wire::cmd::kWelcome, {welcome.dump()});
    return hello;
  }

  static wire::TaskHeader Task(std::uint64_t token, std::uint32_t timeout_ms = 0, Headers headers = {}) {
    wire::TaskHeader t;
    t.token = token;
    t.topic = "jobs";
    t.partition = 0;
    t.offset = static_cast<std::int64_t>(token);
    t.timeout_ms = timeout_ms;
    t.headers = std::move(headers);
    return t;
  }

  void SendTasks(const std::string& identity,
                 const std::vector<std::pair<wire::TaskHeader, std::string>>& tasks) {
    std::vector<std::string> frames;
    for (const auto& [header, payload] : tasks) {
      frames.push_back(wire::Encode(header));
      frames.push_back(payload);
    }
    Send(identity, wire::cmd::kTasks, frames);
  }

  struct Result {
    wire::ResultHeader header;
    std::string output;
  };
  static std::vector<Result> DecodeResults(const Message& m) {
    std::vector<Result> results;
    for (std::size_t i = 0; i + 1 < m.frames.size(); i += 2) {
      results.push_back({wire::DecodeResult(m.frames[i]), m.frames[i + 1]});
    }
    return results;
  }

  // Every message received so far, in order.
  const std::vector<Message>& Seen() const { return seen_; }

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
  std::vector<Message> seen_;
  std::set<std::string> identities_;
  bool silent_ = false;
  std::chrono::steady_clock::time_point last_beat_{};
};

}  // namespace runnel::testing
