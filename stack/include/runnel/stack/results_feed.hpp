// The results feed (docs/protocol.md §4.1): an XSUB/XPUB proxy on its own thread. Every dispatcher's
// PUB connects to the XSUB side (in-process); subscribers (`runnel results`, `invoke`, `upload`)
// connect to the XPUB side over TCP. It drops what a subscriber does not read in time.
// Thread-safety: construct and destroy from one thread; the proxy runs on its own.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace zmq {
class context_t;
}

namespace runnel::security {
class Guard;
}

namespace runnel::stack {

// The first frame the results feed sends every new subscriber (ZMQ_XPUB_WELCOME_MSG): receiving it
// tells a client its subscription is live.
inline constexpr const char* kResultsWelcome = "runnel.welcome";

class ResultsFeed {
 public:
  // Binds both sides, the subscribers' on `bind` (a ZeroMQ TCP endpoint; port * or 0: any free
  // one), made a CURVE server by `guard` unless it is null (socket "results"), and returns once
  // the proxy runs (or failed to start, then `on_failure` was or will be called). `on_failure` is
  // called on the proxy's thread when a fault ends it.
  // `local_bind`, when not empty, is bound too, without CURVE (security::BindLocal).
  ResultsFeed(zmq::context_t& ctx, const std::string& bind, security::Guard* guard,
              const std::string& local_bind, std::function<void(const std::string&)> on_failure);
  // Stops the proxy and joins its thread.
  ~ResultsFeed();  // NOLINT(bugprone-exception-escape): see the definition
  ResultsFeed(const ResultsFeed&) = delete;
  ResultsFeed& operator=(const ResultsFeed&) = delete;

  // Closes every subscriber connection on the TCP endpoint (it is bound again at once): those
  // allowed back reconnect through the guard, those whose join token was revoked are refused. A
  // subscriber misses the outcomes of the moment (the feed may drop outcomes, protocol §4.1).
  // Called by the thread that constructed the feed.
  void CutRemoteSubscribers();

  // The in-process endpoint (on the context given) that dispatchers publish into.
  static const char* PublishEndpoint();
  // The TCP endpoint subscribers connect to (endpoints.json `results`).
  const std::string& Endpoint() const { return endpoint_; }
  // The local endpoint when there is one, else Endpoint().
  const std::string& LocalEndpoint() const { return local_endpoint_; }

 private:
  void StartProxy();
  void StopProxy();

  struct Sockets;  // the XSUB and XPUB sockets: ZeroMQ stays out of this header
  zmq::context_t& ctx_;
  security::Guard* guard_;
  std::function<void(const std::string&)> on_failure_;
  std::unique_ptr<Sockets> sockets_;
  int proxies_ = 0;               // proxies started so far, for their control endpoints' names
  std::string control_endpoint_;  // the running proxy's
  std::string endpoint_;
  std::string local_endpoint_;
  std::atomic<bool> running_{true};
  std::atomic<bool> terminating_{false};
  std::thread thread_;
};

}  // namespace runnel::stack
