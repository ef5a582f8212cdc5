// The control file of an exec function: a private file named by $RUNNEL_CONTROL_FILE where the
// program lists, one JSON object per line, the output files it wrote and the records it wants
// emitted (functions/README.md, "Outputs and emits"). stdout stays the result body, untouched.
// Not thread-safe; one per call.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runnel/functions/function.hpp"

namespace runnel::functions {

struct EmitRequest {
  std::string topic;
  std::string key;
  std::string payload;
  Headers headers;
};

struct ListedOutput {
  std::string event;  // the line's "event" (a batch names the event a file belongs to); may be empty
  OutputFile file;
};

struct ControlRequests {
  std::vector<ListedOutput> outputs;
  std::vector<EmitRequest> emits;
};

// Where the output files of `event` (a line's "event", empty when absent) must be; nullopt when
// the call has no such event (or, in a batch, when the line names none).
using OutputDirFor = std::function<std::optional<std::filesystem::path>(const std::string& event)>;

class ControlFile {
 public:
  // Creates an empty private file under the temporary directory. Throws kTransient when it cannot.
  ControlFile();
  ~ControlFile();  // removes the file
  ControlFile(const ControlFile&) = delete;
  ControlFile& operator=(const ControlFile&) = delete;

  const std::string& Path() const { return path_; }

  // Reads and checks every line; nothing is applied here. Outputs must be plain file names of
  // regular files in their event's output directory. Throws FunctionError(kInternal) naming the
  // line and the problem (a program that writes a bad request has a bug), or kLimitExceeded past
  // max_bytes.
  ControlRequests Read(const OutputDirFor& output_dir, std::size_t max_bytes) const;

 private:
  std::string path_;
};

}  // namespace runnel::functions
