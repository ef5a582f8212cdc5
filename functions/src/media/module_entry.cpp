// The entry point of librunnel-media.so (modules/builtin_module.hpp). It is the module's only
// exported symbol: the static libraries linked into the module are hidden (media.cmake).
#include "builtins.hpp"
#include "modules/builtin_module.hpp"

extern "C" __attribute__((visibility("default"))) const runnel::functions::BuiltinModuleV1*
runnel_builtin_module_v1() {
  static const runnel::functions::BuiltinModuleV1 kModule{runnel::functions::kBuildTag,
                                                          &runnel::functions::RegisterMediaFunctions};
  return &kModule;
}
