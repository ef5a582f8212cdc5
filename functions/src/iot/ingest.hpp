// iot.ingest: validates sensor readings, aggregates them per device in tumbling windows, and flags
// threshold alerts and z-score anomalies. functions/IOT.md is the user-facing description.
// Thread-safe: nothing carries from one call to the next except reusable working memory, which a
// call borrows from a pool, so one instance serves concurrent fibers and threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "iot/params.hpp"
#include "runnel/functions/function.hpp"

namespace runnel::functions::iot {

// The processing clock in epoch milliseconds; read once per call to judge future timestamps.
using Clock = std::function<std::int64_t()>;
std::int64_t SystemClockMs();

class IngestFunction final : public Function {
 public:
  IngestFunction(IngestParams params, Clock clock);
  ~IngestFunction() override;
  IngestFunction(const IngestFunction&) = delete;
  IngestFunction& operator=(const IngestFunction&) = delete;

  Result Handle(const Event& event, Context& ctx) override;
  BatchSpec Batch() const override;
  // Aggregates, lateness and anomaly baselines span every event of the batch; each event's result
  // lists its own counts, errors, alerts and anomalies, and the first successful one lists the
  // batch's aggregates.
  std::vector<ResultOrError> HandleBatch(std::span<const Event> events, Context& ctx) override;

  const IngestParams& Params() const { return params_; }

 private:
  struct Scratch;
  std::unique_ptr<Scratch> Borrow();
  void Return(std::unique_ptr<Scratch> scratch);

  IngestParams params_;
  Clock clock_;
  std::mutex idle_mutex_;
  // Working memory of finished calls (parser buffers, reading arrays, hash tables): a call reuses
  // one instead of faulting in fresh pages. Holds at most one per concurrent call.
  std::vector<std::unique_ptr<Scratch>> idle_;
};

// The registry's factory: parses params (FunctionError kBadConfig on a bad key) and uses `clock`.
std::unique_ptr<Function> MakeIngestFunction(const nlohmann::json& params, Clock clock = SystemClockMs);

}  // namespace runnel::functions::iot
