#include "runnel/functions/handlers.hpp"

#include <fmt/format.h>

#include "runnel/core/handler.hpp"
#include "runnel/functions/exec_function.hpp"
#include "runnel/functions/plugin_function.hpp"

namespace runnel::functions {

std::unique_ptr<Function> CreateFunction(const std::string& handler, const nlohmann::json& params,
                                         const HandlerOptions& options) {
  HandlerSpec spec;
  try {
    spec = ResolveHandler(ParseHandler(handler), options.handler_dir);
  } catch (const ConfigError& e) {
    throw FunctionError(Errc::kBadConfig, fmt::format("handler '{}': {}", handler, e.what()));
  }
  switch (spec.kind) {
    case HandlerSpec::Kind::kBuiltin:
      return Builtins().Create(spec.name, params);
    case HandlerSpec::Kind::kPlugin:
      return LoadPluginFunction(spec.path, spec.name, params, options.function_name);
    case HandlerSpec::Kind::kExec:
      return MakeExecFunction(std::move(spec.argv), options.handler_dir, params, options.function_name);
  }
  throw FunctionError(Errc::kBadConfig, fmt::format("handler '{}': unknown kind", handler));
}

}  // namespace runnel::functions
