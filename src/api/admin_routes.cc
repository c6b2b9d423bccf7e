// The tenancy routes of the API: organisations, API keys and usage, plus the access and
// quota checks the resource routes call. Only built when authentication is on.
#include <fmt/format.h>

#include <ctime>
#include <map>

#include "api/access.h"
#include "api/service.h"
#include "common/log.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

Response JsonOut(int status, const json& body) {
  return Response::Json(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

// The operator: an admin of the default organisation (the key `stack up` creates). Only
// it manages other organisations.
bool IsOperator(const auth::Principal& p) {
  return p.org_id == state::kDefaultOrg && p.Allows(auth::Kind::kSystem, auth::Action::kAdmin);
}

Response QuotaRefusal(const std::string& message, int retry_after_s) {
  Response r = Response::Error(429, message);
  r.headers["Retry-After"] = std::to_string(retry_after_s);
  return r;
}

json KeyJson(const state::ApiKeyRecord& k) {
  return {{"key_id", k.key_id},         {"org_id", k.org_id},  {"principal_id", k.principal_id},
          {"name", k.name},             {"scopes", k.scopes},  {"prefix", k.prefix},
          {"created_at", k.created_at}, {"revoked", k.revoked_at != 0},
          {"revoked_at", k.revoked_at == 0 ? json(nullptr) : json(k.revoked_at)}};
}

json OrgJson(const state::OrgRecord& o) {
  json policy = json::parse(o.policy_json, nullptr, false);
  return {{"org_id", o.org_id},
          {"name", o.name},
          {"created_at", o.created_at},
          {"policy", policy.is_object() ? policy : json::object()}};
}

json UsageJson(const state::UsageRecord& u) {
  return {{"task_id", u.task_id},         {"workflow_id", u.workflow_id},
          {"org_id", u.org_id},           {"principal_id", u.principal_id},
          {"supplier_id", u.supplier_id}, {"worker_id", u.worker_id},
          {"attempt", u.attempt},         {"started_at", u.started_at},
          {"finished_at", u.finished_at}, {"runtime_sec", u.runtime_sec},
          {"hardware", u.hardware},       {"cost_per_hour", u.cost_per_hour},
          {"cost", u.cost},               {"status", u.status},
          {"prompt_tokens", u.prompt_tokens}, {"completion_tokens", u.completion_tokens}};
}

// Epoch seconds, or a UTC date / date-time ("2026-01-31", "2026-01-31T12:00:00Z").
Result<double> ParseTime(const std::string& text, const char* what) {
  if (text.empty()) return 0.0;
  try {
    size_t pos = 0;
    double v = std::stod(text, &pos);
    if (pos == text.size() && v >= 0) return v;
  } catch (...) {
  }
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec);
  if (n != 3 && n != 6) {
    return InvalidArgument(fmt::format(
        "query parameter '{}' must be epoch seconds or a UTC date (YYYY-MM-DD[THH:MM:SS]), got '{}'",
        what, text));
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<double>(timegm(&tm));
}

std::string Day(double epoch) {
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

// The "scopes" of a key request: a list of strings, or one comma-separated string.
Result<std::vector<std::string>> ScopesOf(const json& body) {
  std::vector<std::string> scopes;
  if (body.contains("scopes")) {
    if (body["scopes"].is_string()) {
      scopes = auth::ScopeSet::Split(body["scopes"].get<std::string>());
    } else if (body["scopes"].is_array()) {
      for (const auto& s : body["scopes"]) {
        if (!s.is_string()) return InvalidArgument("'scopes' must be a list of strings");
        scopes.push_back(s.get<std::string>());
      }
    } else {
      return InvalidArgument("'scopes' must be a list of strings");
    }
  }
  return scopes;
}

// The usage query's time window from ?from= and ?to= (see ParseTime).
Status ParseWindow(const Request& req, state::UsageQuery& q) {
  auto from = ParseTime(req.Query("from"), "from");
  if (!from.ok()) return from.status();
  auto to = ParseTime(req.Query("to"), "to");
  if (!to.ok()) return to.status();
  q.from = *from;
  q.to = *to;
  return Status::Ok();
}

// GET /api/v1/usage's body: the rows, and their totals per organisation and per day.
json UsageReport(const std::vector<state::UsageRecord>& rows) {
  json list = json::array();
  struct Sum {
    int64_t attempts = 0, prompt_tokens = 0, completion_tokens = 0;
    double runtime = 0, cost = 0;
    json Json() const {
      return {{"attempts", attempts}, {"runtime_sec", runtime}, {"cost", cost},
              {"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}};
    }
  };
  std::map<std::string, Sum> per_org;
  std::map<std::pair<std::string, std::string>, Sum> per_day;
  for (const auto& u : rows) {
    list.push_back(UsageJson(u));
    for (Sum* s : {&per_org[u.org_id], &per_day[{u.org_id, Day(u.started_at)}]}) {
      s->attempts += 1;
      s->runtime += u.runtime_sec;
      s->cost += u.cost;
      s->prompt_tokens += u.prompt_tokens;
      s->completion_tokens += u.completion_tokens;
    }
  }
  json totals = json::array(), days = json::array();
  for (const auto& [o, s] : per_org) {
    json row = s.Json();
    row["org_id"] = o;
    totals.push_back(std::move(row));
  }
  for (const auto& [k, s] : per_day) {
    json row = s.Json();
    row["org_id"] = k.first;
    row["day"] = k.second;
    days.push_back(std::move(row));
  }
  return json{{"rows", list}, {"totals", totals}, {"per_day", days}};
}

}  // namespace

Status ApiService::CheckAccess(const Request& req, const std::string& org_id, auth::Kind kind,
                               auth::Action action, const std::string& what,
                               const std::string& id) const {
  const auth::Principal* caller = Caller(req);
  if (caller == nullptr) return Status::Ok();
  // Supervisors on other nodes upload results for every organisation's tasks with a key of
  // the default organisation that holds node:write.
  bool fleet_upload = kind == auth::Kind::kResult && action == auth::Action::kWrite &&
                      caller->org_id == state::kDefaultOrg &&
                      caller->Allows(auth::Kind::kNode, auth::Action::kWrite);
  if (!caller->CanSee(org_id) && !fleet_upload) {
    return NotFound(fmt::format("{} {} not found", what, id));
  }
  return auth_->Require(*caller, kind, action, id);
}

std::optional<Response> ApiService::CheckSubmission(const Request& req,
                                                    const spec::WorkflowDef& def) const {
  const auth::Principal* caller = Caller(req);
  if (caller == nullptr) return std::nullopt;
  auth::OrgPolicy policy = auth_->PolicyOf(caller->org_id);
  if (policy.max_request_bytes > 0 &&
      static_cast<int64_t>(req.body.size()) > policy.max_request_bytes) {
    return QuotaRefusal(fmt::format("quota exceeded: max_request_bytes (the request has {} bytes; "
                                    "organisation {} allows {})",
                                    req.body.size(), caller->org_id, policy.max_request_bytes),
                        60);
  }
  if (policy.max_queued_tasks > 0) {
    state::TaskFilter f;
    f.org_id = caller->org_id;
    f.status = "PENDING";
    auto queued = store_->CountTasks(f);
    if (!queued.ok()) return Response::Error(queued.status());
    int64_t after = *queued + static_cast<int64_t>(def.tasks.size());
    if (after > policy.max_queued_tasks) {
      return QuotaRefusal(
          fmt::format("quota exceeded: max_queued_tasks (organisation {} has {} queued task(s); "
                      "this workflow adds {}; the limit is {})",
                      caller->org_id, *queued, def.tasks.size(), policy.max_queued_tasks),
          5);
    }
  }
  if (const auth::PluginHost* plugins = auth_->plugins()) {
    json doc = {{"name", def.name}, {"tasks", json::array()}};
    for (const auto& t : def.tasks) {
      doc["tasks"].push_back({{"name", t.node_name}, {"task_type", t.task_type}});
    }
    Status s = plugins->CheckSubmission(caller->principal_id, caller->org_id, doc.dump());
    if (!s.ok()) return Response::Error(s);
  }
  return std::nullopt;
}

void ApiService::AddAdminRoutes(http::Router& r) {
  const std::string p = "/api/v1/admin";

  r.Add("GET", p + "/orgs", [this](Request& req) {
    const auth::Principal& caller = *Caller(req);
    json out = json::array();
    for (const auto& o : auth_->ListOrgs()) {
      if (IsOperator(caller) || o.org_id == caller.org_id) out.push_back(OrgJson(o));
    }
    return JsonOut(200, out);
  });

  r.Add("POST", p + "/orgs", [this](Request& req) {
    if (!IsOperator(*Caller(req))) {
      return Response::Error(403, "only an admin of the default organisation creates organisations");
    }
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("name") || !body["name"].is_string()) {
      return Response::Error(422, "body must be {\"name\": \"<org name>\", \"policy\": {…}}");
    }
    auto policy = auth::OrgPolicy::FromJson(body.value("policy", json::object()));
    if (!policy.ok()) return Response::Error(policy.status());
    auto org = auth_->CreateOrg(body["name"].get<std::string>(), *policy);
    if (!org.ok()) return Response::Error(org.status());
    return JsonOut(201, OrgJson(*org));
  });

  r.Add("PATCH", p + "/orgs/{org}", [this](Request& req) {
    if (!IsOperator(*Caller(req))) {
      return Response::Error(403, "only an admin of the default organisation changes policies");
    }
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) return Response::Error(422, "body must be a JSON object of policy fields");
    json changes = body.contains("policy") ? body["policy"] : body;
    auto org = auth_->UpdateOrgPolicy(req.params["org"], changes);
    if (!org.ok()) return Response::Error(org.status());
    return JsonOut(200, OrgJson(*org));
  });

  r.Add("GET", p + "/keys", [this](Request& req) {
    const auth::Principal& caller = *Caller(req);
    std::string org = req.Query("org");
    if (!org.empty()) {
      auto found = auth_->FindOrg(org);
      if (!found || (!IsOperator(caller) && found->org_id != caller.org_id)) {
        return Response::Error(404, "organisation " + org + " not found");
      }
      org = found->org_id;
    } else if (!IsOperator(caller)) {
      org = caller.org_id;
    }
    json out = json::array();
    for (const auto& k : auth_->ListKeys(org)) out.push_back(KeyJson(k));
    return JsonOut(200, out);
  });

  r.Add("POST", p + "/keys", [this](Request& req) {
    const auth::Principal& caller = *Caller(req);
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) {
      return Response::Error(422, "body must be {\"org\", \"scopes\": [..], \"name\", \"principal_id\"}");
    }
    std::string org = body.value("org", caller.org_id);
    auto found = auth_->FindOrg(org);
    if (!found || (!IsOperator(caller) && found->org_id != caller.org_id)) {
      return Response::Error(404, "organisation " + org + " not found");
    }
    auto scopes = ScopesOf(body);
    if (!scopes.ok()) return Response::Error(422, scopes.status().message());
    auto key = auth_->CreateKey(caller, found->org_id, body.value("principal_id", ""),
                                body.value("name", ""), *scopes);
    if (!key.ok()) return Response::Error(key.status());
    FM_LOG_INFO("API key {} created for organisation {}", key->record.key_id, key->record.org_id);
    json out = KeyJson(key->record);
    out["key"] = key->key;
    out["org"] = found->name;
    return JsonOut(201, out);
  });

  auto revoke = [this](Request& req) {
    const auth::Principal& caller = *Caller(req);
    std::string id = req.params["id"];
    bool visible = false;
    for (const auto& k : auth_->ListKeys(IsOperator(caller) ? "" : caller.org_id)) {
      visible |= k.key_id == id;
    }
    if (!visible) return Response::Error(404, "API key " + id + " not found");
    Status s = auth_->RevokeKey(id);
    if (!s.ok()) return Response::Error(s);
    FM_LOG_INFO("API key {} revoked", id);
    return JsonOut(200, json{{"ok", true}, {"key_id", id}, {"revoked", true}});
  };
  r.Add("POST", p + "/keys/{id}/revoke", revoke);
  r.Add("DELETE", p + "/keys/{id}", revoke);

  r.Add("GET", "/api/v1/usage", [this](Request& req) {
    const auth::Principal& caller = *Caller(req);
    state::UsageQuery q;
    std::string org = req.Query("org");
    if (org.empty()) {
      q.org_id = caller.org_id;
    } else if (org == "*" || org == "all") {
      if (!IsOperator(caller)) return Response::Error(403, "only the operator sees every organisation's usage");
    } else {
      auto found = auth_->FindOrg(org);
      if (!found || (!IsOperator(caller) && found->org_id != caller.org_id)) {
        return Response::Error(404, "organisation " + org + " not found");
      }
      q.org_id = found->org_id;
    }
    if (Status window = ParseWindow(req, q); !window.ok()) return Response::Error(window);
    auto rows = store_->ListUsage(q);
    if (!rows.ok()) return Response::Error(rows.status());
    return JsonOut(200, UsageReport(*rows));
  });
}

}  // namespace flowmesh::api
