// Built-in families that live in loadable modules (librunnel-<family>.so) instead of the
// executables: the media family pulls in OpenCV and FFmpeg (~250 shared libraries, ~55 MiB of
// resident memory, a quarter of a second at every process start), so only processes that run one
// of its functions load it. The family's names and summaries stay in the executables
// (media/catalog.hpp); the factories come from the module the first time one is created.
//
// C++ crosses this boundary (the module fills a Registry&), so a module only loads into the build
// it came from: its build tag must equal the loader's, else loading fails with both tags named.
// A module carries its own copy of the function SDK it uses and exports nothing but its entry
// point; it is loaded RTLD_LOCAL and never unloaded (functions it made may live until exit).
#pragma once

#include <string>
#include <string_view>

#include "runnel/functions/function.hpp"

namespace runnel::functions {

// What a module's entry point returns.
struct BuiltinModuleV1 {
  const char* build_tag;  // kBuildTag of the build that made the module
  void (*register_functions)(Registry& registry);
};

// The module's one exported symbol.
inline constexpr const char* kBuiltinModuleEntry = "runnel_builtin_module_v1";
using BuiltinModuleEntry = const BuiltinModuleV1* (*)();

// Runnel's version and the compiler that built it: modules and executables must agree.
inline constexpr const char* kBuildTag = RUNNEL_BUILD_TAG;

// The file name of a family's module: "media" -> "librunnel-media.so".
std::string ModuleFileName(std::string_view family);

// The functions of a family's module, loaded on first use and kept for the life of the process.
// Thread-safe. The module is looked for in $RUNNEL_MODULE_DIR when that is set (and only there),
// else next to the running executable, in the install layout's module directory relative to it
// (RUNNEL_MODULE_DIR_FROM_BIN, e.g. ../lib/runnel), and in this build tree's module directory.
// Throws FunctionError(kBadConfig) naming every place looked at, or why the module was refused.
const Registry& ModuleFunctions(std::string_view family);

}  // namespace runnel::functions
