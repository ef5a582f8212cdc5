// Where functions write output files: <root>/<function>/<event id>/<name>. Names depend only on
// the function, the event id and the output name, so a rerun of an event overwrites its outputs
// instead of duplicating them. Writes go to a temporary file renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace runnel::functions {

struct OutputFile {
  std::string path;  // absolute
  std::uint64_t bytes = 0;
  nlohmann::json facts = nlohmann::json::object();  // e.g. {"width": 256, "height": 192, "format": "jpeg"}
  // Where the worker PUT the file (runnel.yaml's `outputs.url`, UploadOutputs), which then removed
  // `path`; empty: the file is at `path`, in output_dir.
  std::string url = {};
};

class OutputStore {
 public:
  explicit OutputStore(const std::filesystem::path& root);
  const std::filesystem::path& Root() const { return root_; }
  // Writes `bytes` atomically; throws FunctionError(kTransient) when the disk refuses.
  OutputFile Write(std::string_view function, std::string_view event_id, std::string_view name,
                   std::string_view bytes, nlohmann::json facts = nlohmann::json::object());
  // The path Write would use, for functions that let a library write the file (e.g. a video writer);
  // the directory exists on return.
  std::filesystem::path PathFor(std::string_view function, std::string_view event_id, std::string_view name);

 private:
  std::filesystem::path root_;
};

}  // namespace runnel::functions
