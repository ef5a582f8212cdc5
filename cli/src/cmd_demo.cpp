// `runnel demo`: the README's first command runs this. It starts a stack on the embedded broker
// (a dispatcher per function, real worker processes started by the autoscaler), uploads the sample
// images and a video, publishes a file of sensor readings, then streams readings from simulated
// devices at a low, a high and a low rate again. It shows outcomes as they arrive, the workers
// following the rate and going back to zero, and where the outputs are; then it stops, leaving
// nothing running. `--short` is the same story in about a third of the time (CI runs it).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.hpp"
#include "control_request.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/headers.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/stack/stack.hpp"
#include "sensor_simulator.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct DemoPlan {
  std::vector<double> rates;        // readings per second of each streaming phase
  std::chrono::milliseconds phase;  // how long each rate runs
  int devices;
  std::chrono::milliseconds idle_to_zero;  // the functions' scaling settings: short, to be seen
  std::chrono::seconds to_zero_deadline;   // the longest wait for every function to reach zero
};

DemoPlan PlanFor(bool short_mode) {
  if (short_mode) {
    return {{100, 800},
            std::chrono::milliseconds(2000),
            20,
            std::chrono::milliseconds(1000),
            std::chrono::seconds(20)};
  }
  return {{100, 1500, 100},
          std::chrono::milliseconds(5000),
          50,
          std::chrono::milliseconds(3000),
          std::chrono::seconds(40)};
}

const std::vector<std::string> kFunctions = {"image.thumbnail", "video.thumbnails", "iot.ingest"};

StackConfig DemoStack(const DemoPlan& plan) {
  StackConfig config;
  config.source = "(demo)";
  auto add = [&config, &plan](const std::string& name, nlohmann::json params, int concurrency) {
    FunctionSpec f;
    f.name = name;
    f.handler = "builtin:" + name;
    f.topic = name;
    f.partitions = 4;
    f.params = std::move(params);
    f.concurrency = concurrency;
    f.dead_letter_topic = name + ".dlq";
    f.results_topic = name + ".results";
    f.retry.max_attempts = 2;
    f.scaling.min = 0;
    f.scaling.max = 4;
    f.scaling.target_drain = std::chrono::seconds(2);
    f.scaling.stabilization = plan.idle_to_zero;
    f.scaling.idle_to_zero = plan.idle_to_zero;
    config.functions.push_back(std::move(f));
  };
  add("image.thumbnail",
      {{"sizes", {{{"width", 256}, {"height", 256}}, {{"width", 96}, {"height", 96}, {"mode", "fill"}}}},
       {"format", "jpeg"}},
      4);
  add("video.thumbnails", {{"every_seconds", 1}, {"width", 240}, {"columns", 3}}, 2);
  // One reading per event from the simulator, one event at a time per worker: the arrival rate,
  // not a thread pool, decides how many workers run. The sample file spans 20 minutes of readings:
  // windows of 10 minutes, nothing counted late.
  add("iot.ingest",
      {{"window_ms", 600000}, {"max_lateness_ms", 3600000}, {"thresholds", {{"temp", {{"above", 80}}}}}}, 1);
  config.functions.back().batch = BatchSpec{1, std::chrono::milliseconds(0)};
  return config;
}

std::string FileNames(const std::string& files_json) {
  const auto files = nlohmann::json::parse(files_json.empty() ? "[]" : files_json, nullptr, false);
  std::vector<std::string> names;
  if (files.is_array()) {
    for (const auto& f : files) {  // a file PUT to outputs.url has a name and no path
      names.push_back(f.contains("name") ? f.value("name", "")
                                         : std::filesystem::path(f.value("path", "")).filename().string());
    }
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string Summary(const Outcome& o) {
  if (o.status != OutcomeStatus::kOk) return fmt::format("{}: {}", o.error_kind, o.error);
  const auto r = nlohmann::json::parse(o.output, nullptr, false);
  if (o.function == "image.thumbnail") return "thumbnails " + FileNames(o.files_json);
  if (o.function == "video.thumbnails" && r.is_object()) {
    const auto& sheet = r.value("contact_sheet", nlohmann::json());
    return fmt::format("{} frames of {:.0f} s; contact sheet {}x{}",
                       r.value("frames", nlohmann::json::array()).size(), r["source"].value("duration", 0.0),
                       sheet.is_object() ? sheet.value("width", 0) : 0,
                       sheet.is_object() ? sheet.value("height", 0) : 0);
  }
  if (o.function == "iot.ingest" && r.is_object() && r.contains("readings")) {
    return fmt::format("{} readings accepted, {} rejected, {} aggregates, {} alert(s)",
                       r["readings"].value("accepted", 0), r["readings"].value("rejected", 0),
                       r.value("aggregates", nlohmann::json::array()).size(),
                       r.value("alerts", nlohmann::json::array()).size());
  }
  return o.output.size() > 60 ? o.output.substr(0, 57) + "..." : o.output;
}

// Outcome records from the functions' results topics (durable: none is missed, however many).
class Outcomes {
 public:
  explicit Outcomes(const kafka::KafkaOptions& kafka)
      : consumer_(kafka, kafka::Consumer::Options{"runnel.demo"}) {
    kafka::Admin admin(kafka);
    std::vector<kafka::TopicPartitionOffset> partitions;
    for (const auto& f : kFunctions) {
      for (auto p : admin.Partitions(f + ".results"))
        partitions.push_back({f + ".results", p, kafka::kOffsetBeginning});
    }
    consumer_.Assign(partitions);
  }
  // Reads what has arrived (waiting at most `wait` for the first record); returns the new outcomes.
  std::vector<Outcome> Drain(std::chrono::milliseconds wait) {
    std::vector<Outcome> got;
    for (;;) {
      auto batch = consumer_.PollBatch(1000, got.empty() ? wait : std::chrono::milliseconds(0));
      for (auto& m : batch) {
        for (const auto& h : m.headers) {
          if (h.name == header::kResult) got.push_back(Outcome::FromFrames(h.value, m.value));
        }
      }
      if (batch.size() < 1000) break;
    }
    for (const auto& o : got) ++count_[o.function];
    return got;
  }
  std::size_t Count(const std::string& function) const {
    const auto it = count_.find(function);
    return it == count_.end() ? 0 : it->second;
  }

 private:
  kafka::Consumer consumer_;
  std::map<std::string, std::size_t> count_;
};

// The demo's own stack as its status lines ask it: the endpoints it read, the local keys.
StackAccess DemoAccess(const nlohmann::json& endpoints, const std::filesystem::path& root) {
  StackAccess access;
  access.endpoints = endpoints;
  access.keys = security::LocalClientKeysFor(root, endpoints);
  access.where = root.string();
  return access;
}

// "image.thumbnail 0, video.thumbnails 0, iot.ingest 3" and the total, from the stack's status.
std::pair<std::string, int> WorkersLine(const nlohmann::json& endpoints, const std::filesystem::path& root) {
  try {
    const auto status = QueryStatus(DemoAccess(endpoints, root), std::chrono::seconds(1));
    std::vector<std::string> parts;
    int total = 0;
    for (const auto& f : status.at("functions")) {
      parts.push_back(fmt::format("{} {}", f.value("name", "?"), f.value("running", 0)));
      total += f.value("running", 0);
    }
    return {fmt::format("{}", fmt::join(parts, ", ")), total};
  } catch (const Error& e) {
    return {fmt::format("(no status: {})", e.what()), -1};
  }
}

std::string IotLine(const nlohmann::json& endpoints, const std::filesystem::path& root) {
  try {
    const auto status = QueryStatus(DemoAccess(endpoints, root), std::chrono::seconds(1));
    for (const auto& f : status.at("functions")) {
      if (f.value("name", "") != "iot.ingest") continue;
      return fmt::format("lag {:>5}  done {:>6.0f}/s  workers {} running, {} desired", f.value("lag", 0),
                         f.value("completion_per_s", 0.0), f.value("running", 0), f.value("desired", 0));
    }
  } catch (const Error& e) {
    return fmt::format("(no status: {})", e.what());
  }
  return "(no status for iot.ingest)";
}

void Flush() { std::fflush(stdout); }

// Counts the regular files under `dir` (recursively) named `name`, or all of them when it is empty.
std::size_t CountFiles(const std::filesystem::path& dir, const std::string& name) {
  std::size_t n = 0;
  if (std::filesystem::is_directory(dir)) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      n += e.is_regular_file() && (name.empty() || e.path().filename() == name) ? 1 : 0;
    }
  }
  return n;
}

// One run of the demo on a started stack: the five steps it prints, in order.
class DemoRun {
 public:
  DemoRun(const DemoPlan& plan, const StateDir& state, const CommonOptions& common, Clock::time_point started)
      : plan_(plan),
        state_(state),
        endpoints_(state.ReadEndpoints()),
        client_(common.state_dir),
        kafka_(client_.Kafka()),
        outcomes_(kafka_),
        producer_(client_.Producer(kFunctions)),  // each function on the topic of its name
        started_(started) {}

  // 1. The stack and its functions.
  void ShowStack() {
    fmt::print(
        "1. A stack on the embedded Kafka broker ({}), every function scaled to zero until events arrive:\n",
        kafka_.bootstrap);
    for (const auto& f : kFunctions) fmt::print("     {:<17} topic {:<17} workers 0..4\n", f, f);
    fmt::print("   (`runnel status` and `runnel results` work against it meanwhile: state dir {})\n\n",
               state_.Root().string());
    Flush();
  }

  // 2. Uploads by file:// reference and the readings file inline, each outcome as it arrives.
  void Upload(const std::filesystem::path& samples) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(samples)) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    int images = 0;
    int videos = 0;
    for (const auto& path : files) {
      const std::string type = ContentTypeFor(path);
      const bool image = type.rfind("image/", 0) == 0;
      if (!image && type.rfind("video/", 0) != 0) continue;
      Envelope env;
      env.content_type = type;
      env.file = FileRef{path.string(), std::filesystem::file_size(path), path.filename().string()};
      Publish(image ? "image.thumbnail" : "video.thumbnails", path.filename().string(), "", env,
              path.filename().string());
      ++(image ? images : videos);
    }
    if (std::ifstream readings(samples / "readings.ndjson"); readings) {
      Envelope env;
      env.content_type = "application/x-ndjson";
      Publish("iot.ingest", "site-1", std::string(std::istreambuf_iterator<char>(readings), {}), env,
              "readings.ndjson");
    }
    if (producer_->Flush(std::chrono::seconds(30)) != 0) {
      throw Error("the broker did not acknowledge every upload", true);
    }
    fmt::print(
        "2. Uploaded {} image(s) and {} video(s) by reference, and a file of sensor readings; outcomes as "
        "they arrive:\n",
        images, videos);
    Flush();
    std::size_t seen = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (seen < what_.size() && Clock::now() < deadline) {
      for (const auto& o : outcomes_.Drain(std::chrono::milliseconds(200))) {
        if (!what_.contains(o.id)) continue;
        ++seen;
        fmt::print("   {:>5.1f} s  {:<16} {:<6} {:<16} {}\n", Since(), o.function, StatusName(o.status),
                   what_[o.id], Summary(o));
        Flush();
      }
    }
    if (seen < what_.size()) {
      throw Error(fmt::format("only {} of {} uploads had an outcome within 60 s", seen, what_.size()), true);
    }
    fmt::print("   workers woken from zero by the first event of each function: {}\n",
               WorkersLine(endpoints_, state_.Root()).first);
  }

  // 3. Streaming readings at each rate of the plan: the workers follow the rate.
  void Stream() {
    fmt::print(
        "\n3. Streaming readings from {} simulated devices to iot.ingest: {} reading(s)/s, {} s each\n",
        plan_.devices, fmt::join(plan_.rates, ", then "), plan_.phase.count() / 1000);
    fmt::print("   {:>5}  {:>6}  {:>7}   iot.ingest\n", "time", "rate", "sent");
    Flush();
    SensorSimulator simulator(plan_.devices, 7);
    for (const double rate : plan_.rates) {
      const auto report =
          PublishAtRate(*producer_, "iot.ingest", simulator, rate, plan_.phase, [&](int, std::int64_t n) {
            (void)outcomes_.Drain(std::chrono::milliseconds(0));
            fmt::print("   {:>4.0f} s  {:>4.0f}/s  {:>7}   {}\n", Since(), rate, sent_ + n,
                       IotLine(endpoints_, state_.Root()));
            Flush();
          });
      sent_ += report.sent;
      if (report.failed > 0) {
        throw Error(fmt::format("{} reading(s) not acknowledged by Kafka", report.failed), true);
      }
    }
  }

  // 4. The backlog drains, then every function goes back to zero workers. 0 when both happened
  // within the plan's deadline, 1 otherwise.
  int DrainToZero() {
    fmt::print(
        "\n4. Readings stopped after {} of them: the backlog drains, then the workers go back to zero\n",
        sent_);
    Flush();
    const std::size_t iot_expected = static_cast<std::size_t>(sent_) + 1;  // + readings.ndjson
    const auto deadline = Clock::now() + plan_.to_zero_deadline;
    auto next_line = Clock::now();
    int running = -1;
    while (Clock::now() < deadline) {
      (void)outcomes_.Drain(std::chrono::milliseconds(100));
      if (Clock::now() < next_line) continue;
      next_line += std::chrono::seconds(1);
      const auto [line, total] = WorkersLine(endpoints_, state_.Root());
      running = total;
      fmt::print("   {:>4.0f} s  outcomes {:>6} of {:<6}  workers: {}\n", Since(),
                 outcomes_.Count("iot.ingest"), iot_expected, line);
      Flush();
      if (running == 0 && outcomes_.Count("iot.ingest") >= iot_expected) break;
    }
    if (outcomes_.Count("iot.ingest") < iot_expected) {
      fmt::print("   only {} of {} readings had an outcome within {} s\n", outcomes_.Count("iot.ingest"),
                 iot_expected, plan_.to_zero_deadline.count());
      return 1;
    }
    if (running != 0) {
      fmt::print("   {} worker(s) still running after {} s\n", running, plan_.to_zero_deadline.count());
      return 1;
    }
    fmt::print("   every reading has its outcome and every function is back to zero workers\n");
    return 0;
  }

  // 5. Where everything is.
  void ShowOutputs() const {
    const std::filesystem::path out = endpoints_.value("output_dir", "");
    fmt::print("\n5. Outputs, under {}:\n", out.string());
    fmt::print("     image.thumbnail/<event id>/    {} thumbnail(s)\n",
               CountFiles(out / "image.thumbnail", ""));
    fmt::print("     video.thumbnails/<event id>/   {} frame(s) and {} contact sheet(s) (contact.jpg)\n",
               CountFiles(out / "video.thumbnails", "") - CountFiles(out / "video.thumbnails", "contact.jpg"),
               CountFiles(out / "video.thumbnails", "contact.jpg"));
    fmt::print(
        "   IoT results (aggregates, alerts) are records on iot.ingest.results; failed events are on each\n"
        "   function's .dlq topic (`runnel dlq FUNCTION` while a stack runs); worker logs: {}\n",
        (state_.Root() / "logs").string());
    Flush();
  }

 private:
  double Since() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }

  void Publish(const std::string& topic, std::optional<std::string> key, std::string payload, Envelope env,
               std::string label) {
    env.id = NewEventId();
    env.trace_id = NewTraceId();
    what_[env.id] = std::move(label);
    producer_->Produce({topic, kafka::kAnyPartition, std::move(key), std::move(payload), env.Encode()}, {});
  }

  const DemoPlan& plan_;
  const StateDir& state_;
  const nlohmann::json endpoints_;
  const StackClient client_;
  const kafka::KafkaOptions kafka_;
  Outcomes outcomes_;
  std::unique_ptr<kafka::Producer> producer_;
  const Clock::time_point started_;
  std::map<std::string, std::string> what_;  // event id -> what it was
  std::int64_t sent_ = 0;                    // readings streamed
};

int RunDemo(const std::string& samples_dir, bool short_mode, const CommonOptions& common) {
  const auto samples = std::filesystem::absolute(samples_dir);
  if (!std::filesystem::is_directory(samples)) {
    throw ConfigError(fmt::format("sample data not found at {} (pass --samples DIR)", samples.string()));
  }
  const DemoPlan plan = PlanFor(short_mode);
  StateDir state = StateDir::Resolve(common.state_dir);
  StackLock lock(state, "runnel demo");
  const auto started = Clock::now();
  int exit_code = 0;
  {
    stack::Stack stack({DemoStack(plan), state, std::filesystem::read_symlink("/proc/self/exe")});
    DemoRun run(plan, state, common, started);
    run.ShowStack();
    run.Upload(samples);
    run.Stream();
    exit_code = run.DrainToZero();
    run.ShowOutputs();
  }
  fmt::print("\nThe stack stopped after {:.0f} s; nothing is left running. Next: samples/README.md.\n",
             std::chrono::duration<double>(Clock::now() - started).count());
  return exit_code;
}

}  // namespace

Command AddDemo(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string samples = "samples/data";
    bool short_mode = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("demo", "Run the quick-start demo on the embedded broker and exit");
  sub->add_option("--samples", flags->samples, "Directory of sample images, videos and readings.ndjson")
      ->capture_default_str();
  sub->add_flag("--short", flags->short_mode,
                "A shorter stream and faster scale-down (about a third of the time)");
  return {sub, [flags, &common] { return RunDemo(flags->samples, flags->short_mode, common); }};
}

}  // namespace runnel::cli
