#include "stack_client.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runnel/core/error.hpp"
#include "runnel/kafka/retention_guard.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/stack/results_feed.hpp"

namespace runnel::cli {

std::vector<std::string> GroupsConsuming(const nlohmann::json& endpoints, const std::string& topic) {
  std::vector<std::string> groups;
  if (auto it = endpoints.find("functions"); it != endpoints.end() && it->is_object()) {
    for (const auto& [name, f] : it->items()) {
      if (f.value("topic", "") == topic) groups.push_back(f.value("group", "runnel." + name));
    }
  }
  return groups;
}

std::string ContentTypeFor(const std::filesystem::path& path) {
  static const std::map<std::string, std::string> kTypes = {{".jpg", "image/jpeg"},
                                                            {".jpeg", "image/jpeg"},
                                                            {".png", "image/png"},
                                                            {".webp", "image/webp"},
                                                            {".gif", "image/gif"},
                                                            {".bmp", "image/bmp"},
                                                            {".mp4", "video/mp4"},
                                                            {".avi", "video/x-msvideo"},
                                                            {".mkv", "video/x-matroska"},
                                                            {".json", "application/json"},
                                                            {".ndjson", "application/x-ndjson"},
                                                            {".txt", "text/plain"},
                                                            {".csv", "text/csv"}};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

StackClient::StackClient(const std::string& state_dir_flag)
    : StackClient(StackAccess::Local(StateDir::Resolve(state_dir_flag))) {}

StackClient::StackClient(StackAccess access) : access_(std::move(access)) {
  if (!access_.endpoints.contains("kafka")) {
    throw NoStackError(fmt::format("{}: no Kafka endpoint: is a stack running?", access_.where));
  }
}

kafka::KafkaOptions StackClient::Kafka() const {
  return {access_.endpoints.at("kafka").get<std::string>(), "runnel-cli", access_.kafka_options,
          access_.kafka_secrets};
}

FunctionTopics StackClient::Function(const std::string& function) const {
  // Kafka only (no stack's endpoints): the default stack's naming, a topic per function.
  if (!access_.endpoints.contains("functions")) return {function, "runnel." + function, function + ".dlq"};
  const auto functions = access_.endpoints.value("functions", nlohmann::json::object());
  auto it = functions.find(function);
  if (it == functions.end()) {
    std::vector<std::string> known;
    for (const auto& [name, f] : functions.items()) known.push_back(name);
    throw ConfigError(
        fmt::format("the running stack has no function '{}' (it has: {})", function, fmt::join(known, ", ")));
  }
  return {it->value("topic", function), it->value("group", "runnel." + function),
          it->value("dead_letter_topic", it->value("topic", function) + ".dlq")};
}

std::optional<std::vector<std::string>> StackClient::ServedTopics() const {
  const auto functions = access_.endpoints.find("functions");
  if (functions == access_.endpoints.end() || !functions->is_object()) return std::nullopt;
  std::vector<std::string> topics;
  for (const auto& [name, f] : functions->items()) topics.push_back(f.value("topic", name));
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  return topics;
}

std::unique_ptr<kafka::Producer> StackClient::Producer(const std::vector<std::string>& topics) const {
  const kafka::KafkaOptions config = Kafka();
  kafka::Producer::Options options;
  // "in_memory": the stack's broker is a mock cluster (embedded, or `runnel kafka`); stacks before
  // that key wrote only "embedded".
  if (access_.endpoints.value("in_memory", access_.endpoints.value("embedded", false))) {
    options.retention_guard = std::make_shared<kafka::RetentionGuard>(
        config, [endpoints = access_.endpoints](const std::string& topic) {
          return GroupsConsuming(endpoints, topic);
        });
  }
  auto producer = std::make_unique<kafka::Producer>(config, options);
  for (const auto& topic : topics) producer->Prepare(topic);
  return producer;
}

ResultsSubscription::ResultsSubscription(const StackClient& stack, const std::vector<std::string>& prefixes,
                                         std::chrono::milliseconds connect_timeout)
    : ctx_(std::make_unique<zmq::context_t>(1)),
      socket_(std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::sub)) {
  if (!stack.Endpoints().contains("results")) {
    throw ConfigError(fmt::format(
        "{}: no results feed to wait for the outcome on (from another host, pass --join TOKEN_FILE)",
        stack.Access().where));
  }
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::subscribe, stack::kResultsWelcome);
  for (const auto& prefix : prefixes) socket_->set(zmq::sockopt::subscribe, prefix);
  const std::string endpoint = stack.Endpoints()["results"].get<std::string>();
  if (stack.Keys() && security::UsesCurve(endpoint)) security::MakeClient(*socket_, *stack.Keys());
  socket_->connect(stack.Endpoints()["results"].get<std::string>());
  zmq::message_t welcome;
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, connect_timeout);
  if ((items[0].revents & ZMQ_POLLIN) == 0 || !socket_->recv(welcome)) {
    throw Error(fmt::format("the results feed at {} did not answer within {} ms",
                            stack.Endpoints()["results"].get<std::string>(), connect_timeout.count()),
                true);
  }
}

ResultsSubscription::~ResultsSubscription() = default;

std::optional<Outcome> ResultsSubscription::Next(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (received_.empty()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::max(left, std::chrono::milliseconds(0)));
    if ((items[0].revents & ZMQ_POLLIN) == 0) return std::nullopt;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(*socket_, std::back_inserter(frames));
    for (std::size_t i = 1; i + 1 < frames.size(); i += 2) {
      // A meta frame that does not decode is skipped, said once: the next outcomes still count.
      try {
        received_.push_back(Outcome::FromFrames(frames[i].to_string_view(), frames[i + 1].to_string()));
      } catch (const std::exception& e) {
        if (!warned_)
          fmt::print(stderr, "runnel: skipping an outcome the results feed sent malformed: {}\n", e.what());
        warned_ = true;
      }
    }
  }
  Outcome next = std::move(received_.front());
  received_.pop_front();
  return next;
}

}  // namespace runnel::cli
