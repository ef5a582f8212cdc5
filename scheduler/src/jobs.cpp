#include "runnel/scheduler/jobs.hpp"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "runnel/scheduler/cron.hpp"
#include "runnel/scheduler/scheduler.hpp"

namespace runnel::scheduler {
namespace {

constexpr std::size_t kFailuresKept = 100;  // the record lists this many; the count is exact

nlohmann::json ReadJson(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return nullptr;
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

}  // namespace

std::string ContentTypeForPath(const std::filesystem::path& path) {
  static const std::map<std::string, std::string> kTypes = {
      {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"},       {".png", "image/png"},
      {".webp", "image/webp"},     {".gif", "image/gif"},         {".bmp", "image/bmp"},
      {".tif", "image/tiff"},      {".tiff", "image/tiff"},       {".mp4", "video/mp4"},
      {".mov", "video/quicktime"}, {".avi", "video/x-msvideo"},   {".mkv", "video/x-matroska"},
      {".webm", "video/webm"},     {".json", "application/json"}, {".ndjson", "application/x-ndjson"},
      {".txt", "text/plain"},      {".csv", "text/csv"},          {".pdf", "application/pdf"}};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

std::vector<BatchItem> ListBatchItems(const ScheduleSpec& spec) {
  std::vector<BatchItem> items;
  if (!spec.files) {
    BatchItem item;
    item.envelope.id = NewEventId();
    item.envelope.trace_id = NewTraceId();
    item.envelope.content_type = spec.content_type.empty() ? "text/plain" : spec.content_type;
    item.payload = spec.payload;
    item.label = "payload";
    items.push_back(std::move(item));
    return items;
  }
  const auto& files = *spec.files;
  const std::filesystem::path dir(files.dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(fmt::format("files.dir {} is not a directory", files.dir), true);
  std::vector<std::filesystem::path> paths;
  auto consider = [&](const std::filesystem::directory_entry& entry) {
    std::error_code e;
    if (!entry.is_regular_file(e)) return;
    if (::fnmatch(files.glob.c_str(), entry.path().filename().c_str(), FNM_PERIOD) == 0)
      paths.push_back(entry.path());
  };
  try {
    if (files.recursive) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(
               dir, std::filesystem::directory_options::skip_permission_denied)) {
        consider(entry);
      }
    } else {
      for (const auto& entry : std::filesystem::directory_iterator(dir)) consider(entry);
    }
  } catch (const std::filesystem::filesystem_error& e) {
    throw Error(fmt::format("cannot list {}: {}", files.dir, e.code().message()), true);
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const auto absolute = std::filesystem::absolute(p).lexically_normal();
    BatchItem item;
    item.envelope.id = NewEventId();
    item.envelope.trace_id = NewTraceId();
    item.envelope.content_type = ContentTypeForPath(p);
    std::error_code e;
    const auto size = std::filesystem::file_size(p, e);
    std::string name = p.filename().string();
    if (name.size() > limits::kFileNameMax) name.resize(limits::kFileNameMax);
    item.envelope.file =
        FileRef{absolute.string(), e ? std::nullopt : std::optional<std::uint64_t>(size), name};
    item.label = p.lexically_relative(dir).string();
    items.push_back(std::move(item));
  }
  return items;
}

JobTracker::JobTracker(std::filesystem::path jobs_dir) : dir_(std::move(jobs_dir)) {
  std::filesystem::create_directories(dir_);
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().extension() != ".json") continue;
    auto j = ReadJson(entry.path());
    if (!j.is_object() || j.value("state", "") != "running") continue;
    j["state"] = "interrupted";
    j["error"] = "the stack stopped before every item had an outcome; outcomes after that are not counted";
    WriteJsonAtomically(entry.path(), j);
  }
}

std::string JobTracker::NewJobId(const std::string& base) const {
  std::string id = base;
  for (int n = 2; jobs_.contains(id) || std::filesystem::exists(RecordFile(id)); ++n)
    id = fmt::format("{}-{}", base, n);
  return id;
}

void JobTracker::Begin(const Start& start, const std::vector<BatchItem>& items, TimePoint now) {
  Job job;
  job.start = start;
  job.started = now;
  job.items = items.size();
  for (const auto& item : items) job.pending.emplace(item.envelope.id, item.label);
  if (job.pending.empty()) job.finished = now;
  jobs_[start.job] = std::move(job);
  Flush(now, true);
}

void JobTracker::BeginFailed(const Start& start, const std::string& error, TimePoint now) {
  Job job;
  job.start = start;
  job.started = now;
  job.finished = now;
  job.error = error;
  jobs_[start.job] = std::move(job);
  Flush(now, true);
}

void JobTracker::OnOutcome(const Outcome& o, TimePoint now) {
  auto it = jobs_.find(o.job_id);
  if (it == jobs_.end()) return;
  Job& job = it->second;
  auto item = job.pending.find(o.id);
  if (item == job.pending.end()) return;
  if (o.status == OutcomeStatus::kOk) {
    ++job.done;
  } else {
    ++job.failed;
    if (job.failures.size() < kFailuresKept) {
      job.failures.push_back({{"id", o.id},
                              {"item", item->second},
                              {"error", o.error},
                              {"error_kind", o.error_kind},
                              {"status", StatusName(o.status)}});
    }
  }
  job.pending.erase(item);
  if (job.pending.empty()) job.finished = now;
  job.dirty = true;
}

nlohmann::json JobTracker::Job::Json(TimePoint now) const {
  std::string state = "running";
  if (finished) state = (failed > 0 || !error.empty()) ? "failed" : "done";
  const auto end = finished.value_or(now);
  nlohmann::json j = {
      {"job", start.job},
      {"schedule", start.schedule},
      {"function", start.function},
      {"trigger", start.trigger},
      {"state", state},
      {"items", items},
      {"done", done},
      {"failed", failed},
      {"pending", pending.size()},
      {"started_at", FormatUtc(started)},
      {"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(end - started).count()},
      {"failures", failures}};
  if (start.slot) j["slot"] = FormatUtc(*start.slot);
  if (finished) j["finished_at"] = FormatUtc(*finished);
  if (!error.empty()) j["error"] = error;
  return j;
}

void JobTracker::Flush(TimePoint now, bool force) {
  // A finished job's record is written at once: a client told "done" (the control socket answers
  // from memory) may read the file next. The others at most every 200 ms.
  const bool due = force || now - last_flush_ >= std::chrono::milliseconds(200);
  if (due) last_flush_ = now;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = it->second;
    if (job.dirty && (due || job.finished)) {
      WriteJsonAtomically(RecordFile(it->first), job.Json(now));
      job.dirty = false;
    }
    if (job.finished) {
      log::kScheduler->info("job {} finished: {} item(s), {} done, {} failed{}", it->first, job.items,
                            job.done, job.failed, job.error.empty() ? "" : ": " + job.error);
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<nlohmann::json> JobTracker::Record(const std::string& job) const {
  if (auto it = jobs_.find(job); it != jobs_.end()) return it->second.Json(std::chrono::system_clock::now());
  auto j = ReadJson(RecordFile(job));
  if (!j.is_object()) return std::nullopt;
  return j;
}

}  // namespace runnel::scheduler
