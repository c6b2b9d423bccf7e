// Traces of a workflow, built from the store: lineage (per task: inputs and outputs by
// digest, fingerprint, reuse, attempts, workers, timing), spans (queueing, attempts,
// reuse), assets (every digest produced or consumed), and an analysis (end-to-end
// breakdown, critical path, per-task timing, lineage edges).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/status.h"
#include "state/store.h"

namespace flowmesh::api {

struct WorkflowTrace {
  nlohmann::json workflow;                // {workflow_id, name, status, submitted_at, updated_at}
  std::vector<nlohmann::json> lineage;    // one object per task, in task order
  std::vector<nlohmann::json> spans;
  std::vector<nlohmann::json> assets;
};

Result<WorkflowTrace> BuildTrace(state::Store& store, const state::WorkflowRecord& workflow);
nlohmann::json AnalyzeTrace(const WorkflowTrace& trace);
std::string ToNdjson(const std::vector<nlohmann::json>& rows);

}  // namespace flowmesh::api
