// Dispatcher::Loop, records Kafka refuses (docs/protocol.md §4.5): a record too large for the
// producer or the broker fails its event with limit-exceeded (a dead-letter copy is cut down
// instead); a record refused for a reason that retrying cannot fix is written again a bounded
// number of times, then its event is dead-lettered with the reason; a dead-letter copy that cannot
// be written blocks the function: its partitions are paused and nothing is committed past the
// event until the copy is written. Failures that may pass (the broker away) are retried without
// bound, with backoff. Nothing is retried without a wait.
#include <fmt/format.h>

#include <algorithm>

#include "dispatcher_loop.hpp"
#include "runnel/kafka/record_limits.hpp"

namespace runnel::broker {
namespace {

// Writes of one record refused for a reason retrying cannot fix, in all, before its event is
// dead-lettered (or, for the dead-letter copy itself, before the function is blocked).
constexpr int kRecordWriteAttempts = 5;
// The wait before writing a refused record again: doubling from kRecordBackoffInitial up to
// kRecordBackoffMax (0.5, 1, 2, 4 s: 7.5 s before giving up).
constexpr auto kRecordBackoffInitial = std::chrono::milliseconds(500);
constexpr auto kRecordBackoffMax = std::chrono::seconds(8);
// How often a blocked function tries its dead-letter copy again.
constexpr auto kBlockedRetryInterval = std::chrono::seconds(30);

std::chrono::milliseconds RecordBackoff(int failures) {
  auto wait = kRecordBackoffInitial;
  for (int i = 1; i < failures && wait < kRecordBackoffMax; ++i) wait *= 2;
  return std::min<std::chrono::milliseconds>(wait, kRecordBackoffMax);
}

std::string_view StageName(RecordStage stage) {
  switch (stage) {
    case RecordStage::kDeadLetter:
      return "dead-letter topic";
    case RecordStage::kResult:
      return "results topic";
    case RecordStage::kPipeline:
      return "pipeline topic";
  }
  return "topic";
}

// What an operator must change so that `topic` takes the records, by the error it refused them with.
std::string WhatToFix(int code, const std::string& topic, const std::string& client_id) {
  switch (kafka::RefusalOf(code)) {
    case kafka::Refusal::kNotAuthorized:
      return fmt::format(
          "grant Runnel's Kafka principal (client.id {}, the user of kafka.options' sasl settings) "
          "Write and Describe on topic {} (and IdempotentWrite on the cluster)",
          client_id, topic);
    case kafka::Refusal::kNoSuchTopic:
      return fmt::format(
          "create topic {}, or set the function's dead_letter_topic in runnel.yaml to a topic that "
          "exists",
          topic);
    case kafka::Refusal::kTooLarge:
      return fmt::format(
          "raise topic {}'s max.message.bytes on the broker (at least kafka.options.message.max.bytes)",
          topic);
    case kafka::Refusal::kFatal:
      return "the producer hit a fatal error (see the kafka log lines before this one): restart the stack";
    case kafka::Refusal::kOther:
      break;
  }
  return fmt::format("see the broker's log for why topic {} refuses records", topic);
}

}  // namespace

void Dispatcher::Loop::RecordRefused(const DeliveryReport& c) {
  Slot& slot = slots_.at(c.slot);
  ++stats_.records_refused;
  const std::string topic = c.delivery.topic;
  const int code = c.delivery.error;
  const log::EventScope about(slot.id, slot.envelope.trace_id);
  if (kafka::IsRecordTooLarge(code)) {
    if (c.stage == RecordStage::kDeadLetter) {
      // The broker's limit is below the producer's: the copy is cut further, halving each time.
      const std::size_t next = c.bytes / 2;
      if (next >= kafka::kMessageMaxBytesMin) {
        slot.dead_letter_max = next;
        log_.warn(
            "dead-letter topic {} refused the {}-byte copy of event {} as too large ({}); "
            "cutting it to {} bytes",
            topic, c.bytes, slot.id, c.delivery.error_message, next);
        ProduceDeadLetter(c.slot);
        return;
      }
    } else {
      Decision failure =
          Decision::Failure(OutcomeStatus::kError, std::string(ErrcName(Errc::kLimitExceeded)),
                            fmt::format("its record for {} {} is {} bytes, too large to write: {}",
                                        StageName(c.stage), topic, c.bytes, c.delivery.error_message));
      if (c.stage == RecordStage::kPipeline) {
        if (!slot.pipeline_failure) slot.pipeline_failure = std::make_unique<Decision>(std::move(failure));
        if (--slot.pipeline_pending == 0) PipelineSettled(c.slot);
      } else if (slot.outcome->status == OutcomeStatus::kOk) {
        Overturn(c.slot, std::move(failure));
      } else {
        slot.skip_result = true;
        log_.error("the outcome of event {} is not on results topic {}: {}", slot.id, topic, failure.error);
        Conclude(c.slot);
      }
      return;
    }
  }
  const bool retriable = kafka::IsRetriableDelivery(code);
  int& failures = slot.write_failures[{c.stage, c.index}];
  ++failures;
  if (retriable || failures < kRecordWriteAttempts) {
    const auto wait = RecordBackoff(failures);
    log_.error("could not write event {}'s record to {} {}: {}; trying again in {} ms{}", slot.id,
               StageName(c.stage), topic, c.delivery.error_message, wait.count(),
               retriable ? "" : fmt::format(" (attempt {} of {})", failures + 1, kRecordWriteAttempts));
    record_retries_.push({Clock::now() + wait, c.slot, c.stage, c.index});
    return;
  }
  Decision failure =
      Decision::Failure(OutcomeStatus::kDeadLetter, std::string(KindName(ErrorKind::kWriteFailed)),
                        fmt::format("{} {} refused its record on {} attempts: {}", StageName(c.stage), topic,
                                    failures, c.delivery.error_message));
  switch (c.stage) {
    case RecordStage::kDeadLetter:
      Block(c.slot, c.delivery, failures);
      return;
    case RecordStage::kResult:
      slot.skip_result = true;
      if (slot.outcome->status == OutcomeStatus::kOk) {
        Overturn(c.slot, std::move(failure));
      } else {
        log_.error("the outcome of event {} is not on results topic {}: {}", slot.id, topic, failure.error);
        Conclude(c.slot);
      }
      return;
    case RecordStage::kPipeline:
      if (!slot.pipeline_failure) slot.pipeline_failure = std::make_unique<Decision>(std::move(failure));
      if (--slot.pipeline_pending == 0) PipelineSettled(c.slot);
      return;
  }
}

void Dispatcher::Loop::Block(std::uint64_t slot_id, const kafka::Delivery& delivery, int failures) {
  const Slot& slot = slots_.at(slot_id);
  const bool already = Blocked();
  blocked_slots_.insert(slot_id);
  stats_.blocked = true;
  stats_.blocked_reason =
      fmt::format("dead-letter topic {} refuses records: {}", delivery.topic, delivery.error_message);
  if (!paused_) {
    consumer_->Pause(assigned_);
    paused_ = true;
  }
  const log::EventScope about(slot.id, slot.envelope.trace_id);
  log_.error(
      "BLOCKED{}: dead-letter topic {} refused the copy of event {} ({}[{}]@{}, {}: {}) {} "
      "times: {}. Consumption is paused and nothing of {}[{}] is committed past offset {} until the copy is "
      "written (tried again every {} s). To fix: {}",
      already ? " (still)" : "", delivery.topic, slot.id, slot.msg.topic, slot.msg.partition, slot.msg.offset,
      slot.outcome->error_kind, slot.outcome->error, failures, delivery.error_message, slot.msg.topic,
      slot.msg.partition, slot.msg.offset,
      std::chrono::duration_cast<std::chrono::seconds>(kBlockedRetryInterval).count(),
      WhatToFix(delivery.error, delivery.topic, opt_.kafka.client_id));
  record_retries_.push({Clock::now() + kBlockedRetryInterval, slot_id, RecordStage::kDeadLetter, 0});
}

void Dispatcher::Loop::DueRecordRetries(Clock::time_point now) {
  while (!record_retries_.empty() && std::get<0>(record_retries_.top()) <= now) {
    const auto [due, slot_id, stage, index] = record_retries_.top();
    record_retries_.pop();
    if (!slots_.contains(slot_id)) continue;
    ProduceRecord(slot_id, stage, index);
  }
}

}  // namespace runnel::broker
