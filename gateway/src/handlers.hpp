// What each gateway endpoint does once the router has matched its path and method and the token
// was checked (gateway.cpp): a call to a function (waiting for its outcome, or not), an upload, an
// outcome looked up. Each returns the reply to send. Private to gateway/. Thread-safety: every
// method from any of civetweb's threads.
#pragma once

#include <functional>
#include <string>

#include "http.hpp"
#include "publisher.hpp"
#include "runnel/core/config.hpp"
#include "runnel/gateway/pending_calls.hpp"
#include "tokens.hpp"
#include "upload_store.hpp"

namespace runnel::gateway {

class Handlers {
 public:
  struct Deps {
    const GatewayConfig* config;
    Publisher* publisher;
    PendingCalls* calls;
    const UploadStore* uploads;
    std::function<std::string(const std::string& id)> outcome_of;
  };
  explicit Handlers(Deps deps) : d_(std::move(deps)) {}

  // POST /function/NAME (wait = true) and POST /async-function/NAME.
  Reply Call(mg_connection* conn, const FunctionSpec& function, bool wait) const;
  // PUT /uploads/NAME/FILENAME; `file_name` is checked here.
  Reply Upload(mg_connection* conn, const FunctionSpec& function, const std::string& file_name) const;
  // GET /outcomes/ID; only outcomes of functions the grant allows are shown.
  Reply OutcomeOf(const std::string& id, const Tokens::Grant& grant) const;

 private:
  Deps d_;
};

}  // namespace runnel::gateway
