// `runnel demo`: the README's first command runs this. It starts the embedded broker, publishes
// events through Runnel's producer, reads them back through Runnel's consumer, commits, and shows
// the lag query agreeing that nothing is left.
#include <fmt/format.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "runnel/broker/admin.hpp"
#include "runnel/broker/consumer.hpp"
#include "runnel/broker/embedded_broker.hpp"
#include "runnel/broker/producer.hpp"
#include "runnel/broker/retention_guard.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::cli {
namespace {

constexpr const char* kTopic = "demo.readings";
constexpr const char* kGroup = "runnel.demo";

int RunDemo(int events, const CommonOptions& common) {
  StateDir state = StateDir::Resolve(common.state_dir);
  StackLock lock(state, "demo");
  broker::EmbeddedBroker broker;
  broker.CreateTopic(kTopic, 8);
  state.MergeEndpoints({{"kafka", broker.Bootstrap()}, {"embedded", true}, {"pid", ::getpid()}});
  fmt::print("1. embedded Kafka broker listening on {} (endpoints in {})\n", broker.Bootstrap(),
             state.EndpointsFile().string());

  const auto config = broker.ClientConfig();
  std::map<std::string, std::string> sent;  // event id -> key
  {
    broker::Producer::Options options;
    options.retention_guard = std::make_shared<broker::RetentionGuard>(
        config, [](const std::string&) { return std::vector<std::string>{kGroup}; });
    broker::Producer producer(config, options);
    for (int i = 0; i < events; ++i) {
      Envelope env;
      env.id = NewEventId();
      env.content_type = "application/json";
      env.trace_id = NewTraceId();
      const std::string key = fmt::format("sensor-{}", i % 4);
      nlohmann::json reading = {{"device", key}, {"seq", i}, {"temp", 20.0 + i % 7}};
      producer.Produce(broker::Record{kTopic, broker::kAnyPartition, key, reading.dump(), env.Encode()},
                       [](const broker::Delivery&) {});
      sent[env.id] = key;
    }
    if (const auto left = producer.Flush(std::chrono::seconds(10)); left != 0) {
      throw Error(fmt::format("{} events were not acknowledged by the broker", left), true);
    }
  }
  fmt::print("2. published {} events to {} (8 partitions), every one acknowledged (acks=all)\n", events, kTopic);

  broker::Consumer consumer(config, broker::Consumer::Options{kGroup});
  std::vector<broker::TopicPartitionOffset> partitions;
  for (int p = 0; p < 8; ++p) partitions.push_back({kTopic, p, broker::kOffsetStored});
  consumer.Assign(partitions);
  std::size_t received = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  fmt::print("3. reading them back with Runnel's consumer (group {}):\n", kGroup);
  while (received < sent.size() && std::chrono::steady_clock::now() < deadline) {
    auto msg = consumer.Poll(std::chrono::milliseconds(100));
    if (!msg) continue;
    const Envelope env = Envelope::Decode(msg->headers);
    auto it = sent.find(env.id);
    if (it == sent.end() || msg->key != it->second) {
      throw Error(fmt::format("read back an event that was not sent: id {} at {}[{}]@{}", env.id, msg->topic,
                              msg->partition, msg->offset),
                  false);
    }
    if (received < 5) {
      fmt::print("   {}[{}]@{}  key={}  id={}  {}\n", msg->topic, msg->partition, msg->offset, *msg->key, env.id,
                 msg->value);
    }
    ++received;
    consumer.StoreOffset(msg->topic, msg->partition, msg->offset + 1);
  }
  if (received > 5) fmt::print("   ... and {} more\n", received - 5);
  consumer.Commit();
  if (received != sent.size()) {
    throw Error(fmt::format("read back {} of {} events within 20 s", received, sent.size()), true);
  }

  broker::Admin admin(config);
  std::int64_t lag = 0;
  for (const auto& po : admin.Offsets(kTopic, kGroup)) lag += po.Lag();
  fmt::print("4. all {} events read back with their headers; committed; lag of {} is now {}\n", received, kGroup, lag);
  state.RemoveEndpoints({"kafka", "embedded", "pid"});
  fmt::print("done: the embedded broker stops with this command (it keeps nothing across restarts)\n");
  return lag == 0 ? 0 : 1;
}

}  // namespace

Command AddDemo(CLI::App& app, CommonOptions& common) {
  auto events = std::make_shared<int>(20);
  auto* sub = app.add_subcommand("demo", "Run the quick-start demo on the embedded broker and exit");
  sub->add_option("--events", *events, "How many events to publish")->check(CLI::Range(1, 1'000'000))->capture_default_str();
  return {sub, [events, &common] { return RunDemo(*events, common); }};
}

}  // namespace runnel::cli
