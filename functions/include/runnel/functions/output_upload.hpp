// Storing a call's output files at runnel.yaml's `outputs.url` instead of output_dir: what a worker
// does with the files of a successful call when its WELCOME carries `outputs` (docs/config.md#outputs),
// so that a worker on another host needs no shared volume for its outputs.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/core/output_target.hpp"
#include "runnel/functions/output_store.hpp"

namespace runnel::functions {

// <target.url>/<function>/<event id>/<name>, each segment percent-encoded (every byte outside
// A-Z a-z 0-9 - . _ ~, so an event id's ':' is %3A).
std::string OutputUrl(const OutputTarget& target, std::string_view function, std::string_view event_id,
                      std::string_view name);

// PUTs each of `files` (name: the last segment of its path) to OutputUrl, streamed from the file
// with its Content-Length and target.headers, one after the other; each PUT takes at most
// target.timeout and never runs past `deadline`. On a 2xx the file's `url` is set and the local
// file removed (its event directory too, once empty). Throws FunctionError(kTransient) on the first
// that fails, naming its URL and why: "PUT http://store/b/f/id/x.jpg: HTTP 500", a connection
// refused, a timeout. Files already PUT keep their url and the others stay where they are. Header
// values are never shown. Blocks only the calling fiber (the transfers run on a helper thread).
void UploadOutputs(const OutputTarget& target, std::string_view function, std::string_view event_id,
                   std::vector<OutputFile>& files, std::chrono::steady_clock::time_point deadline);

}  // namespace runnel::functions
