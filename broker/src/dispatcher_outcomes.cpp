// Dispatcher::Loop, the outcome side: failures and retries, the final outcome of an event, the
// records it needs first (dead letter, pipeline events, results topic) and, once they are
// acknowledged, publishing it and marking the event done.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <zmq_addon.hpp>

#include "dispatcher_loop.hpp"
#include "runnel/kafka/record_limits.hpp"

namespace runnel::broker {
namespace {

// The most outcomes one results-feed message carries; a busy turn sends several.
constexpr std::size_t kFeedBatch = 256;
// RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE (the Kafka protocol's code), for a copy that cannot be cut
// to fit.
constexpr int kMsgSizeTooLarge = 10;
// Beyond the output, error, files and key: what a results record's headers take at most (the
// meta's bounded fields, escaped, and the record's own headers).
constexpr std::size_t kResultMetaSlack = std::size_t{16} * 1024;

}  // namespace

void Dispatcher::Loop::Fail(std::uint64_t slot_id, Errc code, const std::string& message,
                            const std::string& worker) {
  Slot& slot = slots_.at(slot_id);
  const bool retriable = IsRetriable(code);
  if (retriable && slot.attempt < opt_.spec.retry.max_attempts) {
    ++slot.attempt;
    ++stats_.retries;
    const auto base = opt_.spec.retry.Backoff(slot.attempt);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    const auto wait = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(base.count()) * jitter(rng_)));
    slot.state = Slot::State::kBackoff;
    retries_.push({Clock::now() + wait, slot_id});
    if (opt_.observer) opt_.observer->RetryScheduled(slot_id, slot.attempt, wait);
    const log::EventScope about(slot.id, slot.envelope.trace_id);
    log_.debug("event {} failed ({}: {}); attempt {} in {} ms", slot.id, ErrcName(code), message,
               slot.attempt, wait.count());
    return;
  }
  Decision failure = Decision::Failure(
      retriable ? OutcomeStatus::kDeadLetter : OutcomeStatus::kError, std::string(ErrcName(code)),
      retriable ? fmt::format("{} (gave up after {} attempts)", message, slot.attempt) : message);
  failure.worker = worker;
  Decide(slot_id, std::move(failure));
}

void Dispatcher::Loop::Decide(std::uint64_t slot_id, Decision decision) {
  Slot& slot = slots_.at(slot_id);
  const OutcomeStatus status = decision.status;
  // A failure's first record is its dead-letter copy; an ok outcome's are its pipeline events (it
  // moves on at once when there are none).
  slot.state =
      Slot::Writing(status != OutcomeStatus::kOk ? RecordStage::kDeadLetter : RecordStage::kPipeline);
  Outcome o;
  o.id = slot.id;
  o.function = opt_.spec.name;
  o.status = status;
  o.attempts = slot.attempt;
  o.error = std::move(decision.error);
  o.error_kind = std::move(decision.error_kind);
  o.topic = slot.msg.topic;
  o.partition = slot.msg.partition;
  o.offset = slot.msg.offset;
  o.key = slot.msg.key;
  o.content_type = std::move(decision.content_type);
  o.output = std::move(decision.output);
  o.files_json = std::move(decision.files_json);
  o.duration_us = decision.duration_us;
  o.worker = std::move(decision.worker);
  o.reply_to = slot.envelope.reply_to;
  o.trace_id = slot.envelope.trace_id;
  o.span_id = slot.span_id;
  o.job_id = slot.envelope.job_id;
  slot.outcome = std::move(o);
  slot.needs_dead_letter = status != OutcomeStatus::kOk;
  if (status != OutcomeStatus::kOk) {
    const log::EventScope about(slot.id, slot.envelope.trace_id);
    log_.warn("event {} ({}[{}]@{}) {}: {}: {}", slot.id, slot.msg.topic, slot.msg.partition, slot.msg.offset,
              StatusName(status), slot.outcome->error_kind, slot.outcome->error);
  }
  if (slot.needs_dead_letter) {
    ProduceDeadLetter(slot_id);
    return;
  }
  BuildPipeline(slot, std::move(decision.emitted));
  if (const std::string why = OversizedRecord(slot); !why.empty()) {
    // Checked before anything is produced: no pipeline event goes out for an event that fails.
    slot.pipeline.clear();
    Overturn(slot_id,
             Decision::Failure(OutcomeStatus::kError, std::string(ErrcName(Errc::kLimitExceeded)), why));
    return;
  }
  if (slot.pipeline.empty()) {
    AfterPipeline(slot_id);
    return;
  }
  slot.pipeline_pending = slot.pipeline.size();
  for (std::size_t i = 0; i < slot.pipeline.size(); ++i) ProducePipelineRecord(slot_id, i);
}

void Dispatcher::Loop::BuildPipeline(Slot& slot, std::vector<wire::EmitRecord> emitted) {
  const Outcome& o = *slot.outcome;
  // Every pipeline event carries a fresh id, the hop count + 1, and the source's trace and job.
  auto lineage = [&](Headers headers) {
    std::erase_if(headers, [](const Header& h) {
      return h.name == header::kId || h.name == header::kHop || h.name == header::kAttempt ||
             h.name == header::kParent;
    });
    headers.push_back({std::string(header::kId), NewEventId()});
    headers.push_back({std::string(header::kHop), std::to_string(slot.envelope.hop + 1)});
    // An emitted event that names a trace of its own keeps it; any other joins the source's trace as
    // a child of this attempt's span.
    const bool has_trace = std::any_of(headers.begin(), headers.end(), [](const Header& h) {
      return h.name == header::kTrace || h.name == header::kTraceparent;
    });
    if (!has_trace) {
      headers = WithTraceContext(std::move(headers), slot.envelope.trace_id, slot.span_id,
                                 slot.envelope.trace_flags);
      for (const Header& h : slot.msg.headers) {  // the trace's vendor state travels with it, untouched
        if (h.name == header::kTracestate) headers.push_back(h);
      }
    }
    if (!slot.envelope.job_id.empty()) headers.push_back({std::string(header::kJob), slot.envelope.job_id});
    headers.push_back({std::string(header::kParent), slot.id});
    return headers;
  };
  for (auto& e : emitted) {
    std::optional<std::string> key;
    if (e.has_key) key = std::move(e.key);
    slot.pipeline.push_back({std::move(e.topic), kafka::kAnyPartition, std::move(key), std::move(e.payload),
                             lineage(std::move(e.headers))});
  }
  if (opt_.next_topics.empty()) return;
  const auto files = nlohmann::json::parse(o.files_json.empty() ? "[]" : o.files_json, nullptr, false);
  for (const auto& topic : opt_.next_topics) {
    if (files.is_array() && !files.empty()) {
      for (const auto& f : files) {
        Envelope env;
        if (f.contains("url")) {  // PUT to outputs.url: the next function fetches it from there
          env.file = FileRef{{}, f.value("bytes", std::uint64_t{0}), f.value("name", ""), f.value("url", "")};
        } else {
          env.file = FileRef{f.value("path", ""), f.value("bytes", std::uint64_t{0}),
                             std::filesystem::path(f.value("path", "")).filename().string()};
        }
        Headers headers;
        try {
          headers = env.Encode();
        } catch (const EnvelopeError& e) {
          const log::EventScope about(slot.id, slot.envelope.trace_id);
          log_.error("output file of {} cannot be passed on: {}", slot.id, e.what());
          continue;
        }
        slot.pipeline.push_back({topic, kafka::kAnyPartition, slot.msg.key, "", lineage(std::move(headers))});
      }
    } else {
      Headers headers;
      if (!o.content_type.empty()) headers.push_back({std::string(header::kContentType), o.content_type});
      slot.pipeline.push_back(
          {topic, kafka::kAnyPartition, slot.msg.key, o.output, lineage(std::move(headers))});
    }
  }
}

std::string Dispatcher::Loop::OversizedRecord(const Slot& slot) const {
  for (const kafka::Record& r : slot.pipeline) {
    const std::size_t size = kafka::RecordWireSize(r);
    if (size > max_record_bytes_) {
      return fmt::format(
          "the event it leads to on topic {} is {} bytes with its headers, over the producer's "
          "message.max.bytes of {}",
          r.topic, size, max_record_bytes_);
    }
  }
  if (!opt_.spec.results_topic.empty()) {
    // Most outcomes are far below the limit: a bound on the record's size (escaping can grow JSON
    // text six times; the meta's other fields are a few kilobytes at most) spares building it twice.
    const Outcome& o = *slot.outcome;
    const std::size_t key = o.key ? o.key->size() : 0;
    const std::size_t bound = o.output.size() + 7 * o.content_type.size() +
                              6 * (o.error.size() + o.files_json.size() + o.worker.size()) + 4 * key +
                              kResultMetaSlack;
    if (bound <= max_record_bytes_) return {};
    const std::size_t size = kafka::RecordWireSize(ResultRecord(slot));
    if (size > max_record_bytes_) {
      return fmt::format(
          "its output of {} bytes makes a record of {} bytes for results topic {}, over the "
          "producer's message.max.bytes of {}",
          slot.outcome->output.size(), size, opt_.spec.results_topic, max_record_bytes_);
    }
  }
  return {};
}

void Dispatcher::Loop::Overturn(std::uint64_t slot_id, Decision failure) {
  const Outcome& decided = *slots_.at(slot_id).outcome;
  failure.duration_us = decided.duration_us;
  failure.worker = decided.worker;
  slots_.at(slot_id).write_failures.clear();
  Decide(slot_id, std::move(failure));
}

void Dispatcher::Loop::ProducePipelineRecord(std::uint64_t slot_id, std::size_t index) {
  slots_.at(slot_id).state = Slot::State::kWritingPipeline;
  Submit(slot_id, RecordStage::kPipeline, index, slots_.at(slot_id).pipeline.at(index));
}

void Dispatcher::Loop::AfterPipeline(std::uint64_t slot_id) {
  if (!opt_.spec.results_topic.empty() && !slots_.at(slot_id).skip_result) {
    ProduceResult(slot_id);
  } else {
    Conclude(slot_id);
  }
}

void Dispatcher::Loop::PipelineSettled(std::uint64_t slot_id) {
  Slot& slot = slots_.at(slot_id);
  if (!slot.pipeline_failure) {
    AfterPipeline(slot_id);
    return;
  }
  // Events already written stay written; the source event fails with the reason.
  Decision failure = std::move(*slot.pipeline_failure);
  slot.pipeline_failure.reset();
  slot.pipeline.clear();
  Overturn(slot_id, std::move(failure));
}

void Dispatcher::Loop::Submit(std::uint64_t slot_id, RecordStage stage, std::size_t index,
                              kafka::Record record) {
  const std::size_t bytes = kafka::RecordWireSize(record);
  auto refused = producer_->TryProduce(std::move(record),
                                       [this, slot_id, stage, index, bytes](const kafka::Delivery& d) {
                                         OnDelivery(slot_id, stage, d, index, bytes);
                                       });
  if (refused) OnDelivery(slot_id, stage, *refused, index, bytes);
}

void Dispatcher::Loop::ProduceRecord(std::uint64_t slot_id, RecordStage stage, std::size_t index) {
  switch (stage) {
    case RecordStage::kDeadLetter:
      ProduceDeadLetter(slot_id);
      break;
    case RecordStage::kResult:
      ProduceResult(slot_id);
      break;
    case RecordStage::kPipeline:
      ProducePipelineRecord(slot_id, index);
      break;
  }
}

void Dispatcher::Loop::OnDelivery(std::uint64_t slot_id, RecordStage stage, const kafka::Delivery& delivery,
                                  std::size_t index, std::size_t bytes) {
  {
    std::lock_guard lock(deliveries_mu_);
    deliveries_.push_back({slot_id, stage, delivery, index, bytes});
  }
  deliveries_ready_.Notify();
}

void Dispatcher::Loop::ProduceDeadLetter(std::uint64_t slot_id) {
  Slot& slot = slots_.at(slot_id);
  slot.state = Slot::State::kWritingDeadLetter;
  const Outcome& o = *slot.outcome;
  kafka::Record record{opt_.spec.dead_letter_topic, kafka::kAnyPartition, slot.msg.key, slot.msg.value, {}};
  for (const Header& h : slot.msg.headers) {
    if (h.name != header::kAttempt && h.name != header::kTruncated && h.name != header::kTruncatedHeaders) {
      record.headers.push_back(h);
    }
  }
  record.headers = WithTraceContext(std::move(record.headers), slot.envelope.trace_id, slot.span_id,
                                    slot.envelope.trace_flags);
  record.headers.push_back({std::string(header::kAttempt), std::to_string(o.attempts)});
  record.headers.push_back({std::string(header::kError), o.error});
  record.headers.push_back({std::string(header::kErrorKind), o.error_kind});
  record.headers.push_back(
      {std::string(header::kOrigin), fmt::format("{}/{}/{}", o.topic, o.partition, o.offset)});
  record.headers.push_back({std::string(header::kFunction), o.function});
  constexpr std::size_t kOwnHeaders = 5;  // the five above
  const std::size_t limit =
      slot.dead_letter_max > 0 ? std::min(slot.dead_letter_max, max_record_bytes_) : max_record_bytes_;
  const kafka::Truncation cut = kafka::FitDeadLetter(record, kOwnHeaders, limit);
  if (cut.value_cut || cut.headers_dropped > 0) {
    const log::EventScope about(slot.id, slot.envelope.trace_id);
    log_.warn(
        "the dead-letter copy of event {} is cut to fit {} bytes: value {} of {} bytes, {} "
        "header(s) of the original left out",
        slot.id, limit, record.value.size(), cut.value_size, cut.headers_dropped);
  }
  if (!cut.fits) {
    kafka::Delivery refused{
        record.topic, -1, -1, kMsgSizeTooLarge,
        fmt::format("even without its value and the original's headers the copy is {} bytes, over {}",
                    kafka::RecordWireSize(record), limit)};
    OnDelivery(slot_id, RecordStage::kDeadLetter, refused, 0, kafka::RecordWireSize(record));
    return;
  }
  Submit(slot_id, RecordStage::kDeadLetter, 0, std::move(record));
}

kafka::Record Dispatcher::Loop::ResultRecord(const Slot& slot) const {
  const Outcome& o = *slot.outcome;
  kafka::Record record{opt_.spec.results_topic, kafka::kAnyPartition, slot.msg.key, o.output, {}};
  record.headers.push_back({std::string(header::kId), o.id});
  if (!o.content_type.empty()) record.headers.push_back({std::string(header::kContentType), o.content_type});
  record.headers.push_back({std::string(header::kResult), o.MetaJson()});
  record.headers = WithTraceContext(std::move(record.headers), slot.envelope.trace_id, slot.span_id,
                                    slot.envelope.trace_flags);
  return record;
}

void Dispatcher::Loop::ProduceResult(std::uint64_t slot_id) {
  Slot& slot = slots_.at(slot_id);
  slot.state = Slot::State::kWritingResult;
  Submit(slot_id, RecordStage::kResult, 0, ResultRecord(slot));
}

void Dispatcher::Loop::DrainDeliveries() {
  std::vector<DeliveryReport> done;
  {
    std::lock_guard lock(deliveries_mu_);
    done.swap(deliveries_);
  }
  for (auto& c : done) {
    if (!slots_.contains(c.slot)) continue;
    if (!c.delivery.Ok()) {
      RecordRefused(c);
      continue;
    }
    Slot& slot = slots_.at(c.slot);
    slot.write_failures.erase({c.stage, c.index});
    switch (c.stage) {
      case RecordStage::kPipeline:
        if (--slot.pipeline_pending == 0) PipelineSettled(c.slot);
        break;
      case RecordStage::kDeadLetter:
        if (blocked_slots_.erase(c.slot) > 0) {
          log_.warn("dead-letter topic {} took the copy of event {} at last{}", opt_.spec.dead_letter_topic,
                    slot.id, Blocked() ? "" : "; the function is no longer blocked");
          if (!Blocked()) {
            stats_.blocked = false;
            stats_.blocked_reason.clear();
          }
        }
        if (!opt_.spec.results_topic.empty() && !slot.skip_result) {
          ProduceResult(c.slot);
        } else {
          Conclude(c.slot);
        }
        break;
      case RecordStage::kResult:
        Conclude(c.slot);
        break;
    }
  }
}

void Dispatcher::Loop::Conclude(std::uint64_t slot_id) {
  auto it = slots_.find(slot_id);
  Slot& slot = it->second;
  const Outcome& o = *slot.outcome;
  switch (o.status) {
    case OutcomeStatus::kOk:
      ++stats_.succeeded;
      break;
    case OutcomeStatus::kError:
      ++stats_.errors;
      break;
    case OutcomeStatus::kDeadLetter:
      ++stats_.dead_lettered;
      break;
  }
  if (pub_) {
    // Outcomes of one topic that become final in the same turn share a message.
    const std::string topic = o.Topic();
    std::vector<zmq::message_t>* message = nullptr;
    for (std::size_t i = feed_used_; i-- > 0;) {
      if (feed_[i].front().to_string_view() == topic) {
        message = &feed_[i];
        break;
      }
    }
    if (message == nullptr) {
      if (feed_used_ == feed_.size()) feed_.emplace_back();
      message = &feed_[feed_used_++];
      message->push_back(zmq::message_t(topic));
    }
    message->push_back(zmq::message_t(o.MetaJson()));
    message->push_back(zmq::message_t(o.output));
    if (message->size() >= 1 + 2 * kFeedBatch) PublishOutcomes();
  }
  if (opt_.observer) {
    opt_.observer->Finished(slot_id, o, o.status == OutcomeStatus::kOk ? "" : opt_.spec.dead_letter_topic);
  }
  slot.state = Slot::State::kDone;
  tracker_.Done(slot.msg.partition, slot.msg.offset);
  queue_.Release(slot.msg.key);
  slots_.erase(it);
}

void Dispatcher::Loop::PublishOutcomes() {
  for (std::size_t i = 0; i < feed_used_; ++i) {
    // Never blocks: a subscriber whose queue is full misses the message (docs/protocol.md §4.1).
    (void)zmq::send_multipart(*pub_, feed_[i], zmq::send_flags::dontwait);
    feed_[i].clear();
  }
  feed_used_ = 0;
}

}  // namespace runnel::broker
