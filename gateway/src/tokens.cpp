#include "tokens.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>

#include "runnel/core/error.hpp"

namespace runnel::gateway {
namespace {

// Equal bytes, in a time that depends only on the lengths.
bool SameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string RandomHex(std::size_t bytes) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!in.read(raw.data(), static_cast<std::streamsize>(bytes)))
    throw Error("cannot read /dev/urandom", false);
  std::string hex;
  for (const char c : raw) hex += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return hex;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Tokens::Tokens(const std::filesystem::path& state_dir, const std::vector<GatewayToken>& limited)
    : file_(std::filesystem::absolute(state_dir / "gateway.token")), limited_(limited) {
  const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    stack_token_ = RandomHex(32);
    const std::string line = stack_token_ + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!written) throw Error(fmt::format("{}: cannot write the gateway's token", file_.string()), false);
    return;
  }
  if (errno != EEXIST)
    throw Error(fmt::format("{}: cannot create the gateway's token", file_.string()), false);
  ::chmod(file_.c_str(), 0600);  // as created: only the stack's user reads it
  std::ifstream in(file_);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  stack_token_ = Trimmed(std::move(text));
  if (stack_token_.size() < GatewayToken::kMinLength) {
    throw Error(
        fmt::format("{}: the gateway's token is shorter than {} characters; remove the file to get a new one",
                    file_.string(), GatewayToken::kMinLength),
        false);
  }
}

bool Tokens::Grant::Allows(const std::string& function) const {
  if (any) return true;
  return functions != nullptr &&
         std::find(functions->begin(), functions->end(), function) != functions->end();
}

std::optional<Tokens::Grant> Tokens::Check(const std::optional<std::string>& authorization) const {
  if (!authorization) return std::nullopt;
  constexpr std::string_view kScheme = "bearer ";
  const std::string& a = *authorization;
  if (a.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != kScheme[i]) return std::nullopt;
  }
  std::string_view token(a);
  token.remove_prefix(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  std::optional<Grant> grant;
  // Every token is compared, so the time taken says nothing about which one matched.
  if (SameSecret(token, stack_token_)) grant = Grant{true, nullptr};
  for (const auto& t : limited_) {
    if (SameSecret(token, t.token.Reveal()) && !grant) grant = Grant{false, &t.functions};
  }
  return grant;
}

}  // namespace runnel::gateway
