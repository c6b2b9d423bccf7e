// Workflow routes: submit, validate, list, get (view=status), cancel; logs in logs.cc.
#include <map>
#include <variant>

#include "api/access.h"
#include "api/routes/common.h"
#include "api/routes/records.h"
#include "api/service.h"
#include "spec/workflow.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

// Each task's `resources.estimatedLoad` as submitted (1 when absent), by graph node name.
std::map<std::string, json> EstimatedLoads(const spec::WorkflowDef& def) {
  std::map<std::string, json> loads;
  for (const auto& t : def.tasks) {
    json load = 1;
    if (auto res = t.spec.find("resources"); res != t.spec.end() && res->is_object()) {
      if (auto l = res->find("estimatedLoad"); l != res->end()) load = *l;
    }
    loads[t.node_name] = std::move(load);
  }
  return loads;
}

// The 201 body of an accepted submission (the published shape).
json SubmitReplyJson(const scheduler::SubmitReply& reply, const std::map<std::string, json>& loads) {
  json tasks = json::array();
  for (const auto& t : reply.tasks) {
    auto load = loads.find(t.graph_node_name);
    tasks.push_back({{"task_id", t.task_id},
                     {"status", state::TaskStateName(t.status)},
                     {"assigned_worker", t.assigned_worker.empty() ? json(nullptr) : json(t.assigned_worker)},
                     {"topic", nullptr},
                     {"waiting_on", t.waiting_on},
                     {"depends_on", t.depends_on},
                     {"attempts", t.attempts},
                     {"max_attempts", t.max_attempts},
                     {"graph_node_name", t.graph_node_name},
                     {"load", load != loads.end() ? load->second : json(1)}});
  }
  return {{"ok", true},
          {"workflow_id", reply.workflow_id},
          {"count", reply.tasks.size()},
          {"tasks", std::move(tasks)}};
}

// The workflow text of a submission: text/plain YAML/JSON, {"yaml": "…"}, or a JSON string.
// The wrapper forms are recognised whatever the Content-Type says (curl -d sends
// form-urlencoded): neither is a valid workflow document itself, so nothing is lost.
Result<std::string> WorkflowText(const Request& req, spec::Format format) {
  if (format == spec::Format::kN8n) return req.body;
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return req.body;  // let the YAML parser report where it is broken
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("yaml")) {
    if (!j["yaml"].is_string())
      return InvalidArgument("field 'yaml' must be a string holding the workflow");
    return j["yaml"].get<std::string>();
  }
  return req.body;
}

Result<spec::Format> FormatOf(const Request& req) {
  std::string f = req.Header("Workflow-Format");
  if (f.empty()) f = req.Query("format");
  if (f.empty() || f == "native") return spec::Format::kNative;
  if (f == "n8n") return spec::Format::kN8n;
  return InvalidArgument("unknown Workflow-Format '" + f + "' (expected native or n8n)");
}

json SpecErrorList(const std::vector<spec::SpecError>& errors) {
  json list = json::array();
  for (const auto& e : errors) {
    list.push_back(
        {{"path", e.path}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
  }
  return list;
}

Response SpecErrorResponse(const std::vector<spec::SpecError>& errors) {
  std::string detail;
  for (const auto& e : errors) {
    if (!detail.empty()) detail += "; ";
    detail += e.ToString();
  }
  if (detail.empty()) detail = "invalid workflow";
  return JsonResponse(422, json{{"detail", detail}, {"errors", SpecErrorList(errors)}});
}

struct Parsed {
  spec::WorkflowDef def;
  std::string text;
  spec::Format format;
};

// Parses a submission; on failure returns the 422/400 response to send.
std::variant<Parsed, Response> ParseSubmission(const Request& req) {
  auto format = FormatOf(req);
  if (!format.ok()) return StatusResponse(format.status());
  auto text = WorkflowText(req, *format);
  if (!text.ok()) return StatusResponse(text.status());
  if (text->empty())
    return Response::Error(422, "empty request body: expected a workflow document");
  std::vector<spec::SpecError> errors;
  auto def = spec::ParseWorkflow(*text, *format, &errors);
  if (!def.ok()) {
    if (errors.empty()) errors.push_back(spec::SpecError{"", 0, 0, def.status().message()});
    return SpecErrorResponse(errors);
  }
  return Parsed{std::move(def).value(), std::move(text).value(), *format};
}

}  // namespace

Result<json> ApiService::WorkflowRecordJson(const state::WorkflowRecord& w,
                                            const std::string& view) const {
  state::TaskFilter tf;
  tf.workflow_id = w.workflow_id;
  FM_ASSIGN_OR_RETURN(std::vector<state::TaskRecord> tasks, store_->ListTasks(tf));
  return WorkflowJson(w, tasks, view);
}

void ApiService::SubmitWorkflow(Request& req, std::shared_ptr<http::Responder> resp) {
  auto parsed = ParseSubmission(req);
  if (auto* bad = std::get_if<Response>(&parsed)) {
    resp->Send(std::move(*bad));
    return;
  }
  Parsed& ok = std::get<Parsed>(parsed);
  json warnings = SpecErrorList(ok.def.warnings);
  std::map<std::string, json> loads = EstimatedLoads(ok.def);
  std::string format = ok.format == spec::Format::kN8n ? "n8n" : "native";
  SubmitDef(req, std::move(ok.def), std::move(ok.text), format,
            [resp, warnings, loads = std::move(loads)](Result<scheduler::SubmitReply> reply) {
              if (!reply.ok()) {
                SendResult(resp, reply.status(), 201);
                return;
              }
              json body = SubmitReplyJson(*reply, loads);
              body["warnings"] = warnings;
              SendResult(resp, body, 201);
            },
            [resp](Response refused) { resp->Send(std::move(refused)); });
}

void ApiService::SubmitDef(Request& req, spec::WorkflowDef def, std::string text,
                           const std::string& format, scheduler::SubmitCallback done,
                           std::function<void(Response)> refused) {
  if (auto refusal = CheckSubmission(req, def)) {
    refused(std::move(*refusal));
    return;
  }
  scheduler::SubmitRequest sub;
  sub.def = std::move(def);
  sub.source_text = std::move(text);
  sub.format = format;
  const auth::PluginHost* plugins = nullptr;
  if (const auth::Principal* caller = Caller(req)) {
    sub.org_id = caller->org_id;
    sub.owner_id = caller->principal_id;
    plugins = auth_->plugins();
  }
  std::string org = sub.org_id, owner = sub.owner_id;
  scheduler_->Submit(std::move(sub), [plugins, org, owner, done = std::move(done)](
                                          Result<scheduler::SubmitReply> reply) {
    if (reply.ok() && plugins) {
      plugins->Register("workflow", reply->workflow_id, org, owner);
      for (const auto& t : reply->tasks) plugins->Register("task", t.task_id, org, owner);
    }
    done(std::move(reply));
  });
}

Response ApiService::ValidateWorkflow(Request& req) {
  auto parsed = ParseSubmission(req);
  if (auto* bad = std::get_if<Response>(&parsed)) return std::move(*bad);
  const auto& def = std::get<Parsed>(parsed).def;
  json tasks = json::array();
  for (const auto& t : def.tasks) {
    // No id is assigned before submission: the graph node name stands in for it.
    tasks.push_back({{"task_id", t.node_name},
                     {"task_name", t.task_name},
                     {"graph_node_name", t.node_name},
                     {"task_type", t.task_type},
                     {"depends_on", t.depends_on}});
  }
  return JsonResponse(200, json{{"ok", true},
                                {"name", def.name},
                                {"count", tasks.size()},
                                {"tasks", tasks},
                                {"warnings", SpecErrorList(def.warnings)}});
}

Response ApiService::ListWorkflows(Request& req) {
  auto query = ListQuery::Parse(req);
  if (!query.ok()) return StatusResponse(query.status());
  state::WorkflowFilter f;
  // Single-valued filters of stored columns narrow the read (the filter still applies).
  f.status = query->Stored("status");
  f.name = query->Stored("name");
  std::string only = query->Single("workflow_id");
  std::optional<std::set<std::string>> allowed;
  if (const auth::Principal* caller = Caller(req); caller && !caller->all_orgs) {
    f.org_id = caller->org_id;
    allowed = auth_->Accessible(*caller, auth::Kind::kWorkflow, auth::Action::kRead);
  }
  auto list = store_->ListWorkflows(f);
  if (!list.ok()) return StatusResponse(list.status());
  std::vector<json> records;
  for (const auto& w : *list) {
    if (allowed && !allowed->count(w.workflow_id)) continue;
    if (!only.empty() && w.workflow_id != only) continue;
    auto rec = WorkflowRecordJson(w, query->view());
    if (!rec.ok()) return StatusResponse(rec.status());
    records.push_back(std::move(rec).value());
  }
  return JsonResponse(200, query->Apply(std::move(records)));
}

Response ApiService::GetWorkflow(Request& req) {
  std::string view = req.Query("view");
  auto w = store_->GetWorkflow(req.params["id"]);
  if (!w.ok()) return StatusResponse(w.status());
  Status access = CheckAccess(req, w->org_id, auth::Kind::kWorkflow, auth::Action::kRead,
                              "workflow", w->workflow_id);
  if (!access.ok()) return StatusResponse(access);
  auto rec = WorkflowRecordJson(*w, view);
  if (!rec.ok()) return StatusResponse(rec.status());
  return JsonResponse(200, *rec);
}

// Answers with the workflow record (the published contract), plus how many tasks this
// call cancelled at once and how many it asked their workers to interrupt.
void ApiService::CancelWorkflow(Request& req, std::shared_ptr<http::Responder> resp) {
  auto w = store_->GetWorkflow(req.params["id"]);
  Status access = w.ok() ? CheckAccess(req, w->org_id, auth::Kind::kWorkflow, auth::Action::kCancel,
                                       "workflow", w->workflow_id)
                         : w.status();
  if (!access.ok()) {
    resp->Send(StatusResponse(access));
    return;
  }
  scheduler_->CancelWorkflow(
      req.params["id"], [this, resp, id = req.params["id"]](Result<json> result) {
        if (!result.ok()) {
          resp->Send(StatusResponse(result.status()));
          return;
        }
        auto w = store_->GetWorkflow(id);
        if (!w.ok()) {
          resp->Send(StatusResponse(w.status()));
          return;
        }
        auto rec = WorkflowRecordJson(*w, "");
        if (!rec.ok()) {
          resp->Send(StatusResponse(rec.status()));
          return;
        }
        (*rec)["ok"] = true;
        (*rec)["status"] = result->value("status", (*rec)["status"].get<std::string>());
        (*rec)["cancelled"] = result->value("cancelled", 0);
        (*rec)["cancelling"] = result->value("cancelling", 0);
        resp->Send(JsonResponse(200, *rec));
      });
}

void ApiService::AddWorkflowRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/workflows";
  r.AddAsync("POST", p, [this](Request& req, std::shared_ptr<http::Responder> resp) {
    SubmitWorkflow(req, std::move(resp));
  });
  r.Add("POST", p + "/validate", [this](Request& req) { return ValidateWorkflow(req); });
  r.Add("GET", p, [this](Request& req) { return ListWorkflows(req); });
  r.Add("GET", p + "/{id}", [this](Request& req) { return GetWorkflow(req); });
  r.AddAsync("POST", p + "/{id}/cancel",
             [this](Request& req, std::shared_ptr<http::Responder> resp) {
               CancelWorkflow(req, std::move(resp));
             });
  AddLogRoutes(r, "workflows");
}

}  // namespace flowmesh::api
