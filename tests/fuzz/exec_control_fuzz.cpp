// The control file of an exec function (functions/src/exec/control_file.cpp): the output files
// and emits a program lists, one JSON object per line. Input: the file's bytes. The call has the
// events "ev-1" (its output directory holds the regular file out.txt and the directory sub) and
// "" (a single call's own event, the same directory). Oracle: Read throws FunctionError or lists
// only regular files inside that directory and emits with a topic.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "exec/control_file.hpp"

namespace {

namespace fs = std::filesystem;

// The output directory, removed when the fuzzer exits.
struct OutputDir {
  OutputDir() : path(fs::temp_directory_path() / ("runnel-fuzz-outputs-" + std::to_string(::getpid()))) {
    fs::create_directories(path / "sub");
    std::ofstream(path / "out.txt") << "output";
  }
  ~OutputDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  const fs::path path;
};

const OutputDir kOutputs;
const fs::path& kOutputDir = kOutputs.path;

std::optional<fs::path> OutputDirFor(const std::string& event) {
  if (event.empty() || event == "ev-1") return kOutputDir;
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  runnel::functions::ControlFile control;
  std::ofstream(control.Path(), std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const runnel::functions::ControlRequests requests = control.Read(OutputDirFor, 1 << 20);
    for (const auto& listed : requests.outputs) {
      const fs::path path(listed.file.path);
      if (path.parent_path() != kOutputDir || !fs::is_regular_file(path)) std::abort();
    }
    for (const auto& emit : requests.emits) {
      if (emit.topic.empty()) std::abort();
    }
  } catch (const runnel::functions::FunctionError&) {
  }
  return 0;
}
