// The public JSON of each record kind of /api/v1, in the shape of the published FlowMesh
// 0.1.x models (flowmesh-sdk TaskInfo, Workflow, WorkerInfo, Node, LogEvent …) plus our own
// extra fields where those models ignore extras. Timestamps the published models type as
// strings are ISO-8601 (UTC); their epoch-seconds twins end in `_ts`.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "state/records.h"

namespace flowmesh::api {

// `pending_dependencies`: the task's upstream tasks not DONE yet.
// view "status": without the spec and source (TaskStatusView).
nlohmann::json TaskJson(const state::TaskRecord& t,
                        const std::vector<std::string>& pending_dependencies,
                        const std::string& view = "");

// Task-id lists per state (`dispatched_tasks` includes CANCELLING) and their counts;
// view "status": the counts without the lists (WorkflowStatusView).
nlohmann::json WorkflowJson(const state::WorkflowRecord& w,
                            const std::vector<state::TaskRecord>& tasks,
                            const std::string& view = "");

// A worker of Scheduler::WorkersSnapshot() as WorkerInfo; `node_aliases` maps node ids.
nlohmann::json WorkerJson(const nlohmann::json& snapshot,
                          const std::map<std::string, std::string>& node_aliases);
// A worker as the node-scoped NodeWorkerInfo (alias/name, provider, status).
nlohmann::json NodeWorkerJson(const nlohmann::json& worker);

nlohmann::json NodeJson(const state::NodeRecord& n, const std::vector<std::string>& worker_ids);

// A stored event as the published LogEvent: ISO `ts` (epoch in `ts_epoch`), `level`,
// `stream`, `source` and a one-line `message`; our fields (type, status, payload …) stay.
nlohmann::json PublicEvent(const std::string& event_json);

}  // namespace flowmesh::api
