// Runnel's version, as the project's CMake declares it (`project(Runnel VERSION ...)`): defined in
// one place, core/src/version.cpp, for `runnel version`, `--version`, `runnel-worker --version`
// and the metrics' build info.
#pragma once

#include <string_view>

namespace runnel {

std::string_view Version();

}  // namespace runnel
