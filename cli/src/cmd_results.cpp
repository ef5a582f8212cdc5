// `runnel results`: prints outcomes as they arrive, from the running stack's results feed (following
// the stack across restarts), or with --durable from a function's results topic at a consumer
// group's position (results_reader.hpp).
#include <fmt/format.h>
#include <signal.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "commands.hpp"
#include "control_request.hpp"
#include "flag_checks.hpp"
#include "results_reader.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/stack/results_feed.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

// How often the feed follower re-reads endpoints.json, and how long a connected feed may stay
// silent about its welcome before the follower says so.
constexpr auto kRecheckInterval = std::chrono::milliseconds(500);
constexpr auto kWelcomeWarning = std::chrono::seconds(5);

// The stack's results feed as endpoints.json names it.
struct FeedTarget {
  std::string endpoint;
  long pid = 0;                              // the stack's process; 0 when endpoints.json does not say
  std::optional<security::ClientKeys> keys;  // CURVE on
  bool operator==(const FeedTarget&) const = default;
};

// What endpoints.json says now; nullopt when there is no file, no results feed in it, or it is
// not readable.
std::optional<FeedTarget> ReadFeedTarget(const StateDir& state) {
  try {
    const auto endpoints = state.ReadEndpoints();
    const auto results = endpoints.find("results");
    if (results == endpoints.end() || !results->is_string()) return std::nullopt;
    // On the stack's host, its local (ipc://, no CURVE) feed when there is one.
    const std::string local = endpoints.value("local", nlohmann::json::object()).value("results", "");
    FeedTarget t{local.empty() ? results->get<std::string>() : local, 0,
                 security::LocalClientKeysFor(state.Root(), endpoints)};
    if (const auto pid = endpoints.find("pid"); pid != endpoints.end() && pid->is_number_integer()) {
      t.pid = pid->get<long>();
    }
    return t;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// A stack killed with SIGKILL leaves endpoints.json behind: its pid tells whether it still runs
// (a zombie, dead but not yet reaped by its parent, does not).
bool Running(const FeedTarget& t) {
  if (t.pid <= 0) return true;  // no pid to check: trust the file
  if (::kill(static_cast<pid_t>(t.pid), 0) != 0 && errno != EPERM) return false;
  std::ifstream stat(fmt::format("/proc/{}/stat", t.pid));
  std::string line;
  if (!std::getline(stat, line)) return true;  // no /proc: the signal check is all there is
  const auto name_end = line.rfind(')');       // "pid (comm) state ...": comm may hold anything
  return name_end == std::string::npos || name_end + 2 >= line.size() || line[name_end + 2] != 'Z';
}

// The SUB socket of one connection to one feed.
class FeedConnection {
 public:
  FeedConnection(zmq::context_t& ctx, const FeedTarget& target, const std::string& function)
      : target_(target), socket_(ctx, zmq::socket_type::sub), since_(std::chrono::steady_clock::now()) {
    socket_.set(zmq::sockopt::linger, 0);
    // PUB/SUB drops what does not fit the queues: a large one here, so a burst of outcomes
    // (thousands a second) waits for this process instead of being dropped.
    socket_.set(zmq::sockopt::rcvhwm, 100'000);
    socket_.set(zmq::sockopt::subscribe, function.empty() ? std::string() : function + "/");
    // The feed greets every new subscriber: once that arrives, later outcomes reach us.
    socket_.set(zmq::sockopt::subscribe, stack::kResultsWelcome);
    if (target.keys && security::UsesCurve(target.endpoint)) security::MakeClient(socket_, *target.keys);
    socket_.connect(target.endpoint);
  }
  const FeedTarget& Target() const { return target_; }
  zmq::socket_t& Socket() { return socket_; }
  bool welcomed = false;
  bool warned = false;
  // Since when the connection waits for its welcome.
  std::chrono::steady_clock::duration Waiting() const { return std::chrono::steady_clock::now() - since_; }

 private:
  FeedTarget target_;
  zmq::socket_t socket_;
  std::chrono::steady_clock::time_point since_;
};

// Follows the stack's results feed: reconnects when endpoints.json names another feed (the stack
// restarted), waits (saying so) while no stack runs, and says when a feed does not answer.
int FollowFeed(const ResultsOptions& o, const CommonOptions& common) {
  const StateDir state = StateDir::Resolve(common.state_dir);
  // With a join token the feed is where the token says; without, endpoints.json is re-read.
  std::optional<FeedTarget> joined;
  if (!common.join.empty()) {
    auto access = StackAccess::Joined(common.join);
    const auto results = access.endpoints.find("results");
    if (results == access.endpoints.end() || !results->is_string()) {
      throw ConfigError(fmt::format("{}: the token names no results feed", common.join));
    }
    joined = FeedTarget{results->get<std::string>(), 0, std::move(access.keys)};
  }
  const auto read_target = [&] { return joined ? joined : ReadFeedTarget(state); };
  const auto first = read_target();
  if (!first) {
    (void)state.ReadEndpoints();  // no file: its own clear error
    throw ConfigError("the running stack has no results feed (is it 'runnel up'?)");
  }
  zmq::context_t ctx(1);
  std::optional<FeedConnection> feed;
  std::optional<FeedTarget> last = first;  // what the follower last acted on
  bool said_gone = false;
  bool ever_followed = false;
  OutcomePrinter printer(o);
  const Deadline deadline(o.timeout);
  auto next_check = std::chrono::steady_clock::time_point{};
  while (!printer.Done()) {
    if (deadline.Passed()) return printer.TimedOut();
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_check) {
      next_check = now + kRecheckInterval;
      const auto target = read_target();
      if (!target || !Running(*target)) {
        if (!said_gone) {
          Say(last && last->pid > 0
                  ? fmt::format("the stack (pid {}) is gone; waiting for it to come back", last->pid)
                  : "no stack runs; waiting for one to start");
          said_gone = true;
        }
        feed.reset();
      } else if (!feed || !(feed->Target() == *target)) {
        if (feed || said_gone) {
          Say(fmt::format("the stack {}; connecting to its results feed at {}",
                          last && last->pid != target->pid ? fmt::format("restarted (pid {})", target->pid)
                                                           : std::string("is back"),
                          target->endpoint));
        }
        feed.emplace(ctx, *target, o.function);
        last = target;
        said_gone = false;
      }
    }
    if (!feed) {
      std::this_thread::sleep_for(deadline.Cap(std::chrono::milliseconds(200)));
      continue;
    }
    if (!feed->welcomed && !feed->warned && feed->Waiting() >= kWelcomeWarning) {
      Say(fmt::format("the results feed at {} does not answer (stack pid {}); still trying",
                      feed->Target().endpoint, feed->Target().pid));
      feed->warned = true;
    }
    zmq::pollitem_t items[] = {{feed->Socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, deadline.Cap(std::chrono::milliseconds(200)));
    if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(feed->Socket(), std::back_inserter(frames));
    if (frames.size() == 1 && frames[0].to_string_view() == stack::kResultsWelcome) {
      // Scripts wait for this line before they publish.
      Say(ever_followed ? fmt::format("following the results feed again ({})", feed->Target().endpoint)
                        : std::string("following the results feed"));
      feed->welcomed = true;
      ever_followed = true;
      continue;
    }
    // [topic] then [meta][output] per outcome (docs/protocol.md §4.1).
    for (std::size_t i = 1; i + 1 < frames.size() && !printer.Done(); i += 2) {
      try {
        printer.Print(Outcome::FromFrames(frames[i].to_string_view(), frames[i + 1].to_string()));
      } catch (const std::exception& e) {
        Say(fmt::format("skipping an outcome the feed sent malformed: {}", e.what()));
      }
    }
    printer.Flush();
  }
  return 0;
}

}  // namespace

Command AddResults(CLI::App& app, CommonOptions& common) {
  auto flags = std::make_shared<ResultsOptions>();
  auto* sub = app.add_subcommand(
      "results",
      "Print outcomes (ok, error, dead-letter) as they arrive: from the running stack's results feed, "
      "following it "
      "across restarts, or with --durable from a function's results topic at a consumer group's position");
  sub->add_flag("--json", flags->json, "One JSON object per line");
  sub->add_flag("--base64", flags->base64, "Always give the output as base64 (binary outputs always are)");
  sub->add_option("--function", flags->function, "Only this function's outcomes (required with --durable)");
  sub->add_option("--count", flags->count, "Exit after this many outcomes")->check(WholeNumber(1));
  sub->add_option("--timeout", flags->timeout, "Give up after this long, e.g. 30s (exit status 4)")
      ->transform(DurationSeconds());
  auto* durable =
      sub->add_flag("--durable", flags->durable,
                    "Read the function's results topic (results_topic) from the group's committed "
                    "position, committing after printing: a restarted reader misses nothing");
  sub->add_option("--group", flags->group,
                  "With --durable: the consumer group (default runnel.results.<function>)")
      ->needs(durable);
  sub->add_flag(
         "--from-beginning", flags->from_beginning,
         "With --durable: a group without a position starts at the topic's beginning (default: its end)")
      ->needs(durable);
  AddJoinOption(sub, common);
  return {sub, [flags, &common] {
            if (flags->durable) return ReadResultsTopic(*flags, common.state_dir);
            return FollowFeed(*flags, common);
          }};
}

}  // namespace runnel::cli
