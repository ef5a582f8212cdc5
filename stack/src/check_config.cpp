#include "runnel/stack/check_config.hpp"

#include <fmt/format.h>

#include <memory>
#include <optional>

#include "runnel/core/error.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/functions/handlers.hpp"
#include "runnel/kafka/record_limits.hpp"

namespace runnel::stack {

std::vector<scheduler::CompiledSchedule> CheckConfig(StackConfig& config) {
  for (std::size_t i = 0; i < config.functions.size(); ++i) {
    FunctionSpec& f = config.functions[i];
    std::unique_ptr<functions::Function> fn;
    try {
      fn = functions::CreateFunction(f.handler, f.params, {f.name, f.handler_dir});
    } catch (const Error& e) {
      throw ConfigError(fmt::format("{}: function {} ({}): {}", config.source, f.name, f.handler, e.what()));
    }
    try {
      f.batch = functions::EffectiveBatch(*fn, f.batch);
    } catch (const Error& e) {
      throw ConfigError(fmt::format("{}:{}: functions[{}].batch: function {} ({}): {}", config.source,
                                    f.batch_line, i, f.name, f.handler, e.what()));
    }
  }
  kafka::CheckRecordLimits(config);  // every accepted input's dead-letter copy fits the producer
  return scheduler::CompileSchedules(config);
}

}  // namespace runnel::stack
