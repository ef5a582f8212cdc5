// `runnel results`: prints outcomes from the running stack's results feed as they arrive.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "commands.hpp"
#include "stack_client.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::cli {

Command AddResults(CLI::App& app, CommonOptions& common) {
  struct Flags {
    bool json = false;
    bool base64 = false;
    std::string function;
    int count = 0;
    double timeout = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("results", "Print outcomes (ok, error, dead-letter) from the running stack as they arrive");
  sub->add_flag("--json", flags->json, "One JSON object per line");
  sub->add_flag("--base64", flags->base64, "Always give the output as base64 (binary outputs always are)");
  sub->add_option("--function", flags->function, "Only this function's outcomes");
  sub->add_option("--count", flags->count, "Exit after this many outcomes")->check(CLI::NonNegativeNumber);
  sub->add_option("--timeout", flags->timeout, "Give up after this many seconds (exit status 2)")->check(CLI::NonNegativeNumber);
  return {sub, [flags, &common] {
            const auto endpoints = StateDir::Resolve(common.state_dir).ReadEndpoints();
            if (!endpoints.contains("results")) throw ConfigError("the running stack has no results feed (is it 'runnel up'?)");
            zmq::context_t ctx(1);
            zmq::socket_t sub_socket(ctx, zmq::socket_type::sub);
            sub_socket.set(zmq::sockopt::linger, 0);
            // PUB/SUB drops what does not fit the queues: a large one here, so a burst of outcomes
            // (thousands a second) waits for this process instead of being dropped.
            sub_socket.set(zmq::sockopt::rcvhwm, 100'000);
            sub_socket.set(zmq::sockopt::subscribe, flags->function.empty() ? std::string() : flags->function + "/");
            // The feed greets every new subscriber: once that arrives, later outcomes reach us. Say
            // so on stderr, so a script can wait for it before it publishes.
            sub_socket.set(zmq::sockopt::subscribe, kResultsWelcome);
            sub_socket.connect(endpoints["results"].get<std::string>());
            const auto until = std::chrono::steady_clock::now() +
                               std::chrono::milliseconds(static_cast<std::int64_t>(flags->timeout * 1000));
            int seen = 0;
            while (flags->count == 0 || seen < flags->count) {
              auto wait = std::chrono::milliseconds(200);
              if (flags->timeout > 0) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
                if (left.count() <= 0) {
                  fmt::print(stderr, "runnel: {} outcome(s) within {} s\n", seen, flags->timeout);
                  return 2;
                }
                wait = std::min(wait, left);
              }
              zmq::pollitem_t items[] = {{sub_socket.handle(), 0, ZMQ_POLLIN, 0}};
              zmq::poll(items, 1, wait);
              if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
              std::vector<zmq::message_t> frames;
              (void)zmq::recv_multipart(sub_socket, std::back_inserter(frames));
              if (frames.size() == 1 && frames[0].to_string_view() == kResultsWelcome) {
                fmt::print(stderr, "runnel: following the results feed\n");
                std::fflush(stderr);
                continue;
              }
              // [topic] then [meta][output] per outcome: one message carries the outcomes of one topic
              // that became final together (docs/protocol.md §4.1).
              for (std::size_t i = 1; i + 1 < frames.size() && (flags->count == 0 || seen < flags->count); i += 2) {
                const Outcome o = Outcome::FromFrames(frames[i].to_string_view(), frames[i + 1].to_string());
                if (flags->json) {
                  fmt::print("{}\n", JsonText(o.ToJson(flags->base64)));
                } else {
                  fmt::print("{} {} {} attempts={} {}[{}]@{} {}\n", o.function, o.id, StatusName(o.status), o.attempts,
                             o.topic, o.partition, o.offset, o.status == OutcomeStatus::kOk ? o.output.substr(0, 80) : o.error);
                }
                ++seen;
              }
              std::fflush(stdout);
            }
            return 0;
          }};
}

}  // namespace runnel::cli
