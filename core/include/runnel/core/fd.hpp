// File descriptors owned by a value: one closer for every fd Runnel opens (pipes, eventfds, lock
// files, signalfds, sockets handed to children), and the eventfd wake-up that every thread polling
// ZeroMQ sockets beside its own queue uses (dispatchers, the autoscaler, the worker's task pool).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

namespace runnel {

// Owns one fd: closed on destruction, or by Reset(); moves, never copies. -1 is "none".
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  explicit operator bool() const { return Valid(); }
  // Closes the fd held (if any) and holds `fd` instead.
  void Reset(int fd = -1);
  // Gives the fd up without closing it.
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// Two ends of a pipe (pipe2 with O_CLOEXEC and `flags`); throws runnel::Error on failure, naming
// `what`.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
Pipe MakePipe(int flags, std::string_view what);

// An eventfd as a level-triggered wake-up for a poll loop: any thread may Notify(); the polling
// thread sees Fd() readable until it calls Drain(). Notifies between two Drains coalesce into one
// wake-up. Non-blocking, close-on-exec.
class EventNotifier {
 public:
  // Throws runnel::Error (retriable) naming `owner` when no eventfd can be created.
  explicit EventNotifier(std::string_view owner);
  int Fd() const { return fd_.Get(); }
  void Notify() const;
  // Clears pending wake-ups; returns how many Notify() calls they were (0 when none).
  std::uint64_t Drain() const;

 private:
  UniqueFd fd_;
};

}  // namespace runnel
