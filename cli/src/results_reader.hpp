// `runnel results` pieces shared by its two sources: the options, how an outcome is printed, the
// deadline; and the durable source, a function's results topic read at a consumer group's position.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "runnel/core/outcome.hpp"

namespace runnel::cli {

struct ResultsOptions {
  bool json = false;
  bool base64 = false;
  std::string function;
  int count = 0;       // 0: no limit
  double timeout = 0;  // seconds; 0: none
  bool durable = false;
  std::string group;  // --durable: empty means runnel.results.<function>
  bool from_beginning = false;
};

// An output as the text line of `runnel results` shows it: its first 80 bytes (not cutting a UTF-8
// character), then how much was left out: "… (+1234 bytes; --json for all)".
std::string OutputPreview(const std::string& output);

// Prints outcomes to stdout as `runnel results` does (one line each, or JSON lines) and counts them.
class OutcomePrinter {
 public:
  explicit OutcomePrinter(const ResultsOptions& options) : options_(options) {}
  void Print(const Outcome& o);
  void Flush();  // stdout, so what was printed is out before anything is acknowledged
  // --count reached.
  bool Done() const { return options_.count > 0 && seen_ >= options_.count; }
  // Says how many came within the timeout on stderr; returns exit_code::kTimeout.
  int TimedOut() const;

 private:
  const ResultsOptions& options_;
  int seen_ = 0;
};

// --timeout as a point in time; none when it is 0.
class Deadline {
 public:
  explicit Deadline(double seconds);
  bool Passed() const;
  // `wait`, or less when the deadline comes sooner.
  std::chrono::milliseconds Cap(std::chrono::milliseconds wait) const;

 private:
  std::optional<std::chrono::steady_clock::time_point> until_;
};

// One line on stderr: "runnel: <line>".
void Say(const std::string& line);

// --durable: reads the results topic of options.function (endpoints.json → functions → results_topic)
// with consumer group options.group from its committed position (a group without one starts at the
// topic's end, or its beginning with from_beginning, and commits that position at once), committing
// each batch's offsets after printing it and flushing stdout. Returns the exit status.
int ReadResultsTopic(const ResultsOptions& options, const std::string& state_dir_flag);

}  // namespace runnel::cli
