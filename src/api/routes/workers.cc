// Worker routes: list/get (WorkerInfo), cordons by worker id or by (node alias, worker
// alias). Cordons act on registered workers only: a cordon of an alias no worker has yet
// answers 404 (the published server also remembers such cordons; we do not yet).
#include <algorithm>
#include <mutex>
#include <set>

#include "api/access.h"
#include "api/routes/common.h"
#include "api/routes/records.h"
#include "api/service.h"
#include "common/thread_annotations.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

std::map<std::string, std::string> ApiService::NodeAliases() const {
  std::map<std::string, std::string> out;
  auto nodes = store_->ListNodes();
  if (nodes.ok()) {
    for (const auto& n : *nodes) out[n.node_id] = n.alias;
  }
  return out;
}

std::vector<json> ApiService::WorkerRecords() const {
  auto aliases = NodeAliases();
  std::vector<json> out;
  for (const auto& w : scheduler_->WorkersSnapshot()) out.push_back(WorkerJson(w, aliases));
  return out;
}

Response ApiService::ListWorkers(Request& req) {
  auto query = ListQuery::Parse(req);
  if (!query.ok()) return StatusResponse(query.status());
  return JsonResponse(200, query->Apply(WorkerRecords()));
}

Response ApiService::GetWorker(Request& req) {
  for (auto& w : WorkerRecords()) {
    if (w.value("id", "") == req.params["id"]) return JsonResponse(200, w);
  }
  return Response::Error(404, "worker " + req.params["id"] + " not found");
}

// One entry per cordoned (node alias, alias), as the published server keys cordons.
Response ApiService::ListCordons(Request&) {
  json out = json::array();
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& w : WorkerRecords()) {
    if (w.value("cordoned", false) &&
        seen.emplace(w.value("node_alias", ""), w.value("alias", "")).second) {
      out.push_back(
          {{"node_alias", w["node_alias"]}, {"alias", w["alias"]}, {"worker_id", w["id"]}});
    }
  }
  return JsonResponse(200, out);
}

// Cordons (or uncordons) the worker `worker_id`, or every worker named `alias` on the node
// named `node_alias` (alias, name or id; a restarted worker's earlier, DOWN, record shares
// them), answering WorkerCordonResult once the scheduler has applied all of them.
void ApiService::SetCordon(const std::string& worker_id, const std::string& node_alias,
                           const std::string& alias, bool cordon,
                           std::shared_ptr<http::Responder> resp) {
  std::vector<json> found;
  for (auto& w : WorkerRecords()) {
    bool match =
        !worker_id.empty()
            ? w.value("id", "") == worker_id
            : (w.value("node_alias", "") == node_alias || w.value("node_id", "") == node_alias) &&
                  (w.value("alias", "") == alias || w.value("name", "") == alias);
    if (match) found.push_back(std::move(w));
  }
  if (found.empty()) {
    resp->Send(Response::Error(404, worker_id.empty()
                                        ? "no worker " + alias + " on node " + node_alias
                                        : "worker " + worker_id + " not found"));
    return;
  }
  // The live worker first, so `worker_id` (ours) names it.
  std::stable_partition(found.begin(), found.end(),
                        [](const json& w) { return w.value("status", "") != "DOWN"; });
  json ids = json::array();
  bool changed = false;
  for (const auto& w : found) {
    ids.push_back(w["id"]);
    changed |= w.value("cordoned", false) != cordon;
  }
  json result = {{"node_alias", found[0]["node_alias"]},
                 {"alias", found[0]["alias"]},
                 {"cordoned", cordon},
                 {"changed", changed},
                 {"worker_ids", ids},
                 {"worker_id", found[0]["id"]},
                 {"ok", true}};
  struct Pending {
    Mutex mu;
    size_t left FM_GUARDED_BY(mu) = 0;
    Status error FM_GUARDED_BY(mu);
  };
  auto pending = std::make_shared<Pending>();
  {
    MutexLock lock(pending->mu);  // not yet shared: taken for the analysis
    pending->left = found.size();
  }
  for (const auto& w : found) {
    scheduler_->SetCordon(w.value("id", ""), cordon, [resp, result, pending](Result<json> res) {
      MutexLock lock(pending->mu);
      if (!res.ok() && pending->error.ok()) pending->error = res.status();
      if (--pending->left > 0) return;
      resp->Send(pending->error.ok() ? JsonResponse(200, result) : StatusResponse(pending->error));
    });
  }
}

void ApiService::AddWorkerRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/workers";
  r.Add("GET", p, [this](Request& req) { return ListWorkers(req); });
  // Both spellings of the published cordon list (0.1.x servers changed it).
  r.Add("GET", p + "/cordoned", [this](Request& req) { return ListCordons(req); });
  r.Add("GET", p + "/cordons", [this](Request& req) { return ListCordons(req); });
  r.AddAsync("DELETE", p + "/cordoned/{node_alias}/{alias}",
             [this](Request& req, std::shared_ptr<http::Responder> resp) {
               SetCordon("", req.params["node_alias"], req.params["alias"], false, std::move(resp));
             });
  r.Add("GET", p + "/{id}", [this](Request& req) { return GetWorker(req); });
  for (bool cordon : {true, false}) {
    std::string verb = cordon ? "cordon" : "uncordon";
    r.AddAsync("POST", p + "/{id}/" + verb,
               [this, cordon](Request& req, std::shared_ptr<http::Responder> resp) {
                 SetCordon(req.params["id"], "", "", cordon, std::move(resp));
               });
    // Body {worker_id} or {node_alias, alias}.
    r.AddAsync(
        "POST", p + "/" + verb,
        [this, cordon](Request& req, std::shared_ptr<http::Responder> resp) {
          json body = json::parse(req.body, nullptr, false);
          if (!body.is_object()) {
            resp->Send(
                Response::Error(422, "expected a JSON object {worker_id} or {node_alias, alias}"));
            return;
          }
          std::string worker_id = TextField(body, "worker_id");
          std::string node_alias = TextField(body, "node_alias");
          std::string alias = TextField(body, "alias");
          if (worker_id.empty() && (node_alias.empty() || alias.empty())) {
            resp->Send(Response::Error(422, "give 'worker_id', or both 'node_alias' and 'alias'"));
            return;
          }
          SetCordon(worker_id, node_alias, alias, cordon, std::move(resp));
        });
  }
}

}  // namespace flowmesh::api
