// `runnel kafka`: only the embedded Kafka broker, for trying clients against it or for tests.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "flag_checks.hpp"
#include "runnel/core/signals.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/embedded_broker.hpp"

namespace runnel::cli {

Command AddKafka(CLI::App& app, CommonOptions& common) {
  struct Flags {
    int partitions = 8;
    std::vector<std::string> topics;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "kafka",
      "Run only the embedded Kafka broker (in memory: nothing is kept across restarts) and "
      "write its address to <state dir>/endpoints.json; stop with Ctrl-C");
  sub->add_option("--partitions", flags->partitions, "Partitions of each topic named by --topics")
      ->check(WholeNumber(1, 10000))
      ->capture_default_str();
  sub->add_option("--topics", flags->topics, "Topics to create at start, comma-separated")->delimiter(',');
  return {sub, [flags, &common] {
            ShutdownSignals signals;
            StateDir state = StateDir::Resolve(common.state_dir);
            StackLock lock(state, "kafka");
            kafka::EmbeddedBroker broker;
            for (const auto& topic : flags->topics) broker.CreateTopic(topic, flags->partitions);
            // `runnel up --kafka` (any Admin::CreateTopic) in another process asks for its topics here.
            broker.ServeTopicRequests();
            state.MergeEndpoints({{"kafka", broker.Bootstrap()}, {"embedded", true}, {"pid", ::getpid()}});
            fmt::print("embedded Kafka broker listening on {}\n", broker.Bootstrap());
            if (!flags->topics.empty()) {
              fmt::print("topics: {} ({} partitions each)\n", fmt::join(flags->topics, ", "),
                         flags->partitions);
            }
            fmt::print("endpoints written to {}\n", state.EndpointsFile().string());
            std::fflush(stdout);
            while (signals.Wait(std::chrono::seconds(3600)) == 0) {
            }
            state.RemoveEndpoints({"kafka", "embedded", "pid"});
            fmt::print("embedded Kafka broker stopped\n");
            return 0;
          }};
}

}  // namespace runnel::cli
