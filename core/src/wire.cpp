#include "runnel/core/wire.hpp"

#include <fmt/format.h>

#include <cstring>

namespace runnel::wire {
namespace {

// Appends fixed-width little-endian integers and length-prefixed strings.
class Writer {
 public:
  template <typename Int>
  void Put(Int value) {
    for (std::size_t i = 0; i < sizeof(Int); ++i) {
      out_.push_back(static_cast<char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFF));
    }
  }
  void PutString(std::string_view s) {
    Put(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  void PutHeaders(const Headers& headers) {
    Put(static_cast<std::uint32_t>(headers.size()));
    for (const auto& h : headers) {
      PutString(h.name);
      PutString(h.value);
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Writer wrote; every read is bounds-checked and names the field it was reading.
class Reader {
 public:
  Reader(std::string_view in, const char* what) : in_(in), what_(what) {}

  template <typename Int>
  Int Get(const char* field) {
    Need(sizeof(Int), field);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(Int); ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    }
    pos_ += sizeof(Int);
    return static_cast<Int>(v);
  }
  std::string GetString(const char* field) {
    const auto n = Get<std::uint32_t>(field);
    Need(n, field);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  Headers GetHeaders(const char* what) {
    const auto count = Get<std::uint32_t>(what);
    if (count > 10'000) throw WireError(fmt::format("{}: {} {} is not plausible", what_, count, what));
    Headers headers;
    headers.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      Header h;
      h.name = GetString("header name");
      h.value = GetString("header value");
      headers.push_back(std::move(h));
    }
    return headers;
  }
  void Finish() const {
    if (pos_ != in_.size())
      throw WireError(fmt::format("{}: {} unexpected trailing bytes", what_, in_.size() - pos_));
  }

 private:
  void Need(std::size_t n, const char* field) const {
    if (in_.size() - pos_ < n) throw WireError(fmt::format("{}: truncated in field '{}'", what_, field));
  }
  std::string_view in_;
  const char* what_;
  std::size_t pos_ = 0;
};

constexpr std::uint8_t kTaskMagic = 'T';
constexpr std::uint8_t kResultMagic = 'R';

}  // namespace

std::string Encode(const TaskHeader& t) {
  Writer w;
  w.Put(kTaskMagic);
  w.Put(static_cast<std::uint8_t>(kVersion));
  w.Put(t.token);
  w.PutString(t.topic);
  w.Put(t.partition);
  w.Put(t.offset);
  w.Put(static_cast<std::uint8_t>(t.has_key ? 1 : 0));
  w.PutString(t.key);
  w.Put(t.attempt);
  w.Put(t.timeout_ms);
  w.PutHeaders(t.headers);
  return w.Take();
}

TaskHeader DecodeTask(std::string_view frame) {
  Reader r(frame, "task header");
  if (r.Get<std::uint8_t>("magic") != kTaskMagic) throw WireError("task header: not a task frame");
  if (const auto v = r.Get<std::uint8_t>("version"); v != kVersion) {
    throw WireError(fmt::format("task header: protocol version {} (this build speaks {})", v, kVersion));
  }
  TaskHeader t;
  t.token = r.Get<std::uint64_t>("token");
  t.topic = r.GetString("topic");
  t.partition = r.Get<std::int32_t>("partition");
  t.offset = r.Get<std::int64_t>("offset");
  t.has_key = r.Get<std::uint8_t>("has_key") != 0;
  t.key = r.GetString("key");
  t.attempt = r.Get<std::uint32_t>("attempt");
  t.timeout_ms = r.Get<std::uint32_t>("timeout_ms");
  t.headers = r.GetHeaders("header count");
  r.Finish();
  return t;
}

std::string Encode(const ResultHeader& res) {
  Writer w;
  w.Put(kResultMagic);
  w.Put(static_cast<std::uint8_t>(kVersion));
  w.Put(res.token);
  w.Put(static_cast<std::uint8_t>(res.status));
  w.Put(res.error_code);
  w.Put(res.duration_us);
  w.PutString(res.error);
  w.PutString(res.content_type);
  w.PutString(res.files_json);
  w.Put(static_cast<std::uint32_t>(res.emitted.size()));
  for (const auto& e : res.emitted) {
    w.PutString(e.topic);
    w.Put(static_cast<std::uint8_t>(e.has_key ? 1 : 0));
    w.PutString(e.key);
    w.PutHeaders(e.headers);
    w.PutString(e.payload);
  }
  return w.Take();
}

ResultHeader DecodeResult(std::string_view frame) {
  Reader r(frame, "result header");
  if (r.Get<std::uint8_t>("magic") != kResultMagic) throw WireError("result header: not a result frame");
  if (const auto v = r.Get<std::uint8_t>("version"); v != kVersion) {
    throw WireError(fmt::format("result header: protocol version {} (this build speaks {})", v, kVersion));
  }
  ResultHeader res;
  res.token = r.Get<std::uint64_t>("token");
  const auto status = r.Get<std::uint8_t>("status");
  if (status > 1) throw WireError(fmt::format("result header: unknown status {}", status));
  res.status = static_cast<ResultStatus>(status);
  res.error_code = r.Get<std::uint8_t>("error_code");
  res.duration_us = r.Get<std::uint32_t>("duration_us");
  res.error = r.GetString("error");
  res.content_type = r.GetString("content_type");
  res.files_json = r.GetString("files_json");
  const auto emits = r.Get<std::uint32_t>("emit count");
  if (emits > 100'000)
    throw WireError(fmt::format("result header: {} emitted events is not plausible", emits));
  res.emitted.reserve(emits);
  for (std::uint32_t i = 0; i < emits; ++i) {
    EmitRecord e;
    e.topic = r.GetString("emit topic");
    e.has_key = r.Get<std::uint8_t>("emit has_key") != 0;
    e.key = r.GetString("emit key");
    e.headers = r.GetHeaders("emit header count");
    e.payload = r.GetString("emit payload");
    res.emitted.push_back(std::move(e));
  }
  r.Finish();
  return res;
}

}  // namespace runnel::wire
