// A Qdrant collection searched over its REST API: POST /collections/{c}/points/query
// (Qdrant >= 1.10), falling back to /points/search when that route is not there. Requests go
// through the api executor's client (retries on 429/5xx and connection errors, cancellation,
// https), with the `api-key` header when one is given.
#pragma once

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "executors/executor.h"

namespace flowmesh::rag {

// `filter` in Qdrant's form: a filter that already is (must / should / must_not) is kept;
// ours ({field: value | {$in|$ne|$eq|$gt|$gte|$lt|$lte: ...}}) is translated into `must`
// (and `must_not` for $ne) conditions. InvalidArgument for an operator neither knows.
Result<nlohmann::json> QdrantFilter(const nlohmann::json& filter);

struct QdrantTarget {
  std::string url;  // http(s)://host:port, no trailing slash
  std::string collection;
  std::string api_key;  // credentials already resolved; "" = none
  double timeout_s = 30;
};

struct QdrantHit {
  nlohmann::json id;  // Qdrant's point id (an integer or a UUID string)
  float score = 0;
  nlohmann::json payload;
};

// Errors: NotFound (no such collection), FailedPrecondition (Qdrant refused the request),
// Unavailable (unreachable or 5xx after retries), Cancelled.
Result<std::vector<QdrantHit>> QdrantSearch(const QdrantTarget& target,
                                            const std::vector<float>& vector, size_t limit,
                                            const nlohmann::json& qdrant_filter,
                                            std::optional<float> score_threshold,
                                            const std::atomic<bool>& cancelled);

}  // namespace flowmesh::rag
