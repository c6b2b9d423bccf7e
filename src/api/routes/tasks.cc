// Task routes: list (filters, view=status, limit), get, stop; logs in logs.cc.
#include <unordered_map>

#include "api/access.h"
#include "api/routes/common.h"
#include "api/routes/records.h"
#include "api/service.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

// Upstream tasks of `t` not DONE yet; `known` holds statuses already read (others are read).
std::vector<std::string> PendingDependencies(
    const state::TaskRecord& t, state::Store& store,
    std::unordered_map<std::string, state::TaskState>& known) {
  std::vector<std::string> out;
  if (t.status != state::TaskState::kPending) return out;  // dispatched: its inputs were ready
  for (const auto& dep : t.depends_on) {
    auto it = known.find(dep);
    if (it == known.end()) {
      auto rec = store.GetTask(dep);
      it = known.emplace(dep, rec.ok() ? rec->status : state::TaskState::kPending).first;
    }
    if (it->second != state::TaskState::kDone) out.push_back(dep);
  }
  return out;
}

}  // namespace

Response ApiService::ListTasks(Request& req) {
  auto query = ListQuery::Parse(req);
  if (!query.ok()) return StatusResponse(query.status());
  state::TaskFilter f;
  // Single-valued filters of stored columns narrow the read (the filter still applies).
  f.workflow_id = query->Stored("workflow_id");
  f.status = query->Stored("status");
  f.task_type = query->Stored("task_type");
  f.category = query->Stored("category");
  f.assigned_worker = query->Stored("assigned_worker");
  f.graph_node_name = query->Stored("graph_node_name");
  std::optional<std::set<std::string>> allowed;
  if (const auth::Principal* caller = Caller(req); caller && !caller->all_orgs) {
    f.org_id = caller->org_id;
    allowed = auth_->Accessible(*caller, auth::Kind::kTask, auth::Action::kRead);
  }
  auto list = store_->ListTasks(f);
  if (!list.ok()) return StatusResponse(list.status());
  std::unordered_map<std::string, state::TaskState> known;
  for (const auto& t : *list) known.emplace(t.task_id, t.status);
  std::vector<json> records;
  for (const auto& t : *list) {
    if (allowed && !allowed->count(t.task_id)) continue;
    records.push_back(TaskJson(t, PendingDependencies(t, *store_, known), query->view()));
  }
  return JsonResponse(200, query->Apply(std::move(records)));
}

Response ApiService::GetTask(Request& req) {
  auto t = AccessibleTask(req, req.params["id"], auth::Kind::kTask, auth::Action::kRead);
  if (!t.ok()) return StatusResponse(t.status());
  std::unordered_map<std::string, state::TaskState> known;
  return JsonResponse(200,
                      TaskJson(*t, PendingDependencies(*t, *store_, known), req.Query("view")));
}

// Asks the worker running the task to stop it (the published meaning: a running task
// only, 409 otherwise). The task ends CANCELLED and its dependents are cancelled with it.
void ApiService::StopTask(Request& req, std::shared_ptr<http::Responder> resp) {
  auto t = AccessibleTask(req, req.params["id"], auth::Kind::kTask, auth::Action::kCancel);
  if (!t.ok()) {
    resp->Send(StatusResponse(t.status()));
    return;
  }
  if (state::IsTerminal(t->status)) {  // answered here: no need to ask the scheduler's loop
    resp->Send(StatusResponse(Status(StatusCode::kFailedPrecondition,
                                     "task " + t->task_id + " is not running (" +
                                         std::string(state::TaskStateName(t->status)) + ")")));
    return;
  }
  scheduler_->StopTask(t->task_id, [resp](Result<json> result) { SendResult(resp, result); });
}

void ApiService::AddTaskRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/tasks";
  r.Add("GET", p, [this](Request& req) { return ListTasks(req); });
  r.Add("GET", p + "/{id}", [this](Request& req) { return GetTask(req); });
  r.AddAsync("POST", p + "/{id}/stop", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    StopTask(req, std::move(resp));
  });
  AddLogRoutes(r, "tasks");
}

}  // namespace flowmesh::api
