#include "api/routes/secrets.h"

#include "api/access.h"
#include "api/routes/common.h"
#include "common/log.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

std::string OrgOf(const Request& req) {
  const auth::Principal* p = Caller(req);
  return p == nullptr ? state::kDefaultOrg : p->org_id;
}

// The default endpoint's Authorization value: the secret in the task's organisation,
// else the one an administrator set in the default organisation.
std::string DefaultAuthorization(const SecretRouteDeps& d, const std::string& org) {
  if (d.defaults.credential.empty()) return "";
  for (const std::string& o : {org, std::string(state::kDefaultOrg)}) {
    auto value = d.secrets->Get(o, d.defaults.credential);
    if (value.ok()) return "Bearer " + *value;
  }
  return "";
}

Response Resolve(const SecretRouteDeps& d, Request& req) {
  const auth::Principal* p = Caller(req);
  // The fleet: the service token, or a default-organisation key of a remote supervisor
  // (node:write + result:write, as for result uploads; see docs/security.md).
  bool fleet = p != nullptr && (p->all_orgs || (p->org_id == state::kDefaultOrg &&
                                                p->Allows(auth::Kind::kNode, auth::Action::kWrite) &&
                                                p->Allows(auth::Kind::kResult, auth::Action::kWrite)));
  if (d.auth_enabled && !fleet) {
    return Response::Error(403, "only the fleet's service token may resolve credentials");
  }
  json body = ParseOr(req.body, json());
  if (!body.is_object()) return Response::Error(422, "expected {task_id, attempt, names}");
  std::string task_id = TextField(body, "task_id");
  auto task = d.store->GetTask(task_id);
  if (!task.ok()) return Response::Error(404, "no task " + task_id);
  int attempt = body.value("attempt", 0);
  // The dispatch reaches the worker through the bus while the store's writer commits it:
  // an attempt the store does not show yet is "try again" (409), not a refusal.
  if (task->attempts < attempt) {
    return Response::Error(409, "task " + task_id + " attempt " + std::to_string(attempt) +
                                    " is not recorded yet");
  }
  if (task->status != state::TaskState::kDispatched || task->attempts != attempt) {
    return Response::Error(403, "task " + task_id + " attempt " + std::to_string(attempt) +
                                    " is not running");
  }
  std::string worker = TextField(body, "worker_id");
  if (!worker.empty() && !task->assigned_worker.empty() && worker != task->assigned_worker) {
    return Response::Error(403, "task " + task_id + " is not assigned to " + worker);
  }
  json values = json::object();
  std::vector<std::string> missing;
  for (const auto& n : body.value("names", json::array())) {
    if (!n.is_string()) continue;
    std::string name = n.get<std::string>();
    if (!SpecNamesCredential(task->spec_json, name)) {
      return Response::Error(403, "task " + task_id + " does not name credential '" + name + "'");
    }
    auto value = d.secrets->Get(task->org_id, name);
    if (!value.ok()) {
      missing.push_back(name);
      continue;
    }
    values[name] = std::move(value).value();
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "'" : ", '") + m + "'";
    return Response::Error(404, "no credential " + list + " in the task's organisation "
                                    "(flowmesh secret set NAME)");
  }
  json out = {{"values", std::move(values)}};
  json spec = ParseOr(task->spec_json, json::object());
  bool url_omitted = !spec.contains("api") || !spec["api"].is_object() ||
                     !spec["api"].contains("url") || spec["api"]["url"].is_null();
  if (body.value("default_endpoint", false) && url_omitted) {
    out["default_endpoint"] = {{"url", d.defaults.url},
                               {"authorization", DefaultAuthorization(d, task->org_id)}};
  }
  FM_LOG_INFO("credentials: {} granted to {} attempt {}", out["values"].size(), task_id, attempt);
  return JsonResponse(200, out);
}

}  // namespace

bool SpecNamesCredential(const std::string& spec_json, const std::string& name) {
  for (size_t at = spec_json.find("{{"); at != std::string::npos;
       at = spec_json.find("{{", at + 2)) {
    size_t i = spec_json.find_first_not_of(' ', at + 2);
    if (i == std::string::npos || spec_json.compare(i, 11, "credential:") != 0) continue;
    i += 11;
    if (spec_json.compare(i, name.size(), name) != 0) continue;
    i = spec_json.find_first_not_of(' ', i + name.size());
    if (i != std::string::npos && spec_json.compare(i, 2, "}}") == 0) return true;
  }
  return false;
}

void AddSecretRoutes(http::Router& r, const SecretRouteDeps& deps) {
  const std::string base = std::string(kPrefix) + "/secrets";
  r.Add("GET", base, [deps](Request& req) {
    auto list = deps.secrets->List(OrgOf(req));
    if (!list.ok()) return StatusResponse(list.status());
    json names = json::array();
    for (const auto& s : *list) {
      names.push_back({{"name", s.name},
                       {"created_at", IsoTime(s.created_at)},
                       {"updated_at", IsoTime(s.updated_at)}});
    }
    return JsonResponse(200, {{"secrets", names}});
  });
  r.Add("PUT", base + "/{name}", [deps](Request& req) {
    json body = ParseOr(req.body, json());
    if (!body.is_object() || !body.contains("value") || !body["value"].is_string()) {
      return Response::Error(422, "expected {\"value\": \"…\"}");
    }
    std::string name = req.params["name"];
    Status s = deps.secrets->Set(OrgOf(req), name, body["value"].get<std::string>());
    if (!s.ok()) return StatusResponse(s);
    FM_LOG_INFO("secret '{}' set in {}", name, OrgOf(req));
    return JsonResponse(200, {{"name", name}, {"status", "stored"}});
  });
  r.Add("DELETE", base + "/{name}", [deps](Request& req) {
    std::string name = req.params["name"];
    Status s = deps.secrets->Delete(OrgOf(req), name);
    if (!s.ok()) return StatusResponse(s);
    FM_LOG_INFO("secret '{}' deleted in {}", name, OrgOf(req));
    return JsonResponse(200, {{"name", name}, {"status", "deleted"}});
  });
  r.Add("POST", base + "/resolve", [deps](Request& req) { return Resolve(deps, req); });
}

}  // namespace flowmesh::api
