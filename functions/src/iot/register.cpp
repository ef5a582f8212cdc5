// IoT functions register here (iot.*).
#include "builtins.hpp"
#include "iot/ingest.hpp"

namespace runnel::functions {

void RegisterIotFunctions(Registry& registry) {
  registry.Register("iot.ingest",
                    "validates sensor readings (JSON/NDJSON) against a schema; per-device window aggregates, "
                    "threshold alerts and z-score anomalies (functions/IOT.md)",
                    [](const nlohmann::json& params) { return iot::MakeIngestFunction(params); });
}

}  // namespace runnel::functions
