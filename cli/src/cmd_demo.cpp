// `runnel demo`: the README's first command runs this. It starts a stack on the embedded broker
// (dispatchers and real worker processes for echo, image.thumbnail and iot.ingest), publishes
// the sample images, sensor readings and a few plain events, waits for every outcome, shows them,
// and stops, leaving the outputs on disk.
#include <fmt/format.h>

#include <fstream>
#include <fmt/ranges.h>

#include <map>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "runnel/broker/admin.hpp"
#include "runnel/broker/consumer.hpp"
#include "runnel/broker/producer.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/state_dir.hpp"
#include "stack.hpp"

namespace runnel::cli {
namespace {

StackConfig DemoStack() {
  StackConfig config;
  config.source = "(demo)";
  auto add = [&config](const std::string& name, nlohmann::json params) {
    FunctionSpec f;
    f.name = name;
    f.handler = "builtin:" + name;
    f.topic = name;
    f.partitions = 4;
    f.params = std::move(params);
    f.dead_letter_topic = name + ".dlq";
    f.results_topic = name + ".results";
    f.retry.max_attempts = 2;
    config.functions.push_back(std::move(f));
  };
  add("echo", nlohmann::json::object());
  add("image.thumbnail", {{"sizes", {{{"width", 256}, {"height", 256}}, {{"width", 96}, {"height", 96}, {"mode", "fill"}}}},
                          {"format", "jpeg"}});
  // The sample file spans 20 minutes of readings: windows of 10 minutes, nothing counted late.
  add("iot.ingest", {{"window_ms", 600000}, {"max_lateness_ms", 3600000}, {"thresholds", {{"temp", {{"above", 80}}}}}});
  return config;
}

std::string Summary(const Outcome& o) {
  if (o.status != OutcomeStatus::kOk) return fmt::format("{}: {}", o.error_kind, o.error);
  if (o.function == "image.thumbnail") {
    const auto files = nlohmann::json::parse(o.files_json.empty() ? "[]" : o.files_json);
    std::vector<std::string> names;
    for (const auto& f : files) names.push_back(std::filesystem::path(f.value("path", "")).filename().string());
    return fmt::format("{} thumbnails: {}", files.size(), fmt::join(names, ", "));
  }
  if (o.function == "iot.ingest") {
    const auto r = nlohmann::json::parse(o.output, nullptr, false);
    if (r.is_object() && r.contains("readings")) {
      return fmt::format("{} readings accepted, {} rejected, {} aggregates, {} alerts, {} anomalies",
                         r["readings"].value("accepted", 0), r["readings"].value("rejected", 0),
                         r.value("aggregates", nlohmann::json::array()).size(), r.value("alerts", nlohmann::json::array()).size(),
                         r.value("anomalies", nlohmann::json::array()).size());
    }
  }
  return o.output.size() > 60 ? o.output.substr(0, 57) + "..." : o.output;
}

int RunDemo(const std::string& samples_dir, const CommonOptions& common) {
  const auto samples = std::filesystem::absolute(samples_dir);
  if (!std::filesystem::is_directory(samples)) {
    throw ConfigError(fmt::format("sample data not found at {} (pass --samples DIR)", samples.string()));
  }
  StateDir state = StateDir::Resolve(common.state_dir);
  StackLock lock(state, "runnel demo");
  Stack stack(DemoStack(), state, std::filesystem::read_symlink("/proc/self/exe"));
  const auto endpoints = state.ReadEndpoints();
  const broker::KafkaConfig kafka{endpoints.at("kafka").get<std::string>(), "runnel-demo", {}};
  fmt::print("1. stack up on the embedded Kafka broker at {}\n{}", kafka.bootstrap, stack.Summary());
  std::fflush(stdout);

  // Publish: uploaded images by reference, a file of sensor readings, a few plain events.
  std::map<std::string, std::string> what;  // event id -> what it was
  std::map<std::string, int> expected;      // results topic -> outcomes to wait for
  {
    broker::Producer producer(kafka);
    auto publish = [&](const std::string& topic, std::optional<std::string> key, std::string payload, Envelope env,
                       std::string label) {
      env.id = NewEventId();
      env.trace_id = NewTraceId();
      what[env.id] = std::move(label);
      ++expected[topic + ".results"];
      producer.Produce({topic, broker::kAnyPartition, std::move(key), std::move(payload), env.Encode()}, {});
    };
    for (const auto& entry : std::filesystem::directory_iterator(samples)) {
      const auto ext = entry.path().extension().string();
      if (ext != ".jpg" && ext != ".png" && ext != ".webp") continue;
      Envelope env;
      env.content_type = "application/octet-stream";
      env.file = FileRef{entry.path().string(), std::filesystem::file_size(entry.path()), entry.path().filename().string()};
      publish("image.thumbnail", entry.path().filename().string(), "", env, "upload " + entry.path().filename().string());
    }
    std::ifstream readings(samples / "readings.ndjson");
    if (readings) {
      std::string ndjson((std::istreambuf_iterator<char>(readings)), {});
      Envelope env;
      env.content_type = "application/x-ndjson";
      publish("iot.ingest", "site-1", std::move(ndjson), env, "readings.ndjson (243 lines)");
    }
    for (int i = 0; i < 10; ++i) {
      Envelope env;
      env.content_type = "text/plain";
      publish("echo", fmt::format("user-{}", i % 3), fmt::format("hello {}", i), env, fmt::format("hello {}", i));
    }
    if (producer.Flush(std::chrono::seconds(30)) != 0) throw Error("the broker did not acknowledge every event", true);
  }
  fmt::print("2. published {} events (acks=all): {} uploads, sensor readings, {} plain events\n", what.size(),
             expected["image.thumbnail.results"], expected["echo.results"]);
  std::fflush(stdout);

  // Outcomes come back on durable results topics, one record per event.
  std::vector<Outcome> outcomes;
  broker::Consumer consumer(kafka, broker::Consumer::Options{"runnel.demo"});
  std::vector<broker::TopicPartitionOffset> partitions;
  broker::Admin admin(kafka);
  for (const auto& [topic, n] : expected) {
    for (auto p : admin.Partitions(topic)) partitions.push_back({topic, p, broker::kOffsetBeginning});
  }
  consumer.Assign(partitions);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (outcomes.size() < what.size() && std::chrono::steady_clock::now() < until) {
    for (auto& m : consumer.PollBatch(100, std::chrono::milliseconds(100))) {
      for (const auto& h : m.headers) {
        if (h.name == "runnel-result") outcomes.push_back(Outcome::FromFrames(h.value, m.value));
      }
    }
  }
  fmt::print("3. outcomes ({} of {}):\n", outcomes.size(), what.size());
  std::sort(outcomes.begin(), outcomes.end(), [](const Outcome& a, const Outcome& b) {
    return std::tie(a.function, a.id) < std::tie(b.function, b.id);
  });
  for (const auto& o : outcomes) {
    fmt::print("   {:<16} {:<12} {:<28} {}\n", o.function, StatusName(o.status), what[o.id], Summary(o));
  }
  fmt::print("4. outputs are under {}; failed events are on each function's .dlq topic\n",
             endpoints.value("output_dir", ""));
  std::fflush(stdout);
  if (outcomes.size() != what.size()) {
    throw Error(fmt::format("only {} of {} events had an outcome within 60 s", outcomes.size(), what.size()), true);
  }
  return 0;
}

}  // namespace

Command AddDemo(CLI::App& app, CommonOptions& common) {
  auto samples = std::make_shared<std::string>("samples/data");
  auto* sub = app.add_subcommand("demo", "Run the quick-start demo on the embedded broker and exit");
  sub->add_option("--samples", *samples, "Directory of sample images and readings.ndjson")->capture_default_str();
  return {sub, [samples, &common] { return RunDemo(*samples, common); }};
}

}  // namespace runnel::cli
