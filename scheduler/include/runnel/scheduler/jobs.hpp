// Batch jobs: the events one firing of a schedule publishes, and their completion, tracked from
// the outcomes that carry the job's id (`runnel-job`). Each job's record lives in
// <state dir>/jobs/<job id>.json, rewritten (atomically, at most every 200 ms and at the end) as
// outcomes arrive.
// Thread-safety: none; one thread calls it (the stack's supervision loop).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runnel/core/config.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/outcome.hpp"

namespace runnel::scheduler {

using TimePoint = std::chrono::system_clock::time_point;

// One event of a batch: its envelope (id, content type, file reference, no job id yet), payload,
// and a label for people (the file's path under the directory, or "payload").
struct BatchItem {
  Envelope envelope;
  std::string payload;
  std::string label;
};

// The events a firing of `spec` publishes: its payload, or one file reference per regular file
// under files.dir whose name matches files.glob (fnmatch), sorted by path. Throws Error when the
// directory cannot be read.
std::vector<BatchItem> ListBatchItems(const ScheduleSpec& spec);
// A MIME type from a file name's extension; application/octet-stream when unknown.
std::string ContentTypeForPath(const std::filesystem::path& path);

class JobTracker {
 public:
  // Records left "running" by an earlier stack become "interrupted": their outcomes are not
  // awaited any more.
  explicit JobTracker(std::filesystem::path jobs_dir);

  // `<base>`, or `<base>-2`, `<base>-3`... when a job of that id exists already.
  std::string NewJobId(const std::string& base) const;

  struct Start {
    std::string job;
    std::string schedule;
    std::string function;
    std::string trigger;  // "cron", "catch-up" or "manual"
    std::optional<TimePoint> slot;
  };
  // Starts tracking; `items` are the events (their ids and labels) about to be published.
  void Begin(const Start& start, const std::vector<BatchItem>& items, TimePoint now);
  // A job that could not publish anything (e.g. its directory is missing): recorded as failed.
  void BeginFailed(const Start& start, const std::string& error, TimePoint now);
  // Counts a final outcome of an item; duplicates (at-least-once) and unknown ids are ignored.
  void OnOutcome(const Outcome& outcome, TimePoint now);
  // Writes records that changed (every 200 ms at most unless `force`; a finished job's at once);
  // finished jobs leave memory.
  void Flush(TimePoint now, bool force = false);

  // The record of a job (in memory, or from its file); nullopt when unknown.
  std::optional<nlohmann::json> Record(const std::string& job) const;
  std::filesystem::path RecordFile(const std::string& job) const { return dir_ / (job + ".json"); }

 private:
  struct Job {
    Start start;
    TimePoint started;
    std::optional<TimePoint> finished;
    std::size_t items = 0;
    std::size_t done = 0;
    std::size_t failed = 0;
    std::map<std::string, std::string> pending;  // event id -> label
    nlohmann::json failures = nlohmann::json::array();
    std::string error;
    bool dirty = true;
    nlohmann::json Json(TimePoint now) const;
  };

  std::filesystem::path dir_;
  std::map<std::string, Job> jobs_;
  TimePoint last_flush_{};
};

}  // namespace runnel::scheduler
