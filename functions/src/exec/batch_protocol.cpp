#include "batch_protocol.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

#include "runnel/core/outcome.hpp"

namespace runnel::functions {
namespace {

// The reason a result line is unusable, or empty.
std::string CheckLine(const nlohmann::json& line) {
  if (!line.is_object()) return "each line must be a JSON object";
  if (!line.contains("id") || !line["id"].is_string()) return "\"id\" must be the event id (a string)";
  const bool ok = line.contains("output"), failed = line.contains("error");
  if (ok == failed) return "a line holds either \"output\" or \"error\"";
  if (failed && !line["error"].is_string()) return "\"error\" must be a string";
  if (line.contains("content_type") && !line["content_type"].is_string())
    return "\"content_type\" must be a string";
  if (line.contains("kind") && (!line["kind"].is_string() || !ParseErrc(line["kind"].get<std::string>()))) {
    return "\"kind\" must be an error kind (bad-input, limit-exceeded, bad-config, timeout, transient, "
           "internal)";
  }
  for (const auto& [key, value] : line.items()) {
    if (key != "id" && key != "output" && key != "content_type" && key != "error" && key != "kind") {
      return fmt::format("unknown key \"{}\" (known: id, output, content_type, error, kind)", key);
    }
  }
  return {};
}

ResultOrError ToOutcome(const nlohmann::json& line) {
  ResultOrError outcome;
  if (line.contains("error")) {
    const Errc code = line.contains("kind") ? *ParseErrc(line["kind"].get<std::string>()) : Errc::kTransient;
    outcome.error = FunctionError(code, line["error"].get<std::string>());
    return outcome;
  }
  const nlohmann::json& output = line["output"];
  Result result;
  if (output.is_string()) {
    result.output = output.get<std::string>();
    result.content_type = "text/plain";
  } else {
    result.output = output.dump();
    result.content_type = "application/json";
  }
  if (line.contains("content_type")) result.content_type = line["content_type"].get<std::string>();
  outcome.result = std::move(result);
  return outcome;
}

}  // namespace

std::string BatchInput(std::span<const Event> events, const std::filesystem::path& outputs_root,
                       const std::string& function) {
  std::string input;
  for (const Event& event : events) {
    const Envelope& env = event.envelope;
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& h : env.extra) {
      if (IsPrintableUtf8(h.value)) headers[h.name] = h.value;
    }
    nlohmann::json line = {
        {"id", env.id},
        {"content_type", env.content_type.empty() ? "application/octet-stream" : env.content_type},
        {"topic", event.topic},
        {"partition", event.partition},
        {"offset", event.offset},
        {"attempt", env.attempt},
        {"hop", env.hop},
        {"output_dir", (outputs_root / function / env.id).string()},
        {"headers", std::move(headers)}};
    if (!event.key.empty()) {
      line[IsPrintableUtf8(event.key) ? "key" : "key_base64"] =
          IsPrintableUtf8(event.key) ? event.key : Base64Encode(event.key);
    }
    if (env.file) {
      line["file"] = {
          {env.file->IsUrl() ? "url" : "path", env.file->IsUrl() ? env.file->url : env.file->path},
          {"name", env.file->name}};
      if (env.file->size) line["file"]["size"] = *env.file->size;
    } else if (IsPrintableUtf8(event.payload)) {
      line["payload"] = event.payload;
    } else {
      line["payload_base64"] = Base64Encode(event.payload);
    }
    input += line.dump();
    input += '\n';
  }
  return input;
}

std::vector<ResultOrError> BatchOutcomes(std::span<const Event> events, std::string_view out) {
  std::map<std::string, std::optional<nlohmann::json>, std::less<>> by_id;
  for (const Event& event : events) by_id.emplace(event.envelope.id, std::nullopt);
  std::vector<ResultOrError> outcomes(events.size());
  const auto fail_all = [&](const std::string& why) {
    for (ResultOrError& outcome : outcomes) outcome.error = FunctionError(Errc::kInternal, why);
    return outcomes;
  };
  std::size_t number = 0;
  std::vector<std::string> twice;
  while (!out.empty()) {
    const std::size_t end = out.find('\n');
    const std::string_view text = out.substr(0, end);
    out = end == std::string_view::npos ? std::string_view() : out.substr(end + 1);
    ++number;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const nlohmann::json line = nlohmann::json::parse(text, nullptr, false);
    if (line.is_discarded()) return fail_all(fmt::format("batch stdout line {}: not valid JSON", number));
    if (const std::string why = CheckLine(line); !why.empty()) {
      return fail_all(fmt::format("batch stdout line {}: {}", number, why));
    }
    const auto it = by_id.find(line["id"].get<std::string>());
    if (it == by_id.end()) {
      return fail_all(fmt::format("batch stdout line {}: event '{}' is not in this batch", number,
                                  line["id"].get<std::string>()));
    }
    if (it->second) twice.push_back(it->first);
    it->second = line;
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string& id = events[i].envelope.id;
    const auto& line = by_id.at(id);
    if (std::find(twice.begin(), twice.end(), id) != twice.end()) {
      outcomes[i].error = FunctionError(Errc::kInternal, "the program wrote two result lines for this event");
    } else if (!line) {
      outcomes[i].error = FunctionError(Errc::kInternal, "the program wrote no result line for this event");
    } else {
      outcomes[i] = ToOutcome(*line);
    }
  }
  return outcomes;
}

}  // namespace runnel::functions
