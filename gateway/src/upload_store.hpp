// Where PUT /uploads/NAME/FILENAME puts the file: <upload dir>/<event id>/<FILENAME>, streamed from
// the connection in 256 KiB chunks (mg_read into the file), so no body sits in memory whatever its
// size. The file is written as .<FILENAME>.part and renamed when complete; a refused or broken
// upload leaves nothing behind. Files stay after their event ran (docs/config.md#gateway).
// Private to gateway/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>

struct mg_connection;

namespace runnel::gateway {

class UploadStore {
 public:
  explicit UploadStore(std::filesystem::path dir);
  const std::filesystem::path& Dir() const { return dir_; }

  struct Stored {
    std::filesystem::path path;  // absolute
    std::uint64_t size = 0;
  };
  struct TooLarge {};
  struct Broken {
    std::string why;
    bool server_side = false;  // the disk, not the client (500)
  };
  // Reads the request body into the store; `file_name` was checked (FileNameProblem).
  std::variant<Stored, TooLarge, Broken> Receive(mg_connection* conn, const std::string& event_id,
                                                 const std::string& file_name, std::uint64_t max_bytes) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace runnel::gateway
