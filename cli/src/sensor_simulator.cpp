#include "sensor_simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>

#include "runnel/core/envelope.hpp"

namespace runnel::cli {

SensorSimulator::SensorSimulator(int devices, std::uint64_t seed) : rng_(seed) {
  std::uniform_real_distribution<double> temp(18, 26);
  std::uniform_real_distribution<double> hum(30, 60);
  for (int i = 1; i <= devices; ++i) devices_.push_back({fmt::format("dev-{:03}", i), temp(rng_), hum(rng_)});
}

SensorSimulator::Reading SensorSimulator::Next(std::int64_t now_ms) {
  Device& d = devices_[next_];
  next_ = (next_ + 1) % devices_.size();
  std::normal_distribution<double> step(0, 0.2);
  d.temp = std::clamp(d.temp + step(rng_), 10.0, 35.0);
  d.hum = std::clamp(d.hum + step(rng_), 10.0, 90.0);
  // About one reading in 2,000 starts an overheat of 5 readings.
  if (d.overheat_left == 0 && std::uniform_int_distribution<int>(0, 1999)(rng_) == 0) d.overheat_left = 5;
  double temp = d.temp;
  if (d.overheat_left > 0) {
    temp = 82.0 + 2.5 * d.overheat_left;
    --d.overheat_left;
  }
  return {d.id, fmt::format(R"({{"device":"{}","ts":{},"metrics":{{"temp":{:.2f},"hum":{:.1f}}}}})", d.id,
                            now_ms, temp, d.hum)};
}

PublishReport PublishAtRate(kafka::Producer& producer, const std::string& topic, SensorSimulator& simulator,
                            double rate, std::chrono::milliseconds duration,
                            const std::function<void(int, std::int64_t)>& every_second) {
  using Clock = std::chrono::steady_clock;
  auto failed = std::make_shared<std::atomic<std::int64_t>>(0);
  PublishReport report;
  const auto start = Clock::now();
  const auto end = start + duration;
  int reported = 0;
  for (auto now = start; now < end; now = Clock::now()) {
    const double elapsed_s = std::chrono::duration<double>(now - start).count();
    // Catch up to where the rate says we should be; the producer batches what arrives together.
    const auto due = static_cast<std::int64_t>(rate * elapsed_s);
    while (report.sent < due) {
      const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
      auto reading = simulator.Next(wall_ms);
      Envelope env;
      env.id = NewEventId();
      env.trace_id = NewTraceId();
      env.content_type = "application/json";
      producer.Produce(
          {topic, kafka::kAnyPartition, std::move(reading.device), std::move(reading.json), env.Encode()},
          [failed](const kafka::Delivery& d) {
            if (!d.Ok()) failed->fetch_add(1);
          });
      ++report.sent;
    }
    if (static_cast<int>(elapsed_s) > reported) {
      reported = static_cast<int>(elapsed_s);
      every_second(reported, report.sent);
    }
    // Pacing a generator, not synchronising: the next reading is due in 1/rate seconds.
    std::this_thread::sleep_for(std::chrono::milliseconds(rate > 500 ? 2 : 10));
  }
  const auto left = producer.Flush(std::chrono::seconds(30));
  report.failed = failed->load() + left;
  return report;
}

}  // namespace runnel::cli
