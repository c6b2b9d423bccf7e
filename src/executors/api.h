// The `api` executor: one HTTP request per item of `data` (or one request without data)
// to spec.api.url — or to the server's default OpenAI-compatible endpoint when the url is
// omitted — with `{{prompt}}` and `{{credential:NAME}}` placeholders, bounded concurrency
// per endpoint (shared by every task on this worker), retries with backoff and jitter on
// 408/429/5xx honouring Retry-After, timeouts, SSE streaming into the task log, and token
// usage summed into the result. Credentials are fetched from the server just before the
// first request and never logged or returned (the result carries the url as written).
//
// Runs on a TaskRunner pool thread and blocks; starts up to `concurrency` request threads.
#pragma once

#include "executors/executor.h"

namespace flowmesh::executors {

class ApiExecutor : public Executor {
 public:
  Result<nlohmann::json> Run(TaskContext& ctx) override;
};

}  // namespace flowmesh::executors
