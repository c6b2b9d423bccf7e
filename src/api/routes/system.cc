// System routes: health, version, metrics (JSON and Prometheus text), storage GC, and
// the workflow JSON Schema.
#include <cstdlib>

#include "api/routes/common.h"
#include "api/service.h"
#include "api/workflow_schema.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

json ApiService::MetricsJson() const {
  json m = scheduler_->Metrics();
  m["store_transactions_total"] = store_->transactions_committed();
  m["store_operations_total"] = store_->operations_committed();
  m["sse_subscribers"] = hub_->subscribers();
  int alive = 0;
  for (const auto& w : scheduler_->WorkersSnapshot()) alive += w.value("status", "") != "DOWN";
  m["workers_alive"] = alive;
  if (extra_metrics_) m.update(extra_metrics_());
  return m;
}

void ApiService::AddSystemRoutes(http::Router& r) {
  r.Add("GET", "/healthz", [this](Request&) {
    std::string node = scheduler_->local_node_id();
    // {ok} is the published shape; status, version and local_node are ours.
    return JsonResponse(200, json{{"ok", true},
                                  {"status", "ok"},
                                  {"version", config_.version},
                                  {"local_node", node.empty() ? json(nullptr) : json(node)}});
  });
  r.Add("GET", std::string(kPrefix) + "/schema/workflow", [](Request&) {
    Response resp = Response::Json(200, WorkflowJsonSchema());
    resp.content_type = "application/schema+json";
    return resp;
  });
  r.Add("GET", std::string(kPrefix) + "/system/version", [this](Request&) {
    return JsonResponse(200,
                        json{{"version", config_.version}, {"api", "v1"}, {"name", "flowmesh"}});
  });
  // The JSON map, plus the registry's metrics under their Prometheus names (flowmesh_…;
  // labelled ones as lists of {labels…, value}).
  r.Add("GET", std::string(kPrefix) + "/system/metrics", [this](Request&) {
    json m = MetricsJson();
    m.update(scheduler_->metrics_registry()->ToJson());
    return JsonResponse(200, m);
  });
  // One storage maintenance pass now: retention purge and garbage collection.
  // `?grace_s=` (default 3600) protects blobs written or released recently.
  r.Add("POST", std::string(kPrefix) + "/system/gc", [this](Request& req) {
    if (!maintenance_) return Response::Error(503, "storage maintenance is not available");
    std::string g = req.Query("grace_s");
    double grace = 3600;
    if (!g.empty()) {
      char* end = nullptr;
      grace = std::strtod(g.c_str(), &end);
      if (end == g.c_str() || *end != '\0' || grace < 0) {
        return Response::Error(422, "query parameter 'grace_s' must be a number of seconds >= 0");
      }
    }
    return JsonResponse(200, maintenance_(grace));
  });
  r.Add("GET", "/metrics", [this](Request&) {
    // The registry (counters, gauges, histograms with labels; docs/operations.md), then the
    // plain numbers of the JSON map that the registry does not carry, as flowmesh_<key>.
    const metrics::Registry* registry = scheduler_->metrics_registry();
    std::string out = registry->RenderText();
    const json plain = MetricsJson();
    // items() refers into its json: iterating over a temporary's items() would dangle.
    for (const auto& [key, value] : plain.items()) {
      if (!value.is_number()) continue;
      std::string name = "flowmesh_" + key;
      if (registry->Has(name)) continue;
      bool counter = key.size() > 6 && key.compare(key.size() - 6, 6, "_total") == 0;
      out += "# HELP " + name + " " + key + " of /api/v1/system/metrics\n";
      out += "# TYPE " + name + (counter ? " counter\n" : " gauge\n");
      out += name + " " + value.dump() + "\n";
    }
    Response resp;
    resp.content_type = "text/plain; version=0.0.4";
    resp.body = std::move(out);
    return resp;
  });
}

}  // namespace flowmesh::api
