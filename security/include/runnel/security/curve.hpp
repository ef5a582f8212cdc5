// CURVE keys as Runnel keeps them (Z85 text, 40 characters; the secret half always a Secret) and
// the socket options that make a ZeroMQ socket a CURVE server or client (docs/protocol.md §6).
#pragma once

#include <string>
#include <string_view>

#include "runnel/core/secret.hpp"

namespace zmq {
class socket_t;
}

namespace runnel::security {

struct KeyPair {
  std::string public_key;  // Z85
  Secret secret_key;       // Z85
  bool operator==(const KeyPair&) const = default;
};

// Throws runnel::Error with one clear line when this process's libzmq has no CURVE
// (zmq_has("curve") is false: built without libsodium or tweetnacl).
void RequireCurve();

// A fresh key pair (zmq_curve_keypair).
KeyPair NewKeyPair();

// Whether `text` is a CURVE key in Z85: 40 characters of the Z85 alphabet.
bool IsKey(std::string_view text);

// The public key that belongs to a Z85 secret key (zmq_curve_public); throws ConfigError, naming
// `where`, when `secret` is not a key.
std::string PublicKeyOf(const Secret& secret, std::string_view where);

// A server socket, before it binds: CURVE on with the server's pair, and `zap_domain` in every
// ZAP request it makes, so that the handler knows which socket asks (security/guard.hpp).
void MakeServer(zmq::socket_t& socket, const KeyPair& server, const std::string& zap_domain);

// Binds `socket` also on `endpoint` without CURVE: an ipc:// endpoint in a directory only the
// stack's user can enter (mode 0700), for the processes of that user on this host, who may read the
// local keys anyway. libzmq takes a listener's mechanism from the options at its bind, so the
// socket's earlier binds keep CURVE. Call after those binds.
void BindLocal(zmq::socket_t& socket, const std::string& endpoint);
// The ZAP domain of a BindLocal listener is its socket's with this after it.
inline constexpr std::string_view kLocalDomainSuffix = "/local";

// Whether a client connecting to `endpoint` uses CURVE: TCP does; a local ipc:// endpoint
// (BindLocal) does not.
bool UsesCurve(std::string_view endpoint);

// What a client needs to reach a CURVE server: the server's public key and a pair of its own,
// which the server admits by its public half.
struct ClientKeys {
  std::string server_key;
  KeyPair own;
  bool operator==(const ClientKeys&) const = default;
};

// A client socket, before it connects.
void MakeClient(zmq::socket_t& socket, const ClientKeys& keys);

}  // namespace runnel::security
