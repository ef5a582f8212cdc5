// Simulated IoT devices for `runnel simulate` and the demo: each device reports a temperature and
// a humidity that wander slowly; now and then one overheats for a few readings (above 80 °C), so
// iot.ingest's threshold alerts fire. Readings are real events on the function's Kafka topic, one
// reading per event, keyed by device (so one device's readings run in order), timestamped now.
// Thread-safety: none; one simulator per publishing thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runnel/kafka/producer.hpp"

namespace runnel::cli {

class SensorSimulator {
 public:
  SensorSimulator(int devices, std::uint64_t seed);

  struct Reading {
    std::string device;
    std::string json;  // {"device":..,"ts":..,"metrics":{"temp":..,"hum":..}}
  };
  // The next device's next reading (devices take turns).
  Reading Next(std::int64_t now_ms);
  int Devices() const { return static_cast<int>(devices_.size()); }

 private:
  struct Device {
    std::string id;
    double temp;
    double hum;
    int overheat_left = 0;  // readings still to report as overheating
  };
  std::vector<Device> devices_;
  std::size_t next_ = 0;
  std::mt19937_64 rng_;
};

struct PublishReport {
  std::int64_t sent = 0;    // readings handed to Kafka
  std::int64_t failed = 0;  // of those, not acknowledged (after the final flush)
};

// Publishes `rate` readings per second to `topic` for `duration` (rate 0: publishes nothing and just
// waits out the duration). `every_second(second, sent so far)` runs once per elapsed second.
// Flushes at the end (bounded: 30 s); the report counts what Kafka did not acknowledge.
PublishReport PublishAtRate(kafka::Producer& producer, const std::string& topic, SensorSimulator& simulator,
                            double rate, std::chrono::milliseconds duration,
                            const std::function<void(int, std::int64_t)>& every_second);

}  // namespace runnel::cli
