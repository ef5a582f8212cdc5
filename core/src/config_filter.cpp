#include "config_filter.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace runnel::detail {
namespace {

constexpr const char* kOperators = "equals, prefix, exists, gt, gte, lt, lte";

// What a condition is about: text (the key, a header) or a JSON field.
enum class Target { kText, kField };

class FilterParser {
 public:
  explicit FilterParser(const ConfigFail& fail) : fail_(fail) {}

  [[noreturn]] void Fail(const YAML::Node& node, const std::string& key, const std::string& why) const {
    fail_(node, key, why);
    throw std::logic_error("ConfigFail returned");  // it throws ConfigError
  }

  FilterCondition Condition(const YAML::Node& node, const std::string& key, Target target) const {
    FilterCondition c;
    c.line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
    if (node.IsScalar() || node.IsNull()) {  // the short form: `content-type: image/png`
      c.equals = Value(node, key, target);
      return c;
    }
    if (!node.IsMap()) {
      Fail(node, key,
           fmt::format("must be a value (equals) or a mapping of operators like {{prefix: dev-}} ({})",
                       kOperators));
    }
    if (node.size() == 0) Fail(node, key, fmt::format("has no operator ({})", kOperators));
    for (const auto& kv : node) {
      const auto op = kv.first.as<std::string>();
      const std::string k = fmt::format("{}.{}", key, op);
      if (op == "equals") {
        c.equals = Value(kv.second, k, target);
      } else if (op == "prefix") {
        c.prefix = String(kv.second, k);
      } else if (op == "exists") {
        c.exists = Bool(kv.second, k);
      } else if (op == "gt") {
        c.gt = Number(kv.second, k);
      } else if (op == "gte") {
        c.gte = Number(kv.second, k);
      } else if (op == "lt") {
        c.lt = Number(kv.second, k);
      } else if (op == "lte") {
        c.lte = Number(kv.second, k);
      } else {
        Fail(kv.first, k, fmt::format("unknown operator (known: {})", kOperators));
      }
    }
    const bool range = c.gt || c.gte || c.lt || c.lte;
    if (c.exists == false && (c.equals || c.prefix || range)) {
      Fail(node, key, "exists: false cannot go with another operator (an absent value has none to compare)");
    }
    if (target == Target::kField && c.prefix && range) {
      Fail(node, key, "prefix (of a string) and a numeric range cannot both hold for one JSON value");
    }
    const std::optional<double> lo = c.gt ? c.gt : c.gte;
    const std::optional<double> hi = c.lt ? c.lt : c.lte;
    if ((c.gt && c.gte) || (c.lt && c.lte))
      Fail(node, key, "give one lower bound (gt or gte) and one upper (lt or lte)");
    if (lo && hi && (*lo > *hi || (*lo == *hi && (c.gt || c.lt)))) {
      Fail(node, key,
           fmt::format("the range {} {} .. {} {} is empty: nothing would match", c.gt ? "gt" : "gte", *lo,
                       c.lt ? "lt" : "lte", *hi));
    }
    return c;
  }

 private:
  static std::optional<double> ParseNumber(const std::string& text) {
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  }

  FilterCondition::Value Value(const YAML::Node& node, const std::string& key, Target target) const {
    using Type = FilterCondition::Value::Type;
    FilterCondition::Value v;
    if (node.IsNull()) {
      if (target == Target::kText)
        Fail(node, key, "null is for JSON fields; a key or header is text (quote it: \"\")");
      v.type = Type::kNull;
      return v;
    }
    if (!node.IsScalar()) Fail(node, key, "must be a single value (a string, number, boolean or null)");
    v.text = node.Scalar();
    if (target == Target::kText || node.Tag() == "!") return v;  // text, or quoted: a string
    if (v.text == "true" || v.text == "false") {
      v.type = Type::kBool;
      v.boolean = v.text == "true";
    } else if (const auto n = ParseNumber(v.text)) {
      v.type = Type::kNumber;
      v.number = *n;
    }
    return v;
  }

  std::string String(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) Fail(node, key, "must be a string");
    return node.Scalar();
  }

  bool Bool(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar() || (node.Scalar() != "true" && node.Scalar() != "false")) {
      Fail(node, key,
           fmt::format("'{}' is not true or false", node.IsScalar() ? node.Scalar() : "(not a value)"));
    }
    return node.Scalar() == "true";
  }

  double Number(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) Fail(node, key, "must be a number");
    const auto n = node.Tag() == "!" ? std::nullopt : ParseNumber(node.Scalar());
    if (!n) Fail(node, key, fmt::format("'{}' is not a number", node.Scalar()));
    return *n;
  }

  const ConfigFail& fail_;
};

// "reading.temp" -> /reading/temp; "/a/b" stays. Empty when the path is not one.
std::string Pointer(const std::string& path) {
  if (path.empty()) return {};
  if (path.front() == '/') {
    for (std::size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '~' && (i + 1 == path.size() || (path[i + 1] != '0' && path[i + 1] != '1'))) return {};
    }
    return path;
  }
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) return {};
    out += '/';
    for (char ch : part) {
      if (ch == '~') {
        out += "~0";
      } else if (ch == '/') {
        out += "~1";
      } else {
        out += ch;
      }
    }
    if (dot == std::string::npos) return out;
    start = dot + 1;
  }
}

}  // namespace

EventFilter ParseEventFilter(const YAML::Node& node, const std::string& where, const ConfigFail& fail) {
  const FilterParser p(fail);
  if (!node.IsMap()) {
    p.Fail(node, where, "must be a mapping of key, headers and fields, e.g. {key: {prefix: dev-}}");
  }
  for (const auto& kv : node) {
    const auto name = kv.first.as<std::string>();
    if (name != "key" && name != "headers" && name != "fields") {
      p.Fail(kv.first, fmt::format("{}.{}", where, name), "unknown key (known: fields, headers, key)");
    }
  }
  EventFilter filter;
  if (const auto k = node["key"]) filter.key = p.Condition(k, where + ".key", Target::kText);
  for (const char* part : {"headers", "fields"}) {
    const auto map = node[part];
    if (!map) continue;
    const std::string pw = where + "." + part;
    const bool fields = std::string_view(part) == "fields";
    if (!map.IsMap() || map.size() == 0) {
      p.Fail(map, pw,
             fields ? "must be a mapping of field paths to conditions, e.g. {reading.temp: {gt: 10}}"
                    : "must be a mapping of header names to conditions, e.g. {content-type: image/png}");
    }
    for (const auto& kv : map) {
      EventFilter::Named named;
      named.name = kv.first.as<std::string>();
      const std::string nw = pw + "." + named.name;
      if (named.name.empty())
        p.Fail(kv.first, pw, fields ? "a field path must not be empty" : "a header name must not be empty");
      if (fields) {
        named.pointer = Pointer(named.name);
        if (named.pointer.empty()) {
          p.Fail(
              kv.first, nw,
              fmt::format("'{}' is not a field path like reading.temp (or a JSON pointer like /reading/temp)",
                          named.name));
        }
      }
      named.condition = p.Condition(kv.second, nw, fields ? Target::kField : Target::kText);
      (fields ? filter.fields : filter.headers).push_back(std::move(named));
    }
  }
  if (filter.Empty()) p.Fail(node, where, "is empty: give key, headers or fields (or leave filter out)");
  return filter;
}

}  // namespace runnel::detail
