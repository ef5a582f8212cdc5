#include "runnel/core/version.hpp"

namespace runnel {

// RUNNEL_VERSION is set for this file alone (core/CMakeLists.txt), from PROJECT_VERSION.
std::string_view Version() { return RUNNEL_VERSION; }

}  // namespace runnel
