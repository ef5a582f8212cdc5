#include "runnel/broker/event_matcher.hpp"

#include <simdjson.h>

#include <charconv>
#include <cmath>

namespace runnel::broker {
namespace {

bool InRange(const FilterCondition& c, double v) {
  return (!c.gt || v > *c.gt) && (!c.gte || v >= *c.gte) && (!c.lt || v < *c.lt) && (!c.lte || v <= *c.lte);
}

bool HasRange(const FilterCondition& c) { return c.gt || c.gte || c.lt || c.lte; }

// A present key or header value: equals and prefix on its bytes, a range on its text as a number.
bool TextHolds(const FilterCondition& c, std::string_view text) {
  if (c.exists == false) return false;
  if (c.equals && text != c.equals->text) return false;
  if (c.prefix && !text.starts_with(*c.prefix)) return false;
  if (HasRange(c)) {
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) || !InRange(c, v))
      return false;
  }
  return true;
}

bool FieldHolds(const FilterCondition& c, const simdjson::dom::element& e) {
  using Type = FilterCondition::Value::Type;
  if (c.exists == false) return false;
  if (c.equals) {
    switch (c.equals->type) {
      case Type::kString:
        if (!e.is_string() || std::string_view(e.get_string().value_unsafe()) != c.equals->text) return false;
        break;
      case Type::kNumber:
        if (!e.is_number() || e.get_double().value_unsafe() != c.equals->number) return false;
        break;
      case Type::kBool:
        if (!e.is_bool() || e.get_bool().value_unsafe() != c.equals->boolean) return false;
        break;
      case Type::kNull:
        if (!e.is_null()) return false;
        break;
    }
  }
  if (c.prefix &&
      (!e.is_string() || !std::string_view(e.get_string().value_unsafe()).starts_with(*c.prefix))) {
    return false;
  }
  if (HasRange(c) && (!e.is_number() || !InRange(c, e.get_double().value_unsafe()))) return false;
  return true;
}

}  // namespace

struct EventMatcher::Impl {
  EventFilter filter;
  simdjson::dom::parser parser;
};

EventMatcher::EventMatcher(EventFilter filter) : impl_(std::make_unique<Impl>()) {
  impl_->filter = std::move(filter);
}

EventMatcher::~EventMatcher() = default;

bool EventMatcher::Matches(const std::optional<std::string>& key, const Headers& headers,
                           std::string_view value) {
  const EventFilter& f = impl_->filter;
  if (f.key) {
    if (!key) {
      if (f.key->exists != false) return false;
    } else if (!TextHolds(*f.key, *key)) {
      return false;
    }
  }
  for (const auto& h : f.headers) {
    // A header given more than once holds when one of its values does.
    bool present = false;
    bool holds = false;
    for (const Header& have : headers) {
      if (have.name != h.name) continue;
      present = true;
      if (TextHolds(h.condition, have.value)) {
        holds = true;
        break;
      }
    }
    if (!present ? h.condition.exists != false : !holds) return false;
  }
  if (f.fields.empty()) return true;
  // The parser copies the value into its own padded buffer (realloc_if_needed).
  simdjson::dom::element doc;
  if (impl_->parser.parse(value.data(), value.size()).get(doc) != simdjson::SUCCESS) return false;
  for (const auto& field : f.fields) {
    simdjson::dom::element e;
    if (doc.at_pointer(field.pointer).get(e) != simdjson::SUCCESS) {  // absent (or a path through a scalar)
      if (field.condition.exists != false) return false;
      continue;
    }
    if (!FieldHolds(field.condition, e)) return false;
  }
  return true;
}

}  // namespace runnel::broker
