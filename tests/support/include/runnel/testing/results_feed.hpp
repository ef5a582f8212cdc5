// A plain libzmq subscriber on a running stack's results feed (docs/protocol.md §4.1), for tests
// that read the feed's frames as any client would. Header-only: its users link cppzmq.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <zmq.hpp>

#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {

// A SUB socket on the feed's topics starting with `prefix` ("" for all) that has seen the feed's
// welcome, so every later outcome reaches it. Fails the test when no welcome comes within 10 s.
inline zmq::socket_t SubscribeToResults(zmq::context_t& ctx, const StackProcess& stack,
                                        const std::string& prefix) {
  zmq::socket_t socket(ctx, zmq::socket_type::sub);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.set(zmq::sockopt::subscribe, prefix);
  socket.set(zmq::sockopt::subscribe, "runnel.welcome");
  stack.Secure(socket);
  socket.connect(stack.Endpoints().at("results").get<std::string>());
  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::seconds(10));
  zmq::message_t welcome;
  EXPECT_TRUE((items[0].revents & ZMQ_POLLIN) != 0 && socket.recv(welcome, zmq::recv_flags::dontwait));
  EXPECT_EQ(welcome.to_string_view(), "runnel.welcome");
  return socket;
}

}  // namespace runnel::testing
