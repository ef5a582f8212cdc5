#include "control_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runnel/core/fd.hpp"

namespace runnel::functions {
namespace {

[[noreturn]] void Bad(std::size_t line, std::string_view why) {
  throw FunctionError(Errc::kInternal, fmt::format("RUNNEL_CONTROL_FILE line {}: {}", line, why));
}

std::string StringField(const nlohmann::json& object, const char* key, std::size_t line, bool required) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (required) Bad(line, fmt::format("\"{}\" is missing", key));
    return {};
  }
  if (!it->is_string()) Bad(line, fmt::format("\"{}\" must be a string, got {}", key, it->type_name()));
  return it->get<std::string>();
}

ListedOutput Output(const nlohmann::json& request, const OutputDirFor& dir_for, std::size_t line) {
  const std::string name = StringField(request, "output", line, true);
  const std::string event = StringField(request, "event", line, false);
  const std::optional<std::filesystem::path> dir = dir_for(event);
  if (!dir) {
    Bad(line, event.empty() ? std::string("an output of a batch must name its \"event\"")
                            : fmt::format("output for event '{}', which is not in this call", event));
  }
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    Bad(line, fmt::format("output '{}' is not a plain file name in RUNNEL_OUTPUT_DIR", name));
  }
  nlohmann::json facts = nlohmann::json::object();
  if (const auto it = request.find("facts"); it != request.end()) {
    if (!it->is_object()) Bad(line, "\"facts\" must be an object");
    facts = *it;
  }
  for (const auto& [key, value] : request.items()) {
    if (key != "output" && key != "facts" && key != "event") {
      Bad(line, fmt::format("unknown key \"{}\" in an output (known: output, facts, event)", key));
    }
  }
  const auto path = *dir / name;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    Bad(line, fmt::format("output {} is not a file", path.string()));
  const std::uint64_t bytes = std::filesystem::file_size(path, ec);
  if (ec) Bad(line, fmt::format("output {}: {}", path.string(), ec.message()));
  return ListedOutput{event, OutputFile{path.string(), bytes, std::move(facts)}};
}

EmitRequest Emit(const nlohmann::json& request, std::size_t line) {
  const nlohmann::json& emit = request.at("emit");
  if (!emit.is_object()) Bad(line, "\"emit\" must be an object");
  if (request.size() != 1) Bad(line, "an emit line holds only \"emit\"");
  EmitRequest out;
  out.topic = StringField(emit, "topic", line, true);
  if (out.topic.empty()) Bad(line, "\"topic\" is empty");
  out.key = StringField(emit, "key", line, false);
  out.payload = StringField(emit, "payload", line, true);
  if (const auto it = emit.find("headers"); it != emit.end()) {
    if (!it->is_object()) Bad(line, "\"headers\" must be an object of strings");
    for (const auto& [name, value] : it->items()) {
      if (!value.is_string()) Bad(line, fmt::format("header \"{}\" must be a string", name));
      out.headers.push_back({name, value.get<std::string>()});
    }
  }
  for (const auto& [key, value] : emit.items()) {
    if (key != "topic" && key != "key" && key != "payload" && key != "headers") {
      Bad(line, fmt::format("unknown key \"{}\" in an emit (known: topic, key, payload, headers)", key));
    }
  }
  return out;
}

}  // namespace

ControlFile::ControlFile() {
  std::string pattern = (std::filesystem::temp_directory_path() / "runnel-control-XXXXXX").string();
  const UniqueFd fd(::mkostemp(pattern.data(), O_CLOEXEC));  // the name is what the program gets
  if (!fd) {
    throw FunctionError(Errc::kTransient,
                        fmt::format("cannot create a control file: {}", std::strerror(errno)));
  }
  path_ = std::move(pattern);
}

ControlFile::~ControlFile() { ::unlink(path_.c_str()); }

ControlRequests ControlFile::Read(const OutputDirFor& output_dir, std::size_t max_bytes) const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path_, ec);
  if (ec) return {};  // the program removed it: it asked for nothing
  if (size > max_bytes) {
    throw FunctionError(Errc::kLimitExceeded,
                        fmt::format("RUNNEL_CONTROL_FILE is {} bytes, over max_output {}", size, max_bytes));
  }
  std::ifstream in(path_, std::ios::binary);
  ControlRequests requests;
  std::string text;
  for (std::size_t line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json request = nlohmann::json::parse(text, nullptr, false);
    if (request.is_discarded()) Bad(line, "not valid JSON");
    if (!request.is_object()) Bad(line, "each line must be a JSON object");
    if (request.contains("output")) {
      requests.outputs.push_back(Output(request, output_dir, line));
    } else if (request.contains("emit")) {
      requests.emits.push_back(Emit(request, line));
    } else {
      Bad(line, "unknown request (known: {\"output\": NAME, \"facts\": {...}}, {\"emit\": {...}})");
    }
  }
  return requests;
}

}  // namespace runnel::functions
