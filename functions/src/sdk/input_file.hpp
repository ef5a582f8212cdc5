// What a function says when it cannot open an input file (Context::ReadInput, the video source).
#pragma once

#include <string>

namespace runnel::functions {

// "cannot open input file PATH: REASON", and for a path that does not exist, that the file must be
// on this worker's host (named) or a shared volume: the usual cause is a reference made elsewhere.
std::string CannotOpenInputFile(const std::string& path, int err);

}  // namespace runnel::functions
