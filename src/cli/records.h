// Tolerant readers of the server's JSON records. The REST shapes are moving to the
// published SDK models (ISO-8601 timestamps, task-id lists instead of counts, `id` beside
// `worker_id`, task types under `capabilities`); every reader here accepts the old and the
// new shape so the CLI works against either server. Pure functions, unit-tested.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace flowmesh::cli {

// A count that is either a number or a list of ids (its length); 0 otherwise.
size_t CountOf(const nlohmann::json& value);

// Seconds since the epoch from a number or an ISO-8601 string ("2026-01-02T03:04:05Z",
// "…05.25+00:00", "…05+02:00", a space instead of 'T'); nullopt for anything else.
std::optional<double> EpochSeconds(const nlohmann::json& value);

// The first of `keys` present and not null, as display text ("" when none).
std::string FieldText(const nlohmann::json& record, std::initializer_list<const char*> keys);

// A worker's id: `worker_id` (ours) or `id` (the published model).
std::string WorkerId(const nlohmann::json& worker);

// The task types a worker offers: `task_types` (ours), `capabilities.supported_task_types`
// (the published model) or `info.task_types`; each type once, in the order first seen.
std::vector<std::string> WorkerTaskTypes(const nlohmann::json& worker);

// Worker records from GET /nodes/workers: a list (published) or an object of lists keyed by
// node id (ours before the API change).
nlohmann::json FlattenWorkerLists(const nlohmann::json& value);

// Repeated `--query key=value` (or "a=1&b=2", optionally with a leading '?') into pairs.
Result<std::vector<std::pair<std::string, std::string>>> ParseQueryFilters(
    const std::vector<std::string>& raw);

// Records whose `field` (a string, or a list with a member) equals one of `values`; all
// when `values` is empty. Repeated filters (--status A --status B, --task-id, --tag) are
// applied here: a server before the API change keeps only one value of a repeated key.
nlohmann::json FilterByAny(const nlohmann::json& records, const std::string& field,
                           const std::vector<std::string>& values);
inline nlohmann::json FilterByStatus(const nlohmann::json& records,
                                     const std::vector<std::string>& statuses) {
  return FilterByAny(records, "status", statuses);
}

// The last `limit` records (lists are oldest first); all when limit <= 0.
nlohmann::json KeepNewest(const nlohmann::json& records, int limit);

}  // namespace flowmesh::cli
