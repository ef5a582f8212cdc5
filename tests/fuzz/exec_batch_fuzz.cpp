// The exec batch protocol's result side (functions/src/exec/batch_protocol.cpp): what a program
// writes on stdout for a batch of events "ev-1", "ev-2" and "ev-3". Input: that stdout. Oracle:
// BatchOutcomes never throws and gives each event exactly one of a result or an error.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "exec/batch_protocol.hpp"

namespace {

std::array<runnel::functions::Event, 3> MakeEvents() {
  std::array<runnel::functions::Event, 3> events;
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].envelope.id = "ev-" + std::to_string(i + 1);
    events[i].topic = "in";
    events[i].payload = "payload";
  }
  return events;
}

const std::array<runnel::functions::Event, 3> kEvents = MakeEvents();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view out(reinterpret_cast<const char*>(data), size);
  const auto outcomes = runnel::functions::BatchOutcomes(kEvents, out);
  if (outcomes.size() != kEvents.size()) std::abort();
  for (const auto& outcome : outcomes) {
    if (outcome.result.has_value() == outcome.error.has_value()) std::abort();
  }
  return 0;
}
