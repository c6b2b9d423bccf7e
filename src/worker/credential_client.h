// The worker's side of server-held credentials: asks the root server for the secrets one
// running attempt names (POST /api/v1/secrets/resolve, with the worker's service token).
// The values are returned to the executor and never logged. Thread-safe (one keep-alive
// client per calling thread).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"
#include "executors/executor.h"

namespace flowmesh::worker {

struct ServerLink {
  std::string root_url;
  std::string api_token;
  std::chrono::milliseconds timeout{30000};
  std::string worker_id;
};

Result<executors::CredentialGrant> FetchCredentials(const ServerLink& link,
                                                    const std::string& task_id, int attempt,
                                                    const std::vector<std::string>& names,
                                                    bool default_endpoint);

}  // namespace flowmesh::worker
