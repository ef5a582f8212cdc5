// Builds a function from its handler spec (core/handler.hpp): builtin:NAME from Builtins(),
// plugin:PATH[#NAME] from a shared library (plugin_function.hpp), exec:COMMAND as an external
// program (exec_function.hpp). The worker calls it at WELCOME; `runnel up` calls it once per
// function at start so a bad handler stops the stack with a clear message.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "runnel/functions/function.hpp"

namespace runnel::functions {

struct HandlerOptions {
  std::string function_name;  // the configured name: outputs go under it, messages name it
  std::string handler_dir;    // relative paths resolve here; exec programs run here. Empty = cwd
};

// Throws FunctionError: kUnknownFunction (no such builtin), kBadConfig (a bad spec, a plugin that
// does not load or speaks another ABI, a missing program, params the function refuses).
std::unique_ptr<Function> CreateFunction(const std::string& handler, const nlohmann::json& params,
                                         const HandlerOptions& options = {});

}  // namespace runnel::functions
