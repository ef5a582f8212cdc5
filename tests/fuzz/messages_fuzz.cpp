// The typed codecs of every ZeroMQ message Runnel receives (core/src/worker_messages.cpp,
// core/src/control_messages.cpp): the worker protocol's JSON bodies, the task and result headers
// through their non-throwing decoders, and the requests and replies of the status and control
// sockets. Input: one frame, given to every decoder. Oracle: no decoder throws (decode errors are
// values, docs/protocol.md §3.4), and a body that decodes encodes to one that decodes to the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runnel/core/control_messages.hpp"
#include "runnel/core/worker_messages.hpp"

namespace {

// Decodes `bytes`; when that succeeds, the value must survive Encode and a second decode unchanged.
template <typename Decode>
void RoundTrip(Decode decode, std::string_view bytes) {
  const auto first = decode(bytes);
  if (!first) return;
  const auto second = decode(Encode(*first));  // Encode: found by ADL, in runnel or runnel::wire
  if (!second || !(*second == *first)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace wire = runnel::wire;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  RoundTrip(wire::DecodeHello, bytes);
  RoundTrip(wire::DecodeWelcome, bytes);
  RoundTrip(wire::DecodeHeartbeat, bytes);
  RoundTrip(wire::DecodeCapacity, bytes);
  RoundTrip(wire::DecodeBye, bytes);
  RoundTrip(wire::DecodeReject, bytes);
  RoundTrip(wire::DecodeExit, bytes);
  (void)wire::DecodeDraining(bytes);
  RoundTrip(wire::TryDecodeTask, bytes);
  RoundTrip(wire::TryDecodeResult, bytes);
  RoundTrip(runnel::DecodeControlRequest, bytes);
  (void)runnel::DecodeControlReply(bytes);
  return 0;
}
