// Trace routes: NDJSON lineage/spans/assets of a workflow, and its analysis. The analysis
// route answers the published ProfileSummary (tasks stand in for data ids: each task's
// result is one asset version); `?view=flowmesh` answers our fuller analysis instead
// (AnalyzeTrace: breakdown, critical path with queue/run split, per-task timing).
#include "api/traces.h"

#include <algorithm>
#include <limits>

#include "api/access.h"
#include "api/routes/common.h"
#include "api/service.h"
#include "common/json_util.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

double Num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// The published EventSummary: per event type, parallel lists of count and durations.
json EventSummary(const std::vector<std::pair<std::string, std::vector<double>>>& kinds) {
  json out = {{"event_type", json::array()},    {"count", json::array()},
              {"total_seconds", json::array()}, {"avg_seconds", json::array()},
              {"min_seconds", json::array()},   {"max_seconds", json::array()}};
  for (const auto& [kind, values] : kinds) {
    if (values.empty()) continue;
    double total = 0, lo = std::numeric_limits<double>::max(), hi = 0;
    for (double v : values) {
      total += v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    out["event_type"].push_back(kind);
    out["count"].push_back(values.size());
    out["total_seconds"].push_back(total);
    out["avg_seconds"].push_back(total / static_cast<double>(values.size()));
    out["min_seconds"].push_back(lo);
    out["max_seconds"].push_back(hi);
  }
  return out;
}

struct Timing {
  double queue = 0, run = 0;
};

json ProfileSummary(const WorkflowTrace& trace, const json& analysis) {
  std::map<std::string, Timing> timing;
  for (const auto& t : analysis.value("tasks", json::array())) {
    timing[t.value("task_id", "")] = {Num(t, "queue_s"), Num(t, "run_s")};
  }
  std::map<std::string, double> finished;
  for (const auto& l : trace.lineage) finished[l.value("task_id", "")] = Num(l, "finished_ts");
  json data_ids = json::array(), assets = json::array(), lineage = json::array(),
       per = json::array();
  std::vector<double> queues, runs;
  for (const auto& l : trace.lineage) {
    std::string id = l.value("task_id", "");
    data_ids.push_back(id);
    const json result = l.value("outputs", json::object()).value("result", json(nullptr));
    if (result.is_object()) {
      assets.push_back({{"asset_guid", result.value("digest", "")},
                        {"latest_data_id", id},
                        {"latest_version", 1},
                        {"user_id", trace.workflow.value("owner_id", "")},
                        {"versions", 1},
                        {"created_at", IsoTime(Num(l, "finished_ts"))}});
    }
    json parents = json::array();
    std::string blocking;
    for (const auto& in : l.value("inputs", json::array())) {
      std::string parent = in.is_object() ? in.value("task_id", "") : "";
      if (parent.empty()) continue;
      parents.push_back(parent);
      lineage.push_back({{"data_id", id},
                         {"source_data_id", parent},
                         {"created_at", IsoTime(Num(l, "ready_at"))}});
      if (blocking.empty() || finished[parent] > finished[blocking]) blocking = parent;
    }
    Timing t = timing[id];
    double start = Num(l, "started_ts") > 0 ? Num(l, "started_ts") : Num(l, "dispatched_ts");
    double end = Num(l, "finished_ts");
    if (start > 0 && end > 0) {
      queues.push_back(t.queue);
      runs.push_back(t.run);
      per.push_back(
          {{"data_id", id},
           {"start_time", IsoTime(start)},
           {"end_time", IsoTime(end)},
           {"duration_seconds", std::max(0.0, end - start)},
           {"queuing_delay_seconds", t.queue},
           {"parent_data_ids", parents},
           {"blocking_parent_data_id", blocking.empty() ? json(nullptr) : json(blocking)}});
    }
  }
  json no_network = EventSummary({});
  json critical = nullptr;
  const json cp = analysis.value("critical_path", json::object());
  json path = json::array(), path_ids = json::array(), active = json::array(), wait = json::array();
  std::vector<double> path_queue, path_run;
  for (const auto& step : cp.value("tasks", json::array())) {
    path.push_back(step.value("task_id", ""));
    path_ids.push_back(step.value("task_id", ""));
    active.push_back(Num(step, "run_s"));
    wait.push_back(Num(step, "queue_s"));
    path_queue.push_back(Num(step, "queue_s"));
    path_run.push_back(Num(step, "run_s"));
  }
  if (!path.empty()) {
    critical = {{"path", path},
                {"critical_path_seconds", Num(cp, "duration_s")},
                {"active_wait_breakdown",
                 {{"data_id", path_ids}, {"active_seconds", active}, {"wait_seconds", wait}}},
                {"hardware_summary", EventSummary({{"queue", path_queue}, {"run", path_run}})},
                {"network_summary", no_network},
                {"total_network_seconds", 0.0}};
  }
  return {{"workflow_id", trace.workflow.value("workflow_id", "")},
          {"event_count", trace.spans.size()},
          {"data_ids", data_ids},
          {"assets", assets},
          {"lineage", lineage},
          {"e2e_breakdown",
           {{"hardware_summary", EventSummary({{"queue", queues}, {"run", runs}})},
            {"network_summary", no_network},
            {"workflow_duration_seconds", Num(analysis, "makespan_s")},
            {"total_network_seconds", 0.0}}},
          {"per_data_id", per},
          {"critical_path", critical}};
}

}  // namespace

// Another organisation's workflow answers 404 exactly as a missing one.
Result<WorkflowTrace> ApiService::TraceOf(const Request& req, const std::string& id) const {
  FM_ASSIGN_OR_RETURN(state::WorkflowRecord w, store_->GetWorkflow(id));
  FM_RETURN_IF_ERROR(CheckAccess(req, w.org_id, auth::Kind::kWorkflow, auth::Action::kRead,
                                 "workflow", w.workflow_id));
  return BuildTrace(*store_, w);
}

void ApiService::AddTraceRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/traces/workflows";
  r.Add("GET", p + "/analyze/{id}", [this](Request& req) {
    auto trace = TraceOf(req, req.params["id"]);
    if (!trace.ok()) return StatusResponse(trace.status());
    json analysis = AnalyzeTrace(*trace);
    if (req.Query("view") == "flowmesh") return JsonResponse(200, analysis);
    return JsonResponse(200, ProfileSummary(*trace, analysis));
  });
  for (const char* kind : {"lineage", "spans", "assets"}) {
    std::string k = kind;
    r.Add("GET", p + "/{id}/" + k, [this, k](Request& req) {
      auto trace = TraceOf(req, req.params["id"]);
      if (!trace.ok()) return StatusResponse(trace.status());
      Response resp;
      resp.content_type = "application/x-ndjson";
      resp.body = ToNdjson(k == "lineage" ? trace->lineage
                           : k == "spans" ? trace->spans
                                          : trace->assets);
      return resp;
    });
  }
}

}  // namespace flowmesh::api
