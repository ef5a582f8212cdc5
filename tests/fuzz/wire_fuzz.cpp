// The binary task and result headers of the dispatcher <-> worker protocol (core/src/wire.cpp).
// Input: one frame, decoded as a task header and as a result header. Oracle: each decode throws
// WireError or returns a header whose encoding decodes back to the same header.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runnel/core/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  try {
    const runnel::wire::TaskHeader task = runnel::wire::DecodeTask(frame);
    if (runnel::wire::DecodeTask(runnel::wire::Encode(task)) != task) std::abort();
  } catch (const runnel::wire::WireError&) {
  }
  try {
    const runnel::wire::ResultHeader result = runnel::wire::DecodeResult(frame);
    if (runnel::wire::DecodeResult(runnel::wire::Encode(result)) != result) std::abort();
  } catch (const runnel::wire::WireError&) {
  }
  return 0;
}
