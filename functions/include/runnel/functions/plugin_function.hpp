// Functions from shared-library plugins: the C ABI of runnel/plugin.h wrapped into a Function.
// The library is loaded with dlopen(RTLD_NOW | RTLD_LOCAL) and stays loaded while any function
// built from it lives (each holds a reference; dlclose runs after the last destroy()).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runnel/functions/function.hpp"

namespace runnel::functions {

struct PluginFunctionInfo {
  std::string name;
  std::string description;
  unsigned abi_version = 0;  // the plugin's: 1 or 2
};

// Loads `path` and checks its entry point (runnel_plugin_v2, else runnel_plugin_v1) and ABI version;
// returns the functions it provides. Throws FunctionError(kBadConfig) naming the file and the reason:
// it does not load, it exports neither entry point, or it reports a version its entry point does not
// have (the versions are named).
std::vector<PluginFunctionInfo> InspectPlugin(const std::string& path);

// Builds function `name` of the plugin at `path` (empty name: the plugin must provide exactly one)
// from `params`. `function_name` is the configured name (for the event's output directory).
// Thread-safety: the returned Function's Handle is called concurrently; the plugin's handle()
// must be thread-safe (runnel/plugin.h says so). The destructor calls the plugin's destroy().
std::unique_ptr<Function> LoadPluginFunction(const std::string& path, const std::string& name,
                                             const nlohmann::json& params,
                                             const std::string& function_name = {});

}  // namespace runnel::functions
