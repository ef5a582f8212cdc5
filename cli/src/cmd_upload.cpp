// `runnel upload PATH...`: one file-upload event per file (directories recursively), each carrying
// its file by reference. With --wait it follows the outcomes (a progress bar on a terminal, plain
// lines otherwise) and ends with a summary. Exit status: 0 all done, 1 some failed, 4 timed out.
#include <fmt/format.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "kafka_client.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/json.hpp"
#include "stack_client.hpp"

namespace runnel::cli {
namespace {

// The function for a file: the given one, else by type (images, videos); empty when none fits.
std::string FunctionFor(const std::filesystem::path& file, const std::string& given) {
  if (!given.empty()) return given;
  const std::string type = ContentTypeFor(file);
  if (type.rfind("image/", 0) == 0) return "image.thumbnail";
  if (type.rfind("video/", 0) == 0) return "video.thumbnails";
  return {};
}

// Files named directly must have a function; files found in a directory without one, or whose
// function the running stack does not serve (a video in a folder of photos), are skipped.
std::vector<std::filesystem::path> CollectFiles(const std::vector<std::string>& paths,
                                                const std::string& function, const StackClient& stack) {
  const auto served = stack.Endpoints().value("functions", nlohmann::json::object());
  std::vector<std::filesystem::path> files;
  for (const auto& p : paths) {
    const auto path = std::filesystem::absolute(p);
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
        if (!entry.is_regular_file()) continue;
        if (FunctionFor(entry.path(), function).empty()) {
          fmt::print(stderr, "skipping {}: no function for type {} (pass --function)\n",
                     entry.path().string(), ContentTypeFor(entry.path()));
          continue;
        }
        if (const auto f = FunctionFor(entry.path(), function); !served.contains(f)) {
          fmt::print(stderr, "skipping {}: the running stack has no function {} (pass --function)\n",
                     entry.path().string(), f);
          continue;
        }
        files.push_back(entry.path());
      }
    } else if (std::filesystem::is_regular_file(path)) {
      if (FunctionFor(path, function).empty()) {
        throw ConfigError(
            fmt::format("{}: no function for type {}; pass --function", p, ContentTypeFor(path)));
      }
      files.push_back(path);
    } else {
      throw ConfigError(fmt::format("{} is not a file or directory", p));
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

void Progress(bool tty, std::size_t done, std::size_t failed, std::size_t total) {
  if (!tty) return;
  constexpr int kWidth = 30;
  const int filled = total == 0 ? kWidth : static_cast<int>(kWidth * (done + failed) / total);
  fmt::print("\r[{}{}] {}/{} done, {} failed", std::string(static_cast<std::size_t>(filled), '#'),
             std::string(static_cast<std::size_t>(kWidth - filled), '.'), done, total, failed);
  std::fflush(stdout);
}

}  // namespace

Command AddUpload(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::vector<std::string> paths;
    std::string function;
    bool wait = false;
    double timeout = 300;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("upload", "Publish one upload event per file (directories recursively)");
  sub->add_option("paths", flags->paths, "Files or directories")->required();
  sub->add_option("--function", flags->function,
                  "Target function (default: image.thumbnail for images, video.thumbnails for videos)");
  sub->add_flag("--wait", flags->wait, "Follow the outcomes and print a summary");
  sub->add_option("--timeout", flags->timeout, "How long to wait with --wait (default 5m)")
      ->transform(DurationSeconds())
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", flags->json, "Print the summary (or the event ids) as JSON");
  AddKafkaClientFlags(sub, common);
  return {
      sub, [flags, &common] {
        const StackClient stack(StackAccess::Resolve(common));
        const auto files = CollectFiles(flags->paths, flags->function, stack);
        if (files.empty()) throw ConfigError("no files to upload");
        const std::string token = "upload." + NewEventId();
        std::map<std::string, std::string> topic_of;  // function -> topic
        std::vector<std::string> function_of;
        for (const auto& f : files) {
          function_of.push_back(FunctionFor(f, flags->function));
          if (!topic_of.contains(function_of.back()))
            topic_of[function_of.back()] = stack.Function(function_of.back()).topic;
        }
        std::optional<ResultsSubscription> results;
        if (flags->wait) {
          std::vector<std::string> prefixes;
          for (const auto& [function, topic] : topic_of)
            prefixes.push_back(fmt::format("{}/{}", function, token));
          results.emplace(stack, prefixes);
        }
        std::map<std::string, std::filesystem::path> file_of;  // event id -> file
        {
          std::vector<std::string> topics;
          for (const auto& [function, topic] : topic_of) topics.push_back(topic);
          auto producer = stack.Producer(topics);
          for (std::size_t i = 0; i < files.size(); ++i) {
            Envelope env;
            env.id = NewEventId();
            env.trace_id = NewTraceId();
            env.reply_to = token;
            env.content_type = ContentTypeFor(files[i]);
            env.file = FileRef{files[i].string(), std::filesystem::file_size(files[i]),
                               files[i].filename().string()};
            producer->Produce(
                {topic_of[function_of[i]], kafka::kAnyPartition, std::nullopt, "", env.Encode()}, {});
            file_of[env.id] = files[i];
            if (!flags->wait && !flags->json) fmt::print("{} {}\n", env.id, files[i].string());
          }
          if (producer->Flush(std::chrono::seconds(60)) != 0)
            throw Error("some uploads were not acknowledged by Kafka", true);
        }
        if (!flags->wait) {
          if (flags->json) {
            nlohmann::json ids = nlohmann::json::object();
            for (const auto& [id, file] : file_of) ids[id] = file.string();
            fmt::print("{}\n", JsonText(nlohmann::json{{"events", ids}}));
          }
          return 0;
        }

        const bool tty = ::isatty(1) != 0 && !flags->json;
        std::size_t done = 0;
        nlohmann::json failures = nlohmann::json::array();
        nlohmann::json outputs = nlohmann::json::array();
        std::set<std::string> seen;
        const auto until = std::chrono::steady_clock::now() +
                           std::chrono::milliseconds(static_cast<std::int64_t>(flags->timeout * 1000));
        Progress(tty, 0, 0, files.size());
        while (seen.size() < files.size()) {
          const auto left =
              std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
          if (left.count() <= 0) break;
          auto o = results->Next(left);
          if (!o || !file_of.contains(o->id) || !seen.insert(o->id).second) continue;
          const std::string name = file_of[o->id].string();
          if (o->status == OutcomeStatus::kOk) {
            ++done;
            const auto files_json =
                nlohmann::json::parse(o->files_json.empty() ? "[]" : o->files_json, nullptr, false);
            // An output PUT to outputs.url has a url instead of a path (docs/protocol.md §3.1).
            for (const auto& f : files_json)
              outputs.push_back(f.contains("url") ? f.value("url", "") : f.value("path", ""));
            if (!tty && !flags->json) fmt::print("done   {} ({} output(s))\n", name, files_json.size());
          } else {
            failures.push_back({{"file", name}, {"error_kind", o->error_kind}, {"error", o->error}});
            if (!tty && !flags->json) fmt::print("failed {}: {}: {}\n", name, o->error_kind, o->error);
          }
          Progress(tty, done, failures.size(), files.size());
        }
        if (tty) fmt::print("\n");
        const std::size_t missing = files.size() - seen.size();
        if (flags->json) {
          fmt::print("{}\n", JsonText(nlohmann::json{{"files", files.size()},
                                                     {"done", done},
                                                     {"failed", failures},
                                                     {"timed_out", missing},
                                                     {"outputs", outputs}}));
        } else {
          fmt::print(
              "{} file(s): {} done, {} failed{}\n", files.size(), done, failures.size(),
              missing > 0 ? fmt::format(", {} without an outcome after {} s", missing, flags->timeout) : "");
          for (const auto& f : failures)
            fmt::print("  failed {}: {}\n", f["file"].get<std::string>(), f["error"].get<std::string>());
          if (!outputs.empty()) {
            const std::string first = outputs.front().get<std::string>();
            if (IsHttpUrl(first)) {
              fmt::print("outputs: {} file(s) PUT to outputs.url, e.g. {}\n", outputs.size(), first);
            } else {
              fmt::print("outputs: {} file(s) under {}\n", outputs.size(),
                         stack.Endpoints().value("output_dir", ""));
            }
          }
        }
        if (missing > 0) return exit_code::kTimeout;
        return failures.empty() ? exit_code::kOk : exit_code::kFailure;
      }};
}

}  // namespace runnel::cli
