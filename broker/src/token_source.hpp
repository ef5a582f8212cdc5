// Dispatch tokens: 64 random bits each, from the kernel's CSPRNG (getrandom), read 512 at a time so
// a busy dispatcher makes one system call per 512 dispatches. A peer that sees its own tokens
// learns nothing about the others' (a seeded PRNG such as mt19937_64 gives its state away after
// 312 outputs). Private to broker/; one dispatcher thread uses it.
#pragma once

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <random>

namespace runnel::broker {

class TokenSource {
 public:
  std::uint64_t Next() {
    if (next_ == buffer_.size()) Refill();
    return buffer_[next_++];
  }

 private:
  void Refill() {
    auto* bytes = reinterpret_cast<char*>(buffer_.data());
    std::size_t have = 0;
    const std::size_t want = sizeof buffer_;
    while (have < want) {
      const ssize_t n = ::getrandom(bytes + have, want - have, 0);
      if (n > 0) {
        have += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        break;
      }
    }
    if (have < want) {  // no getrandom (an old kernel or a seccomp filter): the library's device
      std::random_device device;
      for (auto& word : buffer_) word = (std::uint64_t{device()} << 32) ^ device();
    }
    next_ = 0;
  }

  std::array<std::uint64_t, 512> buffer_{};
  std::size_t next_ = buffer_.size();
};

}  // namespace runnel::broker
