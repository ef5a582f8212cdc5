#include "runnel/core/state_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runnel/core/envelope.hpp"
#include "runnel/core/error.hpp"

namespace runnel {
namespace {

// flock() on a side file: held for the read-modify-write of endpoints.json.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path)
      : fd_(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    if (!fd_ || ::flock(fd_.Get(), LOCK_EX) != 0) throw Error("cannot lock " + path.string(), true);
  }

 private:
  UniqueFd fd_;
};

nlohmann::json ReadJsonOrEmpty(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return nlohmann::json::object();
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    throw ConfigError(file.string() + " is not a JSON object; remove it if no stack is running");
  }
  return parsed;
}

void WriteAtomically(const std::filesystem::path& file, const nlohmann::json& value) {
  const auto tmp = file.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << value.dump(2) << '\n';
    if (!out.flush()) throw Error("cannot write " + tmp, true);
  }
  std::filesystem::rename(tmp, file);
}

}  // namespace

std::string StateDir::StackId() const {
  const auto file = root_ / "stack.id";
  const auto valid = [](const std::string& id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c));
    });
  };
  {
    std::ifstream in(file);
    std::string id;
    if (in >> id && valid(id)) return id;
  }
  std::filesystem::create_directories(root_);
  const std::string id = NewEventId();
  const auto tmp = file.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << '\n';
    if (!out.flush()) throw Error("cannot write " + tmp, true);
  }
  std::filesystem::rename(tmp, file);
  return id;
}

StateDir StateDir::Resolve(const std::string& flag_value) {
  if (!flag_value.empty()) return StateDir(flag_value);
  if (const char* env = std::getenv("RUNNEL_STATE_DIR"); env && *env) return StateDir(env);
  return StateDir(".runnel");
}

void StateDir::MergeEndpoints(const nlohmann::json& values) const {
  std::filesystem::create_directories(root_);
  FileLock lock(root_ / ".endpoints.lock");
  auto current = ReadJsonOrEmpty(EndpointsFile());
  current.update(values);
  WriteAtomically(EndpointsFile(), current);
}

void StateDir::RemoveEndpoints(const std::vector<std::string>& keys) const {
  if (!std::filesystem::exists(root_)) return;
  FileLock lock(root_ / ".endpoints.lock");
  auto current = ReadJsonOrEmpty(EndpointsFile());
  for (const auto& key : keys) current.erase(key);
  if (current.empty()) {
    std::filesystem::remove(EndpointsFile());
  } else {
    WriteAtomically(EndpointsFile(), current);
  }
}

nlohmann::json StateDir::ReadEndpoints() const {
  if (!std::filesystem::exists(EndpointsFile())) {
    throw NoStackError("no running Runnel stack: " + EndpointsFile().string() +
                       " does not exist (start one with 'runnel up' or 'runnel kafka', or pass --state-dir)");
  }
  return ReadJsonOrEmpty(EndpointsFile());
}

std::string StateDir::KafkaBootstrap() const {
  auto endpoints = ReadEndpoints();
  auto it = endpoints.find("kafka");
  if (it == endpoints.end() || !it->is_string()) {
    throw ConfigError(EndpointsFile().string() + " has no \"kafka\" endpoint");
  }
  return it->get<std::string>();
}

StackLock::StackLock(const StateDir& dir, const std::string& what) {
  std::filesystem::create_directories(dir.Root());
  const auto path = dir.Root() / "stack.lock";
  fd_.Reset(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
  if (!fd_) throw ConfigError("cannot open " + path.string());
  if (::flock(fd_.Get(), LOCK_EX | LOCK_NB) != 0) {
    char holder[64] = {};
    const ssize_t n = ::pread(fd_.Get(), holder, sizeof holder - 1, 0);
    throw ConfigError(
        "a Runnel stack already runs with state dir " + dir.Root().string() +
        (n > 0 ? " (" + std::string(holder, static_cast<std::size_t>(n)) + ")" : std::string()) +
        "; stop it or pass another --state-dir");
  }
  const std::string holder = what + ", pid " + std::to_string(::getpid());
  if (::ftruncate(fd_.Get(), 0) != 0 || ::pwrite(fd_.Get(), holder.data(), holder.size(), 0) < 0) {
    // The lock holds without the note; the note only improves the message above.
  }
}

}  // namespace runnel
