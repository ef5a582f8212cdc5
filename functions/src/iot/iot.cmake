# iot.* built-in functions. simdjson parses readings on the hot path (Debian's libsimdjson-dev).
find_package(simdjson REQUIRED)
target_sources(runnel_functions PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/register.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/params.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/timestamp.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/readings.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/reading_parser.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/reading_fields.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/analysis.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/json_text.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/ingest_result.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/iot/ingest.cpp)
target_link_libraries(runnel_functions PRIVATE simdjson::simdjson)
