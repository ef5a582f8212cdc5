#include "runnel/core/fd.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runnel/core/error.hpp"

namespace runnel {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

Pipe MakePipe(int flags, std::string_view what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | flags) != 0) {
    throw Error(fmt::format("cannot create {}: {}", what, std::strerror(errno)), true);
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

EventNotifier::EventNotifier(std::string_view owner) : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!fd_) throw Error(fmt::format("{}: cannot create an eventfd: {}", owner, std::strerror(errno)), true);
}

void EventNotifier::Notify() const {
  const std::uint64_t one = 1;
  // Fails only when the counter would overflow (2^64 - 2 pending), which is still a wake-up.
  (void)!::write(fd_.Get(), &one, sizeof one);
}

std::uint64_t EventNotifier::Drain() const {
  std::uint64_t count = 0;
  return ::read(fd_.Get(), &count, sizeof count) == static_cast<ssize_t>(sizeof count) ? count : 0;
}

}  // namespace runnel
