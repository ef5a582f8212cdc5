// Envelope::Decode over hostile Kafka headers (core/src/envelope.cpp), the file:// URI decoder and
// the http(s) URL check.
// Input: one header per line, name and value split at the first ':' (a line without one is a name
// with an empty value). Oracle: Decode throws EnvelopeError or returns an envelope whose Encode
// decodes back to the same envelope.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runnel/core/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  runnel::Headers headers;
  for (std::string_view rest = input; !rest.empty();) {
    const std::size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const std::size_t colon = line.find(':');
    headers.push_back({std::string(line.substr(0, colon)), colon == std::string_view::npos
                                                               ? std::string()
                                                               : std::string(line.substr(colon + 1))});
  }
  try {
    const runnel::Envelope env = runnel::Envelope::Decode(headers);
    if (runnel::Envelope::Decode(env.Encode()) != env) std::abort();  // the round trip changed it
  } catch (const runnel::EnvelopeError&) {
  }
  try {
    const std::string path = runnel::PathFromFileUri(input);
    if (runnel::PathFromFileUri(runnel::FileUriFromPath(path)) != path) std::abort();
  } catch (const runnel::EnvelopeError&) {
  }
  try {
    if (runnel::CheckHttpUrl(input) != input) std::abort();
  } catch (const runnel::EnvelopeError&) {
  }
  // What logs show of a URL: never its query or fragment. (Bytes outside 0x21..0x7e are shown as
  // '?', so the check holds for printable inputs.)
  const std::string shown = runnel::UrlForLogs(input);
  bool printable = true;
  for (const char c : input) printable = printable && c >= 0x21 && c <= 0x7e;
  if (shown.find('#') != std::string::npos || (printable && shown.find('?') != std::string::npos))
    std::abort();
  return 0;
}
