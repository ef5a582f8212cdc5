// A function's event filter (runnel.yaml `filter`, docs/config.md#filters): conditions on a record's
// key, its headers and, for a JSON value, its fields. An event runs only when every condition holds;
// one that does not is committed without a call and counted (runnel_filtered_total). Parsed and
// checked with the rest of the config (config.cpp); matched by the dispatcher with
// broker::EventMatcher (broker/event_matcher.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace runnel {

// What one condition asks of a value; every operator given must hold.
struct FilterCondition {
  // The scalar `equals` compares with. Key and headers compare `text` (as written in the file); a
  // JSON field compares by `type`: a string with a string, a number with a number, a boolean with a
  // boolean, null with null (a quoted "10" is a string, 10 a number).
  struct Value {
    enum class Type { kString, kNumber, kBool, kNull };
    Type type = Type::kString;
    std::string text;
    double number = 0;
    bool boolean = false;
  };
  std::optional<bool> exists;  // true: present (with any value); false: absent
  std::optional<Value> equals;
  std::optional<std::string> prefix;  // of a string (the key's or a header's bytes, a JSON string)
  // Numeric ranges: a JSON number, or a key or header whose whole text is a decimal number.
  std::optional<double> gt, gte, lt, lte;
  int line = 0;  // where the condition is in the file
};

struct EventFilter {
  struct Named {
    std::string name;  // a header name (exact, case-sensitive), or a field path as written
    // For fields: the RFC 6901 JSON pointer the path stands for ("reading.temp" is /reading/temp; a
    // path written with a leading / is a pointer already).
    std::string pointer;
    FilterCondition condition;
  };
  std::optional<FilterCondition> key;
  std::vector<Named> headers;
  std::vector<Named> fields;

  bool Empty() const { return !key && headers.empty() && fields.empty(); }
};

}  // namespace runnel
