// The root of Runnel's exception hierarchy. Every error a public API throws says whether trying
// the same thing again can help, so callers decide on retries without parsing messages.
#pragma once

#include <stdexcept>
#include <string>

namespace runnel {
// NOLINTBEGIN(performance-unnecessary-value-param,performance-move-const-arg): by value like subclasses
class Error : public std::runtime_error {
 public:
  Error(std::string message, bool retriable)
      : std::runtime_error(std::move(message)), retriable_(retriable) {}
  // True when the same call may succeed later (a broker that is down, a timeout); false when
  // only a change of input or config can help.
  bool Retriable() const noexcept { return retriable_; }

 private:
  bool retriable_;
};
// NOLINTEND(performance-unnecessary-value-param,performance-move-const-arg)
// Bad configuration: a file, a flag or an option that cannot work as given. Never retriable.
class ConfigError : public Error {
 public:
  explicit ConfigError(std::string message) : Error(std::move(message), false) {}
};

// No stack runs where a command looked for one: no endpoints.json in the state dir, or the process
// that wrote it is gone. The CLI gives it an exit status of its own.
class NoStackError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

}  // namespace runnel
