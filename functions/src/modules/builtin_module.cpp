#include "builtin_module.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>
#include <vector>

namespace runnel::functions {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> ModuleDirs() {
  if (const char* dir = std::getenv("RUNNEL_MODULE_DIR"); dir != nullptr && *dir != '\0') return {dir};
  std::vector<fs::path> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path());
    dirs.push_back((exe.parent_path() / RUNNEL_MODULE_DIR_FROM_BIN).lexically_normal());
  }
  dirs.emplace_back(RUNNEL_MODULE_BUILD_DIR);
  return dirs;
}

// Loads one module: dlopen, the entry point, the build tag, then its registrations.
Registry Load(std::string_view family) {
  const std::string file = ModuleFileName(family);
  std::vector<std::string> looked;
  for (const fs::path& dir : ModuleDirs()) {
    const fs::path path = dir / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      looked.push_back(dir.string());
      continue;
    }
    // Never closed: functions it made, and their vtables, may be used until the process ends.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      throw FunctionError(Errc::kBadConfig, fmt::format("the {} module {} does not load: {}", family,
                                                        path.string(), ::dlerror()));
    }
    auto entry = reinterpret_cast<BuiltinModuleEntry>(::dlsym(handle, kBuiltinModuleEntry));
    const BuiltinModuleV1* module = entry != nullptr ? entry() : nullptr;
    if (module == nullptr) {
      throw FunctionError(Errc::kBadConfig, fmt::format("{} is not a Runnel module: no {}", path.string(),
                                                        kBuiltinModuleEntry));
    }
    if (std::strcmp(module->build_tag, kBuildTag) != 0) {
      throw FunctionError(Errc::kBadConfig,
                          fmt::format("the {} module {} comes from another build ({}); this one is {}",
                                      family, path.string(), module->build_tag, kBuildTag));
    }
    Registry registry;
    module->register_functions(registry);
    return registry;
  }
  throw FunctionError(Errc::kBadConfig, fmt::format("the {} functions need {}, found in none of: {} (set "
                                                    "RUNNEL_MODULE_DIR to its directory)",
                                                    family, file, fmt::join(looked, ", ")));
}

}  // namespace

std::string ModuleFileName(std::string_view family) { return fmt::format("librunnel-{}.so", family); }

const Registry& ModuleFunctions(std::string_view family) {
  static std::mutex mu;
  static std::map<std::string, Registry, std::less<>> loaded;  // never shrinks: references stay valid
  std::lock_guard lock(mu);
  if (auto it = loaded.find(family); it != loaded.end()) return it->second;
  Registry registry = Load(family);  // a failure is not cached: the next call looks again
  return loaded.emplace(std::string(family), std::move(registry)).first->second;
}

}  // namespace runnel::functions
