// The worker's side of result files: uploads an attempt's output files to the root
// server's content store (POST /api/v1/results/{task_id}/files, multipart, with the
// worker's service token), in requests of at most `max_request_bytes` so each stays under
// the server's body limit. A file larger than one request, one that is not a regular file
// any more, or one whose name cannot travel as a multipart filename is reported as not
// stored (with why), not uploaded. Thread-safe (one keep-alive client per calling thread).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"
#include "executors/executor.h"
#include "worker/credential_client.h"

namespace flowmesh::worker {

inline constexpr size_t kDefaultFilesRequestBytes = size_t{12} << 20;

Result<std::vector<executors::StoredFile>> UploadFiles(
    const ServerLink& link, const std::string& task_id,
    const std::vector<executors::OutputFile>& files,
    size_t max_request_bytes = kDefaultFilesRequestBytes);

}  // namespace flowmesh::worker
