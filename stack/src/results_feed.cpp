#include "runnel/stack/results_feed.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <utility>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/failpoints.hpp"
#include "runnel/core/log.hpp"
#include "runnel/security/curve.hpp"
#include "runnel/security/guard.hpp"

namespace runnel::stack {
namespace {

constexpr const char* kResultsInproc = "inproc://runnel-results";
constexpr const char* kProxyControl = "inproc://runnel-results-control";
constexpr int kResultsQueue = 10'000;

}  // namespace

struct ResultsFeed::Sockets {
  explicit Sockets(zmq::context_t& ctx)
      : xsub(ctx, zmq::socket_type::xsub), xpub(ctx, zmq::socket_type::xpub) {}
  zmq::socket_t xsub;
  zmq::socket_t xpub;
};

ResultsFeed::ResultsFeed(zmq::context_t& ctx, const std::string& bind, security::Guard* guard,
                         const std::string& local_bind, std::function<void(const std::string&)> on_failure)
    : ctx_(ctx), guard_(guard), on_failure_(std::move(on_failure)), sockets_(std::make_unique<Sockets>(ctx)) {
  zmq::socket_t& xsub = sockets_->xsub;
  zmq::socket_t& xpub = sockets_->xpub;
  xsub.bind(kResultsInproc);
  xpub.set(zmq::sockopt::linger, 0);
  // Per subscriber, outcomes queued before it misses some (docs/protocol.md §4.1): room for a
  // burst of a busy stack (about 3 MB of small outcomes) while the subscriber is descheduled.
  xpub.set(zmq::sockopt::sndhwm, kResultsQueue);
  xsub.set(zmq::sockopt::rcvhwm, kResultsQueue);
  // Every new subscriber gets this first: receiving it tells a client its subscription is live.
  xpub.set(zmq::sockopt::xpub_welcome_msg, kResultsWelcome);
  if (guard != nullptr) guard->Secure(xpub, "results");
  xpub.bind(bind);
  endpoint_ = xpub.get(zmq::sockopt::last_endpoint);
  local_endpoint_ = endpoint_;
  if (!local_bind.empty()) {
    try {
      security::BindLocal(xpub, local_bind);
      local_endpoint_ = local_bind;
    } catch (const zmq::error_t& e) {  // a file system without Unix sockets, say: TCP serves all
      log::kCli->warn("results feed: cannot bind {} ({}); subscribers on this host use {}", local_bind,
                      e.what(), endpoint_);
    }
  }
  StartProxy();
}

void ResultsFeed::StartProxy() {
  // A control endpoint of its own per proxy: an inproc name is released only after its socket is.
  const std::string control_endpoint = fmt::format("{}-{}", kProxyControl, ++proxies_);
  const std::string ready_endpoint = control_endpoint + "-ready";
  zmq::socket_t ready(ctx_, zmq::socket_type::pair);
  ready.bind(ready_endpoint);
  running_.store(true);
  terminating_.store(false);
  control_endpoint_ = control_endpoint;
  thread_ = std::thread([this, control_endpoint, ready_endpoint] {
    // No end of this thread goes unnoticed: without the proxy no outcome reaches a subscriber.
    std::string failure;
    bool signalled = false;
    // StartProxy waits for this, whether the proxy starts or not.
    const auto signal_up = [&] {
      if (std::exchange(signalled, true)) return;
      zmq::socket_t signal(ctx_, zmq::socket_type::pair);
      signal.connect(ready_endpoint);
      signal.send(zmq::str_buffer("up"), zmq::send_flags::none);
    };
    try {
      zmq::socket_t control(ctx_, zmq::socket_type::pair);
      control.bind(control_endpoint);
      signal_up();
      failpoint::Hit("results.feed");
      zmq::proxy_steerable(sockets_->xsub, sockets_->xpub, zmq::socket_ref(), control);
      if (!terminating_.load()) failure = "its proxy ended without being asked to stop";
    } catch (const std::exception& e) {
      failure = e.what();
    }
    running_.store(false);
    try {
      signal_up();
    } catch (const std::exception&) {
      // Only when the proxy failed before it could signal, and then the context is unusable.
    }
    if (failure.empty()) return;
    log::kCli->critical("results feed: stopped by an error: {}", failure);
    on_failure_(failure);
  });
  zmq::message_t up;
  (void)ready.recv(up);
}

// NOLINTNEXTLINE(bugprone-exception-escape): zmq failing to reach its own proxy is fatal (terminate)
void ResultsFeed::StopProxy() {
  if (!thread_.joinable()) return;
  terminating_.store(true);
  zmq::socket_t control(ctx_, zmq::socket_type::pair);
  control.set(zmq::sockopt::linger, 0);
  control.connect(control_endpoint_);
  // Without a proxy (it failed) nothing reads this: never block on it.
  while (running_.load() && !control.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::dontwait)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  thread_.join();
}

// NOLINTNEXTLINE(bugprone-exception-escape): as StopProxy
ResultsFeed::~ResultsFeed() { StopProxy(); }

void ResultsFeed::CutRemoteSubscribers() {
  // The proxy stops (outcomes wait in the XSUB side meanwhile), the TCP listener goes with every
  // connection it accepted, and comes back on the same port: subscribers reconnect by themselves,
  // through the guard again. The local ipc:// listener is not touched.
  StopProxy();
  zmq::socket_t& xpub = sockets_->xpub;
  try {
    xpub.unbind(endpoint_);
  } catch (const zmq::error_t& e) {
    log::kCli->warn("results feed: cannot unbind {}: {}", endpoint_, e.what());
  }
  // The socket's options are the local listener's now (BindLocal): CURVE again for this one.
  if (guard_ != nullptr) guard_->Secure(xpub, "results");
  // The old listener closes on libzmq's I/O thread: its port may stay taken for a moment.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    try {
      xpub.bind(endpoint_);
      break;
    } catch (const zmq::error_t& e) {
      if (e.num() != EADDRINUSE || std::chrono::steady_clock::now() >= until) {
        log::kCli->critical("results feed: cannot bind {} again: {}", endpoint_, e.what());
        on_failure_(
            fmt::format("cannot bind {} again after cutting its subscribers: {}", endpoint_, e.what()));
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  StartProxy();
}

const char* ResultsFeed::PublishEndpoint() { return kResultsInproc; }

}  // namespace runnel::stack
