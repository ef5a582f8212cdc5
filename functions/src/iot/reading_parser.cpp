// iot.ingest's framing: splits one event's payload into records (NDJSON lines, the elements of a
// JSON array, or one object, possibly pretty-printed over several lines), numbers them by line or
// index, applies the limits on them (max_line_bytes, max_errors), keeps the reason of every
// rejected record and decides when the whole event fails. Each record, once it is a JSON object,
// goes to ReadingDecoder (reading_fields.hpp), which owns what a reading's fields may hold.
#include "iot/reading_parser.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "iot/reading_fields.hpp"
#include "runnel/functions/function.hpp"

namespace runnel::functions::iot {
namespace {

namespace od = simdjson::ondemand;

constexpr std::size_t kErrorsInMessage = 3;

// True when the whole document was consumed (this simdjson has no document::at_end()).
bool AtEnd(od::document& doc) { return doc.current_location().error() == simdjson::OUT_OF_BOUNDS; }

bool IsBlank(const char* p, const char* end) {
  for (; p < end; ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\r') return false;
  }
  return true;
}

std::string_view TrimLeft(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first == std::string_view::npos ? std::string_view() : text.substr(first);
}

}  // namespace

// Hidden as its ReadingDecoder member is (reading_fields.hpp says why).
class [[gnu::visibility("hidden")]] ReadingParser::Impl {
 public:
  Impl(const IngestParams& params, ReadingStore& store)
      : params_(params), store_(store), decoder_(params, store) {
    Reset();
  }

  void Reset() {
    store_.Clear();
    decoder_.Reset();
  }

  EventReport Parse(std::string_view payload, std::uint32_t event, std::int64_t now_ms) {
    // simdjson reads up to SIMDJSON_PADDING bytes past a document's end: copy the payload once into
    // a zero-padded buffer that every line's view then shares.
    buffer_.resize(payload.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buffer_.data(), payload.data(), payload.size());
    std::memset(buffer_.data() + payload.size(), 0, simdjson::SIMDJSON_PADDING);
    const std::string_view text(buffer_.data(), payload.size());
    decoder_.StartEvent(event, now_ms, buffer_.data() + buffer_.size());

    const std::size_t readings_before = store_.readings.size();
    const std::size_t samples_before = store_.samples.size();
    EventReport report;
    report.first_reading = static_cast<std::uint32_t>(readings_before);
    try {
      const std::string_view start = TrimLeft(text);
      if (start.empty()) {
        throw FunctionError(Errc::kBadInput,
                            "iot.ingest: the payload is empty; expected JSON or NDJSON readings");
      }
      if (start.front() == '[') {
        report.kind = PositionKind::kIndex;
        ParseDocument(text, report);
      } else {
        ParseLines(text, report);
        // A single pretty-printed object spans several lines: when no line parsed on its own, try
        // the payload as one document before giving up on it.
        if (report.reading_count == 0 && start.front() == '{' && start.find('\n') != std::string_view::npos) {
          EventReport whole;
          whole.first_reading = report.first_reading;
          try {
            ParseDocument(text, whole);
            report = std::move(whole);
          } catch (const FunctionError&) {
            // not one document either: keep the per-line reasons
            store_.readings.resize(readings_before);
            store_.samples.resize(samples_before);
          }
        }
      }
      if (report.reading_count == 0) {
        throw FunctionError(Errc::kBadInput, NoValidReadingMessage(report));
      }
    } catch (...) {
      store_.readings.resize(readings_before);
      store_.samples.resize(samples_before);
      throw;
    }
    return report;
  }

 private:
  void ParseLines(std::string_view text, EventReport & report) {
    if (ParseStream(text, report)) return;
    ParseLineByLine(text, report);
  }

  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  // The fast path for clean NDJSON: the whole payload through simdjson's iterate_many (stage 1 once
  // over the payload instead of once per line), with the same reading code. Clean means: every
  // document an object alone on its line, only whitespace between them, no line over
  // max_line_bytes, no malformed JSON. At the first thing that is not clean it undoes what it added
  // and returns false, and the line-by-line path parses the payload again, giving every line its
  // own reason; so both paths give the same result for any payload.
  bool ParseStream(std::string_view text, EventReport & report) {
    const std::size_t readings_before = store_.readings.size();
    const std::size_t samples_before = store_.samples.size();
    const EventReport fresh = report;
    const auto give_up = [&] {
      store_.readings.resize(readings_before);
      store_.samples.resize(samples_before);
      report = fresh;
      return false;
    };
    const std::size_t batch =
        std::max<std::size_t>(simdjson::dom::DEFAULT_BATCH_SIZE, 2 * params_.max_line_bytes);
    od::document_stream stream;
    if (parser_.iterate_many(text.data(), text.size(), batch).get(stream)) return give_up();
    const char* const base = text.data();
    std::size_t scanned = 0;  // text[0, scanned) is checked: documents' lines and whitespace
    std::uint32_t line = 1;   // the line at `scanned`
    for (auto it = stream.begin(); it != stream.end(); ++it) {
      auto document = *it;
      if (document.error()) return give_up();
      const std::size_t start = it.current_index();
      if (start < scanned) return give_up();  // a second document on a line
      for (std::size_t i = scanned; i < start; ++i) {
        if (!IsSpace(base[i])) return give_up();  // the rest of a document that spans lines
        line += base[i] == '\n' ? 1 : 0;
      }
      const void* newline = std::memchr(base + start, '\n', text.size() - start);
      const std::size_t end =
          newline ? static_cast<std::size_t>(static_cast<const char*>(newline) - base) : text.size();
      std::size_t line_begin = start;
      while (line_begin > 0 && base[line_begin - 1] != '\n') --line_begin;
      const std::size_t length = end - line_begin - (end > line_begin && base[end - 1] == '\r' ? 1 : 0);
      if (length > params_.max_line_bytes) return give_up();
      od::document_reference doc = document.value_unsafe();
      od::json_type type{};
      if (doc.type().get(type) || type != od::json_type::object) return give_up();
      od::object object;
      if (doc.get_object().get(object)) return give_up();
      if (std::optional<Problem> problem = decoder_.ReadReading(object, line)) {
        if (problem->malformed) return give_up();
        Reject(report, line, std::move(*problem));
      } else {
        ++report.reading_count;
      }
      scanned = end;
    }
    if (stream.truncated_bytes() != 0) return give_up();
    for (std::size_t i = scanned; i < text.size(); ++i) {
      if (!IsSpace(base[i])) return give_up();
    }
    return true;
  }

  void ParseLineByLine(std::string_view text, EventReport & report) {
    const char* const buffer_end = buffer_.data() + buffer_.size();
    const char* p = text.data();
    const char* const end = p + text.size();
    std::uint32_t line = 0;
    while (p < end) {
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (newline == nullptr) newline = end;
      ++line;
      std::size_t length = static_cast<std::size_t>(newline - p);
      if (length > 0 && p[length - 1] == '\r') --length;
      if (length > params_.max_line_bytes) {
        Reject(report, line,
               Invalid({}, fmt::format("line is {} bytes, over max_line_bytes {}", length,
                                       params_.max_line_bytes)));
      } else if (!IsBlank(p, p + length)) {
        const simdjson::padded_string_view view(p, length, static_cast<std::size_t>(buffer_end - p));
        ParseLine(view, line, report);
      }
      p = newline + 1;
    }
  }

  void ParseLine(const simdjson::padded_string_view& view, std::uint32_t line, EventReport& report) {
    od::document doc;
    if (auto error = parser_.iterate(view).get(doc)) return Reject(report, line, Malformed(error));
    od::json_type type{};
    if (auto error = doc.type().get(type)) return Reject(report, line, Malformed(error));
    if (type != od::json_type::object) {
      return Reject(report, line,
                    Invalid({}, fmt::format("a reading must be a JSON object, got {}", TypeName(type))));
    }
    od::object object;
    if (auto error = doc.get_object().get(object)) return Reject(report, line, Malformed(error));
    if (std::optional<Problem> problem = decoder_.ReadReading(object, line))
      return Reject(report, line, std::move(*problem));
    if (!AtEnd(doc)) {
      decoder_.DropLastReading();
      return Reject(report, line, Invalid({}, "malformed JSON: trailing content after the reading"));
    }
    ++report.reading_count;
  }

  // The whole payload as one document: an array of readings, or a single reading.
  void ParseDocument(std::string_view text, EventReport & report) {
    const std::string_view start = TrimLeft(text);
    const auto first_line = static_cast<std::uint32_t>(1 + std::count(text.data(), start.data(), '\n'));
    const simdjson::padded_string_view view(text.data(), text.size(), buffer_.size());
    od::document doc;
    auto fail = [&](const Problem& problem, std::string_view where) {
      throw FunctionError(Errc::kBadInput, fmt::format("iot.ingest: the payload is not valid JSON ({}): {}",
                                                       where, problem.reason));
    };
    if (auto error = parser_.iterate(view).get(doc)) fail(Malformed(error), "at the start");
    if (start.front() == '{') {
      od::object object;
      if (auto error = doc.get_object().get(object)) fail(Malformed(error), "in the object");
      std::optional<Problem> problem = decoder_.ReadReading(object, first_line);
      if (problem && problem->malformed) fail(*problem, "in the object");
      if (problem) {
        Reject(report, first_line, std::move(*problem));
      } else {
        ++report.reading_count;
      }
    } else {
      od::array array;
      if (auto error = doc.get_array().get(array)) fail(Malformed(error), "at the start");
      std::uint32_t index = 0;
      for (auto element : array) {
        const std::string where = fmt::format("at index {}", index);
        od::value value;
        if (auto error = std::move(element).get(value)) fail(Malformed(error), where);
        od::json_type type{};
        if (auto error = value.type().get(type)) fail(Malformed(error), where);
        if (type != od::json_type::object) {
          Reject(report, index,
                 Invalid({}, fmt::format("a reading must be a JSON object, got {}", TypeName(type))));
        } else {
          od::object object;
          if (auto error = value.get_object().get(object)) fail(Malformed(error), where);
          std::optional<Problem> problem = decoder_.ReadReading(object, index);
          if (problem && problem->malformed) fail(*problem, where);
          if (problem) {
            Reject(report, index, std::move(*problem));
          } else {
            ++report.reading_count;
          }
        }
        ++index;
      }
      if (index == 0) throw FunctionError(Errc::kBadInput, "iot.ingest: the payload is an empty JSON array");
    }
    if (!AtEnd(doc)) fail(Invalid({}, "trailing content after the document"), "at the end");
  }

  void Reject(EventReport & report, std::uint32_t position, Problem problem) {
    ++report.rejected;
    if (report.errors.size() < params_.max_errors) {
      report.errors.push_back({position, std::move(problem.field), std::move(problem.reason)});
    }
  }

  static std::string NoValidReadingMessage(const EventReport& report) {
    std::string message =
        fmt::format("iot.ingest: no valid reading in the payload ({} rejected)", report.rejected);
    const std::string_view where = report.kind == PositionKind::kLine ? "line" : "index";
    for (std::size_t i = 0; i < report.errors.size() && i < kErrorsInMessage; ++i) {
      const ReadingError& error = report.errors[i];
      fmt::format_to(std::back_inserter(message), "; {} {}: {}{}{}", where, error.position, error.field,
                     error.field.empty() ? "" : ": ", error.reason);
    }
    if (report.rejected > kErrorsInMessage) {
      fmt::format_to(std::back_inserter(message), "; and {} more", report.rejected - kErrorsInMessage);
    }
    return message;
  }

  const IngestParams& params_;
  ReadingStore& store_;
  ReadingDecoder decoder_;
  od::parser parser_;
  std::string buffer_;
};

ReadingParser::ReadingParser(const IngestParams& params, ReadingStore& store)
    : impl_(std::make_unique<Impl>(params, store)) {}
ReadingParser::~ReadingParser() = default;

void ReadingParser::Reset() { impl_->Reset(); }

EventReport ReadingParser::Parse(std::string_view payload, std::uint32_t event, std::int64_t now_ms) {
  return impl_->Parse(payload, event, now_ms);
}

}  // namespace runnel::functions::iot
