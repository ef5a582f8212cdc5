// The exec batch protocol (functions/README.md, "Batches"): a batch's events as NDJSON on the
// program's stdin, one result line per event on its stdout, matched by event id.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/functions/function.hpp"

namespace runnel::functions {

// One JSON line per event: id, key, content_type, topic, partition, offset, attempt, hop,
// output_dir, headers, and the input as "payload" (UTF-8 text), "payload_base64" (other bytes) or
// "file" {path, name, size} (an input by reference).
std::string BatchInput(std::span<const Event> events, const std::filesystem::path& outputs_root,
                       const std::string& function);

// One outcome per event from the program's stdout: lines {"id", "output"[, "content_type"]} or
// {"id", "error"[, "kind"]}. "output" is a string (the body as is, text/plain unless content_type
// says otherwise) or any other JSON value (its text, application/json). "kind" is an error kind
// name (bad-input, limit-exceeded, bad-config, timeout, transient, internal; default transient).
// A line that is not such an object fails every event of the batch (the program has a bug); an
// event without a line, or with two, fails as internal.
std::vector<ResultOrError> BatchOutcomes(std::span<const Event> events, std::string_view out);

}  // namespace runnel::functions
