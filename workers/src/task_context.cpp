#include "task_context.hpp"

#include <fmt/format.h>

namespace runnel::workers {

void TaskContext::Emit(std::string_view topic, std::string_view key, std::string payload, Headers headers) {
  if (topic.empty() || topic.size() > 249 ||
      topic.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
          std::string_view::npos) {
    throw functions::FunctionError(functions::Errc::kInternal,
                                   fmt::format("Emit: '{}' is not a valid topic name", topic));
  }
  if (emitted_.size() >= kMaxEmits || emitted_bytes_ + payload.size() > kMaxEmitBytes) {
    throw functions::FunctionError(
        functions::Errc::kLimitExceeded,
        fmt::format("Emit: more than {} events or {} bytes in one call", kMaxEmits, kMaxEmitBytes));
  }
  emitted_bytes_ += payload.size();
  // An empty key means keyless, as Kafka clients usually treat it.
  emitted_.push_back(
      {std::string(topic), !key.empty(), std::string(key), std::move(headers), std::move(payload)});
}

}  // namespace runnel::workers
