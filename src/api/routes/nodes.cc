// Node routes (published Node / NodeWorkerInfo shapes), supervisor registration, worker
// start/stop on a node, and the local node's worker processes (/stack/workers).
#include "api/access.h"
#include "api/routes/common.h"
#include "api/routes/records.h"
#include "api/service.h"
#include "common/ids.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

void SendNoContent(const std::shared_ptr<http::Responder>& resp, const Result<json>& res) {
  if (!res.ok()) {
    resp->Send(StatusResponse(res.status()));
    return;
  }
  Response ok;
  ok.status = 204;
  resp->Send(ok);
}

// Liveness from the scheduler (status UP/DOWN, last heartbeat, address) over the stored
// record; a node it does not know (registered by an older server) is DOWN.
json WithLiveness(json record, const json& live) {
  std::string id = record.value("node_id", "");
  auto it = live.find(id);
  if (it == live.end()) {
    record["status"] = "DOWN";
    return record;
  }
  record["status"] = it->value("status", "DOWN");
  double last_seen = it->value("last_seen", 0.0);
  if (last_seen > record.value("last_seen_ts", 0.0)) {
    record["last_seen_ts"] = last_seen;
    record["last_seen"] = IsoTime(last_seen);
  }
  record["address"] = it->value("address", "");
  return record;
}

// The host part of "host:port" or "[v6]:port".
std::string HostOf(const std::string& address) {
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  auto colon = address.rfind(':');
  return colon == std::string::npos || address.find(':') != colon ? address
                                                                  : address.substr(0, colon);
}

}  // namespace

Response ApiService::ListNodes(Request& req) {
  auto query = ListQuery::Parse(req);
  if (!query.ok()) return StatusResponse(query.status());
  auto nodes = store_->ListNodes();
  if (!nodes.ok()) return StatusResponse(nodes.status());
  auto workers = scheduler_->WorkersSnapshot();
  json live = scheduler_->NodesSnapshot();
  std::vector<json> records;
  for (const auto& n : *nodes) {
    std::vector<std::string> ids;
    for (const auto& w : workers) {
      if (w.value("node_id", "") == n.node_id) ids.push_back(w.value("worker_id", ""));
    }
    records.push_back(WithLiveness(NodeJson(n, ids), live));
  }
  return JsonResponse(200, query->Apply(std::move(records)));
}

Response ApiService::GetNode(Request& req) {
  auto n = store_->GetNode(req.params["id"]);
  if (!n.ok()) return StatusResponse(n.status());
  std::vector<std::string> ids;
  for (const auto& w : scheduler_->WorkersSnapshot()) {
    if (w.value("node_id", "") == n->node_id) ids.push_back(w.value("worker_id", ""));
  }
  return JsonResponse(200, WithLiveness(NodeJson(*n, ids), scheduler_->NodesSnapshot()));
}

// Workers of one node (`node_id`), or of every node (""), as NodeWorkerInfo.
Response ApiService::ListNodeWorkers(Request& req, const std::string& node_id) {
  auto query = ListQuery::Parse(req);
  if (!query.ok()) return StatusResponse(query.status());
  if (!node_id.empty()) {
    auto n = store_->GetNode(node_id);
    if (!n.ok()) return StatusResponse(n.status());
  }
  std::vector<json> records;
  for (const auto& w : WorkerRecords()) {
    if (node_id.empty() || w.value("node_id", "") == node_id) records.push_back(NodeWorkerJson(w));
  }
  return JsonResponse(200, query->Apply(std::move(records)));
}

void ApiService::RegisterNode(Request& req, std::shared_ptr<http::Responder> resp) {
  json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    resp->Send(Response::Error(422, "node registration must be a JSON object"));
    return;
  }
  // The address the node reached us from, unless it names one (a node behind NAT may).
  if (!body.contains("address") || !body["address"].is_string() ||
      body["address"].get<std::string>().empty()) {
    body["address"] = HostOf(req.remote_address);
  }
  const auth::PluginHost* plugins = auth_ ? auth_->plugins() : nullptr;
  scheduler_->RegisterNode(std::move(body), [resp, plugins](Result<json> res) {
    if (res.ok() && plugins) plugins->Register("node", res->value("node_id", ""), "", "");
    SendResult(resp, res, 201);
  });
}

// Registers a worker that a supervisor manages without the gRPC protocol (the published
// contract's route); native supervisors announce theirs on the bus instead.
void ApiService::RegisterNodeWorker(Request& req, std::shared_ptr<http::Responder> resp) {
  auto node = store_->GetNode(req.params["id"]);
  if (!node.ok()) {
    resp->Send(StatusResponse(node.status()));
    return;
  }
  json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    resp->Send(Response::Error(422, "worker registration must be a JSON object of worker info"));
    return;
  }
  json info = body.contains("info") && body["info"].is_object() ? body["info"] : body;
  if (!info.contains("task_types") || !info["task_types"].is_array()) {
    resp->Send(Response::Error(
        422, "worker registration needs 'task_types' (a list of task types it runs)"));
    return;
  }
  std::string worker_id = body.contains("worker_id") && body["worker_id"].is_string()
                              ? body["worker_id"].get<std::string>()
                              : "";
  if (worker_id.rfind("wkr-", 0) != 0) worker_id = NewId("wkr");
  json up = {
      {"kind", "worker_up"}, {"node_id", node->node_id}, {"worker_id", worker_id}, {"info", info}};
  bus::Message m;
  m.payload = up.dump();
  if (const auth::PluginHost* plugins = auth_ ? auth_->plugins() : nullptr) {
    plugins->Register("worker", worker_id, "", "");
  }
  scheduler_->ApplyBusMessagesAsync({m}, [resp, worker_id] {
    resp->Send(JsonResponse(201, json{{"ok", true}, {"worker_id", worker_id}}));
  });
}

// Starts or stops the worker `name` on any registered node (its supervisor does it); a
// worker the node has not run before is started with the default config (cpu).
void ApiService::NodeWorkerCommand(Request& req, std::shared_ptr<http::Responder> resp,
                                   bool start) {
  scheduler_->NodeWorkerCommand(req.params["id"], start ? "start_worker" : "stop_worker",
                                req.params["name"],
                                [resp](Result<json> res) { SendNoContent(resp, res); });
}

void ApiService::StartStackWorker(Request& req, std::shared_ptr<http::Responder> resp) {
  json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    resp->Send(
        Response::Error(422, "worker init config must be a JSON object {provider, worker_config}"));
    return;
  }
  std::string provider = body.contains("provider") && body["provider"].is_string()
                             ? body["provider"].get<std::string>()
                             : "native";
  if (provider != "native") {
    resp->Send(Response::Error(
        422, "provider '" + provider + "' is not available on this node (supported: native)"));
    return;
  }
  json cfg = body.value("worker_config", json::object());
  if (!cfg.is_object()) {
    resp->Send(Response::Error(422, "worker_config must be an object"));
    return;
  }
  std::string type = cfg.contains("worker_type") && cfg["worker_type"].is_string()
                         ? cfg["worker_type"].get<std::string>()
                         : "cpu";
  if (type != "cpu" && type != "gpu") {
    resp->Send(
        Response::Error(422, "worker_config.worker_type must be cpu or gpu, got '" + type + "'"));
    return;
  }
  std::string name =
      body.contains("name") && body["name"].is_string() ? body["name"].get<std::string>() : "";
  scheduler_->StackWorkerCommand("start_worker", name, body,
                                 [resp](Result<json> res) { SendResult(resp, res, 201); });
}

void ApiService::StackWorkerVerb(Request& req, std::shared_ptr<http::Responder> resp,
                                 const std::string& kind) {
  std::string name = req.params["name"];
  bool known = false;
  for (const auto& w : scheduler_->StackWorkersSnapshot()) known |= w.value("name", "") == name;
  if (!known) {
    resp->Send(Response::Error(404, "stack worker " + name + " not found"));
    return;
  }
  scheduler_->StackWorkerCommand(kind, name, json::object(),
                                 [resp](Result<json> res) { SendResult(resp, res); });
}

void ApiService::AddNodeRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/nodes";
  r.Add("GET", p, [this](Request& req) { return ListNodes(req); });
  r.Add("GET", p + "/workers", [this](Request& req) { return ListNodeWorkers(req, ""); });
  r.AddAsync("POST", p + "/register", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    RegisterNode(req, std::move(resp));
  });
  r.AddAsync("POST", p + "/{id}/workers/register",
             [this](Request& req, std::shared_ptr<http::Responder> resp) {
               RegisterNodeWorker(req, std::move(resp));
             });
  r.Add("GET", p + "/{id}", [this](Request& req) { return GetNode(req); });
  r.Add("GET", p + "/{id}/workers",
        [this](Request& req) { return ListNodeWorkers(req, req.params["id"]); });
  for (bool start : {true, false}) {
    r.AddAsync("POST", p + "/{id}/workers/{name}/" + (start ? "start" : "stop"),
               [this, start](Request& req, std::shared_ptr<http::Responder> resp) {
                 NodeWorkerCommand(req, std::move(resp), start);
               });
  }
}

void ApiService::AddStackRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/stack/workers";
  r.Add("GET", p,
        [this](Request&) { return JsonResponse(200, scheduler_->StackWorkersSnapshot()); });
  r.AddAsync("POST", p, [this](Request& req, std::shared_ptr<http::Responder> resp) {
    StartStackWorker(req, std::move(resp));
  });
  r.Add("GET", p + "/{name}", [this](Request& req) {
    for (const auto& w : scheduler_->StackWorkersSnapshot()) {
      if (w.value("name", "") == req.params["name"]) return JsonResponse(200, w);
    }
    return Response::Error(404, "stack worker " + req.params["name"] + " not found");
  });
  for (const auto& [method, suffix, kind] :
       {std::tuple{"DELETE", "", "remove_worker"}, std::tuple{"POST", "/start", "start_worker"},
        std::tuple{"POST", "/stop", "stop_worker"}}) {
    std::string k = kind;
    r.AddAsync(method, p + "/{name}" + suffix,
               [this, k](Request& req, std::shared_ptr<http::Responder> resp) {
                 StackWorkerVerb(req, std::move(resp), k);
               });
  }
}

}  // namespace flowmesh::api
