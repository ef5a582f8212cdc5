#include "runnel/security/curve.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <zmq.hpp>

#include "runnel/core/error.hpp"

namespace runnel::security {
namespace {

constexpr std::size_t kZ85KeyLength = 40;
// The Z85 alphabet (ZeroMQ RFC 32).
constexpr std::string_view kZ85 =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

}  // namespace

void RequireCurve() {
  if (zmq_has("curve") == 0) {
    int major = 0;
    int minor = 0;
    int patch = 0;
    zmq_version(&major, &minor, &patch);
    throw Error(fmt::format("this libzmq ({}.{}.{}) was built without CURVE, which every Runnel socket uses: "
                            "install a libzmq built with libsodium (Debian's libzmq5 is), or set "
                            "security: {{curve: false}} for a stack whose every bind is loopback",
                            major, minor, patch),
                false);
  }
}

KeyPair NewKeyPair() {
  std::array<char, kZ85KeyLength + 1> pub{};
  std::array<char, kZ85KeyLength + 1> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    throw Error(fmt::format("cannot create a CURVE key pair: {}", zmq_strerror(zmq_errno())), false);
  }
  KeyPair pair{std::string(pub.data(), kZ85KeyLength), Secret(std::string(sec.data(), kZ85KeyLength))};
  std::fill(sec.begin(), sec.end(), '\0');
  return pair;
}

bool IsKey(std::string_view text) {
  return text.size() == kZ85KeyLength &&
         std::all_of(text.begin(), text.end(), [](char c) { return kZ85.find(c) != std::string_view::npos; });
}

std::string PublicKeyOf(const Secret& secret, std::string_view where) {
  if (!IsKey(secret.Reveal())) {
    throw ConfigError(fmt::format("{}: not a CURVE secret key (40 characters of Z85 text)", where));
  }
  std::array<char, kZ85KeyLength + 1> pub{};
  if (zmq_curve_public(pub.data(), secret.Reveal().c_str()) != 0) {
    throw ConfigError(fmt::format("{}: not a CURVE secret key: {}", where, zmq_strerror(zmq_errno())));
  }
  return std::string(pub.data(), kZ85KeyLength);
}

void MakeServer(zmq::socket_t& socket, const KeyPair& server, const std::string& zap_domain) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, server.secret_key.Reveal());
  socket.set(zmq::sockopt::zap_domain, zap_domain);
}

void BindLocal(zmq::socket_t& socket, const std::string& endpoint) {
  // libzmq refuses an empty ZAP domain once one is set, and asks ZAP about NULL connections while
  // one is: the guard admits NULL requests from this domain only (no TCP listener has it).
  const std::string domain = socket.get(zmq::sockopt::zap_domain);
  socket.set(zmq::sockopt::curve_server, 0);
  if (!domain.empty()) socket.set(zmq::sockopt::zap_domain, domain + std::string(kLocalDomainSuffix));
  socket.bind(endpoint);
}

bool UsesCurve(std::string_view endpoint) { return endpoint.starts_with("tcp://"); }

void MakeClient(zmq::socket_t& socket, const ClientKeys& keys) {
  socket.set(zmq::sockopt::curve_serverkey, keys.server_key);
  socket.set(zmq::sockopt::curve_publickey, keys.own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.own.secret_key.Reveal());
}

}  // namespace runnel::security
