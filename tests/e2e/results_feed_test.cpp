// The results feed's wire format (docs/protocol.md §4.1) as a subscriber written against libzmq
// alone sees it: `runnel up` with a real worker, a raw SUB socket, events over Kafka.
#include "runnel/testing/results_feed.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/envelope.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Received {
  std::map<std::string, int> count_by_id;
  std::set<std::string> reply_tos;
  std::size_t messages = 0;
  std::size_t largest = 0;  // most outcomes in one message
  int outcomes = 0;
};

// Reads messages until `want` outcomes arrived or `deadline` passed, checking each message's layout:
// [topic] then [meta][output] per outcome, every outcome of the message's topic.
Received Read(zmq::socket_t& socket, int want, milliseconds deadline) {
  Received r;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (r.outcomes < want && std::chrono::steady_clock::now() < until) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, milliseconds(100));
    if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(socket, std::back_inserter(frames));
    EXPECT_GE(frames.size(), 3u);
    EXPECT_EQ(frames.size() % 2, 1u) << "a message is the topic and then pairs of frames";
    const std::string topic = frames.at(0).to_string();
    ++r.messages;
    r.largest = std::max(r.largest, (frames.size() - 1) / 2);
    for (std::size_t i = 1; i + 1 < frames.size(); i += 2) {
      const Outcome o = Outcome::FromFrames(frames[i].to_string_view(), frames[i + 1].to_string());
      EXPECT_EQ(topic, o.Topic()) << "an outcome in a message of another topic";
      EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
      EXPECT_EQ(o.output, "payload-" + o.id);
      ++r.count_by_id[o.id];
      r.reply_tos.insert(o.reply_to);
      ++r.outcomes;
    }
  }
  return r;
}

TEST(ResultsFeed, OutcomesOfOneTopicShareMessagesAndACallsTopicGetsOnlyItsOwn) {
  StackProcess stack(R"(
functions:
  - name: echo
    partitions: 1
    workers: 1
)");
  ASSERT_TRUE(stack.WaitForWorkers("echo", 1, seconds(20)));
  zmq::context_t ctx(1);
  zmq::socket_t every = SubscribeToResults(ctx, stack, "echo/");
  zmq::socket_t call_a = SubscribeToResults(ctx, stack, "echo/call-a");

  // 2,000 events in one burst, alternately answering to two calls: the worker answers them many
  // to a RESULTS message, so the dispatcher finishes many in one turn.
  constexpr int kEvents = 2'000;
  std::set<std::string> ids, ids_a;
  {
    kafka::Producer producer(stack.Kafka());
    for (int i = 0; i < kEvents; ++i) {
      Envelope env;
      env.id = NewEventId();
      env.reply_to = i % 2 == 0 ? "call-a" : "call-b";
      producer.Produce({"echo", kafka::kAnyPartition, std::nullopt, "payload-" + env.id, env.Encode()},
                       nullptr);
      ids.insert(env.id);
      if (i % 2 == 0) ids_a.insert(env.id);
    }
    ASSERT_EQ(producer.Flush(seconds(30)), 0);
  }

  const Received all = Read(every, kEvents, seconds(60));
  EXPECT_EQ(all.outcomes, kEvents);
  EXPECT_EQ(all.count_by_id.size(), ids.size());
  for (const auto& [id, n] : all.count_by_id) {
    EXPECT_TRUE(ids.contains(id)) << "an outcome for an event not published here: " << id;
    EXPECT_EQ(n, 1) << id;
  }
  EXPECT_EQ(all.reply_tos, (std::set<std::string>{"call-a", "call-b"}));
  EXPECT_GT(all.largest, 1u) << "every outcome came in a message of its own (" << all.messages
                             << " messages)";
  EXPECT_LT(all.messages, static_cast<std::size_t>(kEvents));

  const Received a = Read(call_a, kEvents / 2, seconds(10));
  EXPECT_EQ(a.outcomes, kEvents / 2);
  EXPECT_EQ(a.reply_tos, std::set<std::string>{"call-a"});
  for (const auto& [id, n] : a.count_by_id)
    EXPECT_TRUE(ids_a.contains(id)) << "call-a got another call's outcome " << id;
}

}  // namespace
}  // namespace runnel::testing
