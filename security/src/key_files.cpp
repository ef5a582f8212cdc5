#include "runnel/security/key_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "runnel/core/error.hpp"
#include "runnel/core/fd.hpp"

namespace runnel::security {
namespace fs = std::filesystem;
namespace {

// The first line of a key file, without its line end and any comment after a space.
std::optional<std::string> ReadKeyLine(const fs::path& file, std::string_view advice) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    throw ConfigError(
        fmt::format("{}: cannot read the key: {}{}", file.string(), std::strerror(errno), advice));
  }
  std::string line;
  std::getline(in, line);
  if (const auto end = line.find_first_of(" \t\r"); end != std::string::npos) line.resize(end);
  return line;
}

void RequirePrivate(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return;
  if ((st.st_mode & 077) != 0) {
    throw ConfigError(fmt::format("{}: a secret key readable by others (mode {:03o}): chmod 600 it",
                                  file.string(), st.st_mode & 0777));
  }
}

// The pair <dir>/<name>.pub and <dir>/<name>.secret, created when neither exists.
KeyPair LoadOrCreatePair(const fs::path& dir, const std::string& name) {
  const fs::path pub_file = dir / (name + ".pub");
  const fs::path secret_file = dir / (name + ".secret");
  auto secret = ReadKeyLine(secret_file, "");
  if (!secret) {
    KeyPair pair = NewKeyPair();
    WritePrivateFile(pub_file, pair.public_key + "\n");
    WritePrivateFile(secret_file, pair.secret_key.Reveal() + "\n");
    return pair;
  }
  RequirePrivate(secret_file);
  Secret secret_key(std::move(*secret));
  KeyPair pair{PublicKeyOf(secret_key, secret_file.string()), std::move(secret_key)};
  const auto pub = ReadKeyLine(pub_file, "");
  if (!pub) {
    WritePrivateFile(pub_file, pair.public_key + "\n");  // a public half lost: it follows from the secret
  } else if (*pub != pair.public_key) {
    throw ConfigError(fmt::format("{}: does not hold the public key of {} (remove both to make a new pair)",
                                  pub_file.string(), secret_file.string()));
  }
  return pair;
}

}  // namespace

void WritePrivateFile(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  fs::remove(tmp);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) throw Error(fmt::format("{}: cannot create: {}", tmp.string(), std::strerror(errno)), false);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd.Get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(fmt::format("{}: cannot write: {}", tmp.string(), std::strerror(errno)), false);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.Get()) != 0)
    throw Error(fmt::format("{}: cannot write: {}", tmp.string(), std::strerror(errno)), false);
  fd.Reset();
  fs::rename(tmp, file);
}

fs::path KeyDir(const fs::path& state_root) { return state_root / "keys"; }

StackKeys LoadOrCreateStackKeys(const fs::path& state_root) {
  const fs::path dir = KeyDir(state_root);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw Error(fmt::format("{}: cannot create the key directory: {}", dir.string(), ec.message()), false);
  }
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) {
    throw Error(fmt::format("{}: cannot make the key directory private: {}", dir.string(), ec.message()),
                false);
  }
  return StackKeys{LoadOrCreatePair(dir, "server"), LoadOrCreatePair(dir, "local")};
}

ClientKeys LoadLocalClientKeys(const fs::path& key_dir) {
  constexpr std::string_view kAdvice =
      " (the keys of a stack are read by the user that runs it; from another user or host, use a join token)";
  auto read = [&](const std::string& name) {
    const fs::path file = key_dir / name;
    auto line = ReadKeyLine(file, kAdvice);
    if (!line) {
      throw ConfigError(
          fmt::format("{}: no such key: has a stack with CURVE started in this state dir?", file.string()));
    }
    if (!IsKey(*line))
      throw ConfigError(fmt::format("{}: not a CURVE key (40 characters of Z85 text)", file.string()));
    return std::move(*line);
  };
  ClientKeys keys;
  keys.server_key = read("server.pub");
  keys.own.public_key = read("local.pub");
  keys.own.secret_key = Secret(read("local.secret"));
  return keys;
}

std::optional<ClientKeys> LocalClientKeysFor(const fs::path& state_root, const nlohmann::json& endpoints) {
  const auto curve = endpoints.find("curve");
  if (curve == endpoints.end() || !curve->is_boolean() || !curve->get<bool>()) return std::nullopt;
  return LoadLocalClientKeys(KeyDir(state_root));
}

std::vector<AuthorizedKey> ReadAuthorizedKeys(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw ConfigError(fmt::format("{}: cannot read the client keys: {}", dir.string(), ec.message()));
  std::vector<fs::path> files;
  for (const auto& entry : it) {
    if (entry.path().filename().string().starts_with('.') || !entry.is_regular_file(ec)) continue;
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<AuthorizedKey> keys;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw ConfigError(fmt::format("{}: cannot read: {}", file.string(), std::strerror(errno)));
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') continue;
      const auto end = line.find_first_of(" \t", start);
      const std::string key = line.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!IsKey(key)) {
        throw ConfigError(
            fmt::format("{}:{}: not a CURVE public key (40 characters of Z85 text)", file.string(), number));
      }
      keys.push_back({key, fmt::format("{}:{}", file.filename().string(), number)});
    }
  }
  return keys;
}

}  // namespace runnel::security
