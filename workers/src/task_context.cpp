#include "task_context.hpp"

namespace runnel::workers {

void TaskContext::Emit(std::string_view, std::string_view, std::string, Headers) {
  // Pipelines need a producer in the worker (or an EMIT message to the dispatcher); neither exists
  // yet, and pretending to publish would lose events silently.
  throw functions::FunctionError(functions::Errc::kInternal, "Emit is not available yet");
}

}  // namespace runnel::workers
