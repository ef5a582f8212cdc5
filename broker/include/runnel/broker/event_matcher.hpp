// Whether an event passes its function's filter (core/event_filter.hpp, runnel.yaml `filter`): the
// dispatcher asks for every record it takes, before any other check. Key and header conditions
// compare the bytes as they are; field conditions read the record's value as JSON (simdjson), and
// a value that is not JSON (or is empty, as for a file:// reference) fails every field condition.
// Thread-safety: one thread at a time (it keeps one parser's buffers from call to call).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runnel/core/envelope.hpp"
#include "runnel/core/event_filter.hpp"

namespace runnel::broker {

class EventMatcher {
 public:
  explicit EventMatcher(EventFilter filter);
  ~EventMatcher();
  EventMatcher(const EventMatcher&) = delete;
  EventMatcher& operator=(const EventMatcher&) = delete;

  // True when every condition of the filter holds for this record (always, for an empty filter).
  bool Matches(const std::optional<std::string>& key, const Headers& headers, std::string_view value);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::broker
