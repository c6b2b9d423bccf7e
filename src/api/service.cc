#include "api/service.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <sstream>
#include <variant>

#include "api/access.h"
#include "api/archive.h"
#include "api/traces.h"
#include "api/workflow_schema.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "spec/workflow.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr const char* kPrefix = "/api/v1";

json NullIfZero(double v) { return v == 0 ? json(nullptr) : json(v); }
json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json ParseOr(const std::string& text, json fallback) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

json TaskJson(const state::TaskRecord& t) {
  json latest = ParseOr(t.latest_update_json, json::object());
  if (latest.is_object()) {
    for (auto it = latest.begin(); it != latest.end();) {
      if (!it.key().empty() && it.key()[0] == '_') {
        it = latest.erase(it);
      } else {
        ++it;
      }
    }
  }
  return {{"task_id", t.task_id},
          {"workflow_id", t.workflow_id},
          {"owner_id", t.owner_id},
          {"org_id", t.org_id},
          {"supplier_id", NullIfEmpty(t.supplier_id)},
          {"task_name", t.task_name},
          {"task_type", t.task_type},
          {"category", t.category},
          {"status", state::TaskStateName(t.status)},
          {"assigned_worker", NullIfEmpty(t.assigned_worker)},
          {"submitted_at", t.submitted_at},
          {"dispatched_ts", NullIfZero(t.dispatched_ts)},
          {"started_ts", NullIfZero(t.started_ts)},
          {"finished_ts", NullIfZero(t.finished_ts)},
          {"attempts", t.attempts},
          {"max_attempts", t.max_attempts},
          {"failed_workers", t.failed_workers},
          {"last_error", NullIfEmpty(t.last_error)},
          {"error", NullIfEmpty(t.error)},
          {"graph_node_name", t.graph_node_name},
          {"depends_on", t.depends_on},
          {"dependents", t.dependents},
          {"merged_children", json::array()},
          {"merged_parent_id", NullIfEmpty(t.merged_parent_id)},
          {"merge_key", NullIfEmpty(t.merge_key)},
          {"completed", t.status == state::TaskState::kDone},
          {"failed", t.status == state::TaskState::kFailed},
          {"result_digest", NullIfEmpty(t.result_digest)},
          {"latest_update", latest},
          {"usages", ParseOr(t.usages_json, json::array())},
          {"spec", ParseOr(t.spec_json, json::object())}};
}

json WorkflowJson(const state::WorkflowRecord& w, const std::vector<state::TaskRecord>& tasks) {
  int dispatched = 0, completed = 0, failed = 0, cancelled = 0, pending = 0;
  for (const auto& t : tasks) {
    switch (t.status) {
      case state::TaskState::kDispatched:
      case state::TaskState::kCancelling: ++dispatched; break;
      case state::TaskState::kDone: ++completed; break;
      case state::TaskState::kFailed: ++failed; break;
      case state::TaskState::kCancelled: ++cancelled; break;
      case state::TaskState::kPending: ++pending; break;
    }
  }
  return {{"workflow_id", w.workflow_id},
          {"name", w.name},
          {"owner_id", w.owner_id},
          {"org_id", w.org_id},
          {"format", w.format},
          {"task_ids", w.task_ids},
          {"submitted_at", w.submitted_at},
          {"updated_at", w.updated_at},
          {"status", w.status},
          {"total_tasks", tasks.size()},
          {"pending_tasks", pending},
          {"dispatched_tasks", dispatched},
          {"completed_tasks", completed},
          {"failed_tasks", failed},
          {"cancelled_tasks", cancelled}};
}

// Any query parameter naming a record field filters on it.
bool Matches(const json& record, const std::map<std::string, std::string>& query,
             const std::set<std::string>& ignore) {
  for (const auto& [key, want] : query) {
    if (ignore.count(key)) continue;
    auto it = record.find(key);
    if (it == record.end()) continue;  // not a field of this record kind: not a filter
    const json& v = *it;
    if (v.is_string()) {
      if (v.get<std::string>() != want) return false;
    } else if (v.is_boolean()) {
      if ((v.get<bool>() ? "true" : "false") != want) return false;
    } else if (v.is_array()) {
      bool found = false;
      for (const auto& e : v) {
        if ((e.is_string() && e.get<std::string>() == want) || (!e.is_string() && e.dump() == want)) found = true;
      }
      if (!found) return false;
    } else if (v.is_null()) {
      if (!want.empty() && want != "null") return false;
    } else if (v.dump() != want) {
      return false;
    }
  }
  return true;
}

Response JsonResponse(int status, const json& body) {
  return Response::Json(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

Response StatusResponse(const Status& s) { return Response::Error(s); }

void SendResult(const std::shared_ptr<http::Responder>& r, const Result<json>& result,
                int ok_status = 200) {
  if (result.ok()) {
    r->Send(JsonResponse(ok_status, *result));
  } else {
    r->Send(StatusResponse(result.status()));
  }
}

int ParseInt(const std::string& s, int fallback) {
  if (s.empty()) return fallback;
  try {
    return std::stoi(s);
  } catch (...) {
    return fallback;
  }
}

Result<int64_t> ParseCursor(const std::string& s, const char* what) {
  if (s.empty()) return int64_t{0};
  try {
    size_t pos = 0;
    long long v = std::stoll(s, &pos);
    if (pos != s.size() || v < 0) throw std::invalid_argument(s);
    return static_cast<int64_t>(v);
  } catch (...) {
    return InvalidArgument(std::string("query parameter '") + what + "' must be a non-negative integer cursor, got '" + s + "'");
  }
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
    if (!j["yaml"].is_string()) return InvalidArgument("field 'yaml' must be a string holding the workflow");
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

Response SpecErrorResponse(const std::vector<spec::SpecError>& errors) {
  json list = json::array();
  std::string detail;
  for (const auto& e : errors) {
    list.push_back(e.ToJson());
    if (!detail.empty()) detail += "; ";
    detail += e.ToString();
  }
  if (detail.empty()) detail = "invalid workflow";
  return JsonResponse(422, json{{"detail", detail}, {"errors", list}});
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
  if (text->empty()) return Response::Error(422, "empty request body: expected a workflow document");
  std::vector<spec::SpecError> errors;
  auto def = spec::ParseWorkflow(*text, *format, &errors);
  if (!def.ok()) {
    if (errors.empty()) errors.push_back(spec::SpecError{"", 0, 0, def.status().message()});
    return SpecErrorResponse(errors);
  }
  return Parsed{std::move(def).value(), std::move(text).value(), *format};
}

}  // namespace

ApiService::ApiService(ApiConfig config, state::Store* store, cas::ContentStore* blobs,
                       scheduler::Scheduler* scheduler, scheduler::EventHub* hub)
    : config_(std::move(config)), store_(store), blobs_(blobs), scheduler_(scheduler), hub_(hub) {}

std::shared_ptr<http::Router> ApiService::MakeRouter() {
  auto r = std::make_shared<http::Router>();
  AddSystemRoutes(*r);
  AddWorkflowRoutes(*r);
  AddTaskRoutes(*r);
  AddResultRoutes(*r);
  AddWorkerRoutes(*r);
  AddTraceRoutes(*r);
  if (!auth_) return r;
  AddAdminRoutes(*r);
  return GuardRouter(*r, auth_);
}

// ---------------------------------------------------------------- traces

void ApiService::AddTraceRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/traces/workflows";
  // Another organisation's workflow answers 404 exactly as a missing one.
  auto build = [this](Request& req, const std::string& id) -> Result<WorkflowTrace> {
    FM_ASSIGN_OR_RETURN(state::WorkflowRecord w, store_->GetWorkflow(id));
    FM_RETURN_IF_ERROR(CheckAccess(req, w.org_id, auth::Kind::kWorkflow, auth::Action::kRead,
                                   "workflow", w.workflow_id));
    return BuildTrace(*store_, w);
  };
  auto ndjson = [](const std::vector<json>& rows) {
    Response resp;
    resp.content_type = "application/x-ndjson";
    resp.body = ToNdjson(rows);
    return resp;
  };
  r.Add("GET", p + "/analyze/{id}", [build](Request& req) {
    auto trace = build(req, req.params["id"]);
    if (!trace.ok()) return StatusResponse(trace.status());
    return JsonResponse(200, AnalyzeTrace(*trace));
  });
  r.Add("GET", p + "/{id}/lineage", [build, ndjson](Request& req) {
    auto trace = build(req, req.params["id"]);
    if (!trace.ok()) return StatusResponse(trace.status());
    return ndjson(trace->lineage);
  });
  r.Add("GET", p + "/{id}/spans", [build, ndjson](Request& req) {
    auto trace = build(req, req.params["id"]);
    if (!trace.ok()) return StatusResponse(trace.status());
    return ndjson(trace->spans);
  });
  r.Add("GET", p + "/{id}/assets", [build, ndjson](Request& req) {
    auto trace = build(req, req.params["id"]);
    if (!trace.ok()) return StatusResponse(trace.status());
    return ndjson(trace->assets);
  });
}

// ---------------------------------------------------------------- workflows

void ApiService::AddWorkflowRoutes(http::Router& r) {
  std::string p = kPrefix;
  r.AddAsync("POST", p + "/workflows", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    auto parsed = ParseSubmission(req);
    if (auto* bad = std::get_if<Response>(&parsed)) {
      resp->Send(std::move(*bad));
      return;
    }
    Parsed& ok = std::get<Parsed>(parsed);
    if (auto refused = CheckSubmission(req, ok.def)) {
      resp->Send(std::move(*refused));
      return;
    }
    scheduler::SubmitRequest sub;
    sub.def = std::move(ok.def);
    sub.source_text = std::move(ok.text);
    sub.format = ok.format == spec::Format::kN8n ? "n8n" : "native";
    const auth::PluginHost* plugins = nullptr;
    if (const auth::Principal* caller = Caller(req)) {
      sub.org_id = caller->org_id;
      sub.owner_id = caller->principal_id;
      plugins = auth_->plugins();
    }
    std::string org = sub.org_id, owner = sub.owner_id;
    scheduler_->Submit(std::move(sub), [resp, plugins, org, owner](Result<json> result) {
      if (result.ok() && plugins) {
        plugins->Register("workflow", result->value("workflow_id", ""), org, owner);
        for (const auto& t : result->value("tasks", json::array())) {
          plugins->Register("task", t.value("task_id", ""), org, owner);
        }
      }
      SendResult(resp, result, 201);
    });
  });

  r.Add("POST", p + "/workflows/validate", [](Request& req) {
    auto parsed = ParseSubmission(req);
    if (auto* bad = std::get_if<Response>(&parsed)) return std::move(*bad);
    const auto& def = std::get<Parsed>(parsed).def;
    json tasks = json::array();
    for (const auto& t : def.tasks) {
      tasks.push_back({{"task_id", nullptr},
                       {"task_name", t.task_name},
                       {"graph_node_name", t.node_name},
                       {"task_type", t.task_type},
                       {"depends_on", t.depends_on}});
    }
    return JsonResponse(200, json{{"ok", true}, {"name", def.name}, {"count", tasks.size()}, {"tasks", tasks}});
  });

  r.Add("GET", p + "/workflows", [this](Request& req) {
    state::WorkflowFilter f;
    f.status = req.Query("status");
    f.name = req.Query("name");
    f.limit = ParseInt(req.Query("limit"), 0);
    std::optional<std::set<std::string>> allowed;
    if (const auth::Principal* caller = Caller(req); caller && !caller->all_orgs) {
      f.org_id = caller->org_id;
      allowed = auth_->Accessible(*caller, auth::Kind::kWorkflow, auth::Action::kRead);
    }
    auto list = store_->ListWorkflows(f);
    if (!list.ok()) return StatusResponse(list.status());
    json out = json::array();
    for (const auto& w : *list) {
      if (allowed && !allowed->count(w.workflow_id)) continue;
      state::TaskFilter tf;
      tf.workflow_id = w.workflow_id;
      auto tasks = store_->ListTasks(tf);
      if (!tasks.ok()) return StatusResponse(tasks.status());
      json rec = WorkflowJson(w, *tasks);
      if (Matches(rec, req.query, {"limit"})) out.push_back(std::move(rec));
    }
    return JsonResponse(200, out);
  });

  r.Add("GET", p + "/workflows/{id}", [this](Request& req) {
    auto w = store_->GetWorkflow(req.params["id"]);
    if (!w.ok()) return StatusResponse(w.status());
    Status access = CheckAccess(req, w->org_id, auth::Kind::kWorkflow, auth::Action::kRead,
                                "workflow", w->workflow_id);
    if (!access.ok()) return StatusResponse(access);
    state::TaskFilter tf;
    tf.workflow_id = w->workflow_id;
    auto tasks = store_->ListTasks(tf);
    if (!tasks.ok()) return StatusResponse(tasks.status());
    return JsonResponse(200, WorkflowJson(*w, *tasks));
  });

  r.AddAsync("POST", p + "/workflows/{id}/cancel", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    if (auth_) {
      auto w = store_->GetWorkflow(req.params["id"]);
      Status access = w.ok() ? CheckAccess(req, w->org_id, auth::Kind::kWorkflow,
                                           auth::Action::kCancel, "workflow", w->workflow_id)
                             : w.status();
      if (!access.ok()) {
        resp->Send(StatusResponse(access));
        return;
      }
    }
    scheduler_->CancelWorkflow(req.params["id"], [resp](Result<json> result) { SendResult(resp, result); });
  });

  AddLogRoutes(r, "workflows");
}

// ---------------------------------------------------------------- logs (shared by workflows and tasks)

void ApiService::AddLogRoutes(http::Router& r, const std::string& kind) {
  std::string p = std::string(kPrefix) + "/" + kind + "/{id}";
  bool is_task = kind == "tasks";
  int default_limit = is_task ? 200 : 500;

  // Missing, or of another organisation: both NotFound.
  auto exists = [this, is_task](const Request& req, const std::string& id) -> Status {
    if (is_task) {
      auto t = store_->GetTask(id);
      if (!t.ok()) return t.status();
      return CheckAccess(req, t->org_id, auth::Kind::kTask, auth::Action::kRead, "task", id);
    }
    auto w = store_->GetWorkflow(id);
    if (!w.ok()) return w.status();
    return CheckAccess(req, w->org_id, auth::Kind::kWorkflow, auth::Action::kRead, "workflow", id);
  };

  r.Add("GET", p + "/logs", [this, is_task, default_limit, exists](Request& req) {
    std::string id = req.params["id"];
    Status s = exists(req, id);
    if (!s.ok()) return StatusResponse(s);
    int limit = ParseInt(req.Query("limit"), default_limit);
    if (limit < 1 || limit > 10000) return Response::Error(422, "query parameter 'limit' must be between 1 and 10000");
    auto after = ParseCursor(req.Query("after"), "after");
    if (!after.ok()) return StatusResponse(after.status());
    auto before = ParseCursor(req.Query("before"), "before");
    if (!before.ok()) return StatusResponse(before.status());
    state::EventQuery q;
    (is_task ? q.task_id : q.workflow_id) = id;
    q.after = *after;
    q.before = *before;
    q.limit = limit;
    q.newest_first = q.before > 0 && q.after == 0;
    auto events = store_->ReadEvents(q);
    if (!events.ok()) return StatusResponse(events.status());
    json entries = json::array();
    for (const auto& e : *events) {
      entries.push_back({{"cursor", e.cursor}, {"event", ParseOr(e.json, json::object())}});
    }
    json next = events->empty() ? json(q.after > 0 ? json(q.after) : json(nullptr)) : json(events->back().cursor);
    json prev = events->empty() ? json(nullptr) : json(events->front().cursor);
    return JsonResponse(200, json{{"entries", entries}, {"next_cursor", next}, {"prev_cursor", prev}});
  });

  auto precheck = [exists](Request& req) -> std::optional<Response> {
    Status s = exists(req, req.params["id"]);
    if (!s.ok()) return StatusResponse(s);
    std::string c = req.Header("Last-Event-ID");
    if (c.empty()) c = req.Query("cursor");
    auto cursor = ParseCursor(c, "cursor");
    if (!cursor.ok()) return StatusResponse(cursor.status());
    return std::nullopt;
  };

  r.AddSse(p + "/logs/stream", [this, is_task](Request& req, std::shared_ptr<http::SseStream> stream) {
    std::string id = req.params["id"];
    std::string c = req.Header("Last-Event-ID");
    if (c.empty()) c = req.Query("cursor");
    int64_t cursor = ParseCursor(c, "cursor").ok() ? *ParseCursor(c, "cursor") : 0;

    // Live events are buffered until the backlog has been sent, then sent directly;
    // `last` suppresses anything already sent.
    struct StreamState {
      std::mutex mu;
      int64_t last = 0;
      bool live = false;
      bool ended = false;
      std::vector<state::EventRecord> buffered;
    };
    auto st = std::make_shared<StreamState>();
    st->last = cursor;
    auto is_end = [is_task](const state::EventRecord& e) {
      if (!is_task) return e.type == "LOG_STREAM_CLOSED";
      if (e.type == "LOG_STREAM_CLOSED") return false;
      json j = json::parse(e.json, nullptr, false);
      if (!j.is_object() || !j["status"].is_string()) return false;
      std::string s = j["status"].get<std::string>();
      return s == "DONE" || s == "FAILED" || s == "CANCELLED";
    };
    // Sends one event; caller holds st->mu. Returns false once the stream is over.
    auto deliver = [st, stream, is_end](const state::EventRecord& e) {
      if (st->ended || e.cursor <= st->last) return !st->ended;
      if (is_end(e) && e.type == "LOG_STREAM_CLOSED") {
        // The closing marker is sent as eos rather than as a log line.
        st->last = e.cursor;
        stream->Send(std::to_string(e.cursor), "eos", json{{"cursor", e.cursor}}.dump());
        st->ended = true;
        stream->Close();
        return false;
      }
      st->last = e.cursor;
      stream->Send(std::to_string(e.cursor), "log", e.json);
      if (is_end(e)) {
        stream->Send(std::to_string(e.cursor), "eos", json{{"cursor", e.cursor}}.dump());
        st->ended = true;
        stream->Close();
        return false;
      }
      return true;
    };
    uint64_t sub = hub_->Subscribe(id, [st, deliver](const state::EventRecord& e) {
      std::lock_guard<std::mutex> lock(st->mu);
      if (!st->live) {
        st->buffered.push_back(e);
        return;
      }
      deliver(e);
    });
    scheduler::EventHub* hub = hub_;
    stream->OnClose([hub, sub] { hub->Unsubscribe(sub); });

    // Backlog from the store, in pages.
    state::EventQuery q;
    (is_task ? q.task_id : q.workflow_id) = id;
    q.limit = 1000;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(st->mu);
        q.after = st->last;
      }
      auto page = store_->ReadEvents(q);
      if (!page.ok()) {
        FM_LOG_WARN("log stream {}: {}", id, page.status().ToString());
        stream->Close();
        return;
      }
      std::lock_guard<std::mutex> lock(st->mu);
      for (const auto& e : *page) {
        if (!deliver(e)) return;
      }
      if (static_cast<int>(page->size()) < q.limit) break;
    }
    std::lock_guard<std::mutex> lock(st->mu);
    if (!st->ended && st->last > 0) {
      // Resumed at or past the end (an EventSource reconnects after eos with the eos id):
      // the ending event is behind the cursor and nothing later would close the stream.
      state::EventQuery tail;
      (is_task ? tail.task_id : tail.workflow_id) = id;
      tail.before = st->last + 1;
      tail.limit = 1;
      tail.newest_first = true;
      auto prev = store_->ReadEvents(tail);
      if (prev.ok() && !prev->empty() && is_end(prev->back())) {
        stream->Send(std::to_string(st->last), "eos", json{{"cursor", st->last}}.dump());
        st->ended = true;
        stream->Close();
        return;
      }
    }
    st->live = true;
    std::sort(st->buffered.begin(), st->buffered.end(),
              [](const auto& a, const auto& b) { return a.cursor < b.cursor; });
    for (const auto& e : st->buffered) {
      if (!deliver(e)) break;
    }
    st->buffered.clear();
  }, precheck);
}

// ---------------------------------------------------------------- tasks

void ApiService::AddTaskRoutes(http::Router& r) {
  std::string p = kPrefix;
  r.Add("GET", p + "/tasks", [this](Request& req) {
    state::TaskFilter f;
    f.workflow_id = req.Query("workflow_id");
    f.status = req.Query("status");
    f.task_type = req.Query("task_type");
    f.category = req.Query("category");
    f.assigned_worker = req.Query("assigned_worker");
    f.graph_node_name = req.Query("graph_node_name");
    f.limit = ParseInt(req.Query("limit"), 0);
    std::optional<std::set<std::string>> allowed;
    if (const auth::Principal* caller = Caller(req); caller && !caller->all_orgs) {
      f.org_id = caller->org_id;
      allowed = auth_->Accessible(*caller, auth::Kind::kTask, auth::Action::kRead);
    }
    auto list = store_->ListTasks(f);
    if (!list.ok()) return StatusResponse(list.status());
    json out = json::array();
    for (const auto& t : *list) {
      if (allowed && !allowed->count(t.task_id)) continue;
      json rec = TaskJson(t);
      if (Matches(rec, req.query, {"limit"})) out.push_back(std::move(rec));
    }
    return JsonResponse(200, out);
  });
  r.Add("GET", p + "/tasks/{id}", [this](Request& req) {
    auto t = store_->GetTask(req.params["id"]);
    if (!t.ok()) return StatusResponse(t.status());
    Status access = CheckAccess(req, t->org_id, auth::Kind::kTask, auth::Action::kRead, "task",
                                t->task_id);
    if (!access.ok()) return StatusResponse(access);
    return JsonResponse(200, TaskJson(*t));
  });
  r.Add("POST", p + "/tasks/{id}/stop", [this](Request& req) {
    auto t = store_->GetTask(req.params["id"]);
    if (!t.ok()) return StatusResponse(t.status());
    Status access = CheckAccess(req, t->org_id, auth::Kind::kTask, auth::Action::kCancel, "task",
                                t->task_id);
    if (!access.ok()) return StatusResponse(access);
    if (t->task_type != "ssh" && t->task_type != "serve") {
      return Response::Error(501, "only ssh and serve tasks can be stopped; task " + t->task_id +
                                      " is of type " + t->task_type + " (cancel its workflow instead)");
    }
    return Response::Error(501, "stopping " + t->task_type + " tasks is not available yet");
  });
  AddLogRoutes(r, "tasks");
}

// ---------------------------------------------------------------- results

namespace {

struct MultipartPart {
  std::string name, filename, data;
};

Result<std::vector<MultipartPart>> ParseMultipart(const std::string& body, const std::string& content_type) {
  auto b = content_type.find("boundary=");
  if (content_type.find("multipart/form-data") == std::string::npos || b == std::string::npos) {
    return InvalidArgument("expected a multipart/form-data body with a boundary");
  }
  std::string boundary = content_type.substr(b + 9);
  if (auto semi = boundary.find(';'); semi != std::string::npos) boundary.resize(semi);
  if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  std::string delim = "--" + boundary;
  std::vector<MultipartPart> parts;
  size_t pos = body.find(delim);
  if (pos == std::string::npos) return InvalidArgument("multipart body has no part delimited by its boundary");
  for (;;) {
    pos += delim.size();
    if (body.compare(pos, 2, "--") == 0) break;
    if (body.compare(pos, 2, "\r\n") != 0) return InvalidArgument("malformed multipart delimiter line");
    pos += 2;
    size_t header_end = body.find("\r\n\r\n", pos);
    if (header_end == std::string::npos) return InvalidArgument("multipart part without headers end");
    std::string headers = body.substr(pos, header_end - pos);
    size_t data_start = header_end + 4;
    size_t next = body.find("\r\n" + delim, data_start);
    if (next == std::string::npos) return InvalidArgument("multipart part is not terminated");
    MultipartPart part;
    part.data = body.substr(data_start, next - data_start);
    auto field = [&headers](const std::string& key) -> std::string {
      auto k = headers.find(key + "=\"");
      if (k == std::string::npos) return "";
      auto start = k + key.size() + 2;
      auto end = headers.find('"', start);
      return end == std::string::npos ? "" : headers.substr(start, end - start);
    };
    part.name = field("name");
    part.filename = field("filename");
    parts.push_back(std::move(part));
    pos = next + 2;
  }
  return parts;
}

}  // namespace

void ApiService::AddResultRoutes(http::Router& r) {
  std::string p = kPrefix;
  r.AddAsync("POST", p + "/results", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) {
      resp->Send(Response::Error(422, "result upload must be a JSON object {task_id, worker_id, metadata, result}"));
      return;
    }
    if (!body.contains("task_id") || !body["task_id"].is_string()) {
      resp->Send(Response::Error(422, "field 'task_id' (string) is required"));
      return;
    }
    if (!body.contains("result")) {
      resp->Send(Response::Error(422, "field 'result' is required"));
      return;
    }
    std::string task_id = body["task_id"].get<std::string>();
    auto task = store_->GetTask(task_id);
    Status access = task.ok() ? CheckAccess(req, task->org_id, auth::Kind::kResult,
                                            auth::Action::kWrite, "task", task_id)
                              : task.status();
    if (!access.ok()) {
      resp->Send(StatusResponse(access));
      return;
    }
    std::string blob = body["result"].dump(-1, ' ', false, json::error_handler_t::replace);
    auto prepared = blobs_->Prepare(std::move(blob));
    if (!prepared.ok()) {
      resp->Send(StatusResponse(prepared.status()));
      return;
    }
    state::ResultRecord rec;
    rec.task_id = task_id;
    rec.digest = prepared->digest;
    rec.size = static_cast<int64_t>(prepared->size);
    rec.worker_id = body.value("worker_id", "");
    rec.metadata_json = body.contains("metadata") ? body["metadata"].dump() : "{}";
    rec.received_at = WallSeconds();
    std::string d = prepared->digest;
    store_->Write([rec, blob = std::move(prepared).value()](state::WriteTxn& txn) -> Status {
                    FM_RETURN_IF_ERROR(cas::ContentStore::Record(blob, txn));
                    return txn.PutResult(rec);
                  },
                  [resp, task_id, d](const Status& s) {
                    if (!s.ok()) {
                      resp->Send(StatusResponse(s));
                      return;
                    }
                    resp->Send(JsonResponse(200, json{{"ok", true}, {"task_id", task_id}, {"digest", d}}));
                  });
  });

  r.Add("GET", p + "/results/{task_id}", [this](Request& req) {
    std::string id = req.params["task_id"];
    auto task = store_->GetTask(id);
    if (!task.ok()) return StatusResponse(task.status());
    Status access =
        CheckAccess(req, task->org_id, auth::Kind::kResult, auth::Action::kRead, "task", id);
    if (!access.ok()) return StatusResponse(access);
    auto rec = store_->GetResult(id);
    if (!rec.ok()) {
      return Response::Error(404, "task " + id + " has no result (status " +
                                      std::string(state::TaskStateName(task->status)) + ")");
    }
    auto blob = blobs_->Get(rec->digest);
    if (!blob.ok()) return StatusResponse(blob.status());
    return Response::Json(200, std::move(blob).value());
  });

  r.AddAsync("POST", p + "/results/{task_id}/files", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    std::string id = req.params["task_id"];
    auto task = store_->GetTask(id);
    Status access = task.ok() ? CheckAccess(req, task->org_id, auth::Kind::kResult,
                                            auth::Action::kWrite, "task", id)
                              : task.status();
    if (!access.ok()) {
      resp->Send(StatusResponse(access));
      return;
    }
    auto parts = ParseMultipart(req.body, req.Header("Content-Type"));
    if (!parts.ok()) {
      resp->Send(StatusResponse(parts.status()));
      return;
    }
    std::vector<state::ResultFileRecord> files;
    std::vector<cas::ContentStore::Prepared> blobs;
    for (auto& part : *parts) {
      std::string name = part.filename.empty() ? part.name : part.filename;
      auto clean = SanitizeRelativePath(name);
      if (!clean.ok()) {
        resp->Send(StatusResponse(clean.status()));
        return;
      }
      int64_t size = static_cast<int64_t>(part.data.size());
      auto prepared = blobs_->Prepare(std::move(part.data));
      if (!prepared.ok()) {
        resp->Send(StatusResponse(prepared.status()));
        return;
      }
      files.push_back({id, *clean, prepared->digest, size});
      blobs.push_back(std::move(prepared).value());
    }
    json out = json::array();
    for (const auto& f : files) out.push_back({{"path", f.path}, {"digest", f.digest}, {"size", f.size}});
    store_->Write(
        [files, blobs = std::move(blobs)](state::WriteTxn& txn) -> Status {
          for (const auto& b : blobs) FM_RETURN_IF_ERROR(cas::ContentStore::Record(b, txn));
          for (const auto& f : files) FM_RETURN_IF_ERROR(txn.PutResultFile(f));
          return Status::Ok();
        },
        [resp, out](const Status& s) {
          if (!s.ok()) {
            resp->Send(StatusResponse(s));
            return;
          }
          resp->Send(JsonResponse(201, json{{"ok", true}, {"files", out}}));
        });
  });

  r.Add("GET", p + "/results/{task_id}/files/{path...}", [this](Request& req) {
    std::string id = req.params["task_id"];
    auto task = store_->GetTask(id);
    if (!task.ok()) return StatusResponse(task.status());
    Status access =
        CheckAccess(req, task->org_id, auth::Kind::kResult, auth::Action::kRead, "task", id);
    if (!access.ok()) return StatusResponse(access);
    auto clean = SanitizeRelativePath(req.params["path"]);
    if (!clean.ok()) return StatusResponse(clean.status());
    auto files = store_->ListResultFiles(id);
    if (!files.ok()) return StatusResponse(files.status());
    for (const auto& f : *files) {
      if (f.path != *clean) continue;
      auto blob = blobs_->Get(f.digest);
      if (!blob.ok()) return StatusResponse(blob.status());
      Response resp;
      resp.content_type = "application/octet-stream";
      resp.body = std::move(blob).value();
      return resp;
    }
    return Response::Error(404, "task " + id + " has no file '" + *clean + "'");
  });

  auto task_log_lines = [this](const std::string& task_id) -> Result<std::string> {
    std::string out;
    state::EventQuery q;
    q.task_id = task_id;
    q.limit = 1000;
    for (;;) {
      auto page = store_->ReadEvents(q);
      if (!page.ok()) return page.status();
      for (const auto& e : *page) {
        out += e.json;
        out += '\n';
        q.after = e.cursor;
      }
      if (static_cast<int>(page->size()) < q.limit) break;
    }
    return out;
  };

  r.Add("GET", p + "/results/{task_id}/logs", [this, task_log_lines](Request& req) {
    std::string id = req.params["task_id"];
    auto task = store_->GetTask(id);
    if (!task.ok()) return StatusResponse(task.status());
    Status access =
        CheckAccess(req, task->org_id, auth::Kind::kResult, auth::Action::kRead, "task", id);
    if (!access.ok()) return StatusResponse(access);
    auto lines = task_log_lines(id);
    if (!lines.ok()) return StatusResponse(lines.status());
    Response resp;
    resp.content_type = "application/x-ndjson";
    resp.body = std::move(lines).value();
    return resp;
  });

  r.Add("GET", p + "/results/{task_id}/bundle", [this, task_log_lines](Request& req) {
    std::string id = req.params["task_id"];
    auto task = store_->GetTask(id);
    if (!task.ok()) return StatusResponse(task.status());
    Status access =
        CheckAccess(req, task->org_id, auth::Kind::kResult, auth::Action::kRead, "task", id);
    if (!access.ok()) return StatusResponse(access);
    if (!state::IsTerminal(task->status)) {
      return Response::Error(409, "task " + id + " is " + std::string(state::TaskStateName(task->status)) +
                                      "; bundles are available once it is finished");
    }
    std::set<std::string> include;
    {
      std::stringstream list(req.Query("include", "results,artifacts"));
      std::string part;
      while (std::getline(list, part, ',')) {
        if (part.empty()) continue;
        if (part != "results" && part != "artifacts" && part != "logs" && part != "all") {
          return Response::Error(422, "query parameter 'include' has unknown part '" + part +
                                          "' (expected a comma-separated list of results, artifacts, logs, all)");
        }
        include.insert(part);
      }
    }
    auto has = [&include](const std::string& what) { return include.count("all") > 0 || include.count(what) > 0; };
    std::vector<ArchiveEntry> entries;
    std::string root = id + "/";
    if (has("results")) {
      auto rec = store_->GetResult(id);
      if (rec.ok()) {
        auto blob = blobs_->Get(rec->digest);
        if (!blob.ok()) return StatusResponse(blob.status());
        entries.push_back({root + "result.json", std::move(blob).value()});
      }
    }
    if (has("artifacts")) {
      auto files = store_->ListResultFiles(id);
      if (!files.ok()) return StatusResponse(files.status());
      for (const auto& f : *files) {
        auto blob = blobs_->Get(f.digest);
        if (!blob.ok()) return StatusResponse(blob.status());
        entries.push_back({root + "artifacts/" + f.path, std::move(blob).value()});
      }
    }
    if (has("logs")) {
      auto lines = task_log_lines(id);
      if (!lines.ok()) return StatusResponse(lines.status());
      entries.push_back({root + "logs.jsonl", std::move(lines).value()});
    }
    auto tgz = MakeTarGz(entries, WallSeconds());
    if (!tgz.ok()) return StatusResponse(tgz.status());
    Response resp;
    resp.content_type = "application/gzip";
    resp.headers["Content-Disposition"] = "attachment; filename=\"" + id + ".tar.gz\"";
    resp.body = std::move(tgz).value();
    return resp;
  });
}

// ---------------------------------------------------------------- workers, nodes, stack

void ApiService::AddWorkerRoutes(http::Router& r) {
  std::string p = kPrefix;
  auto find_worker = [this](const std::string& id) -> std::optional<json> {
    for (const auto& w : scheduler_->WorkersSnapshot()) {
      if (w.value("worker_id", "") == id) return w;
    }
    return std::nullopt;
  };

  r.Add("GET", p + "/workers/cordoned", [this](Request& req) {
    json out = json::array();
    for (const auto& w : scheduler_->WorkersSnapshot()) {
      if (w.value("cordoned", false)) out.push_back(w);
    }
    return JsonResponse(200, out);
  });
  r.AddAsync("DELETE", p + "/workers/cordoned/{node_alias}/{alias}",
             [this](Request& req, std::shared_ptr<http::Responder> resp) {
               std::string node_alias = req.params["node_alias"], alias = req.params["alias"];
               auto nodes = store_->ListNodes();
               std::string node_id;
               if (nodes.ok()) {
                 for (const auto& n : *nodes) {
                   if (n.alias == node_alias || n.node_id == node_alias) node_id = n.node_id;
                 }
               }
               std::string worker_id;
               for (const auto& w : scheduler_->WorkersSnapshot()) {
                 if (w.value("node_id", "") == node_id && (w.value("alias", "") == alias || w.value("name", "") == alias) &&
                     w.value("cordoned", false)) {
                   worker_id = w.value("worker_id", "");
                 }
               }
               if (worker_id.empty()) {
                 resp->Send(Response::Error(404, "no cordoned worker " + alias + " on node " + node_alias));
                 return;
               }
               scheduler_->SetCordon(worker_id, false, [resp](Result<json> res) { SendResult(resp, res); });
             });
  r.Add("GET", p + "/workers", [this](Request& req) {
    json out = json::array();
    for (const auto& w : scheduler_->WorkersSnapshot()) {
      if (Matches(w, req.query, {"limit"})) out.push_back(w);
    }
    return JsonResponse(200, out);
  });
  r.Add("GET", p + "/workers/{id}", [find_worker](Request& req) {
    auto w = find_worker(req.params["id"]);
    if (!w) return Response::Error(404, "worker " + req.params["id"] + " not found");
    return JsonResponse(200, *w);
  });
  for (bool cordon : {true, false}) {
    r.AddAsync("POST", p + "/workers/{id}/" + (cordon ? "cordon" : "uncordon"),
               [this, cordon](Request& req, std::shared_ptr<http::Responder> resp) {
                 scheduler_->SetCordon(req.params["id"], cordon, [resp](Result<json> res) { SendResult(resp, res); });
               });
  }

  // Nodes.
  auto node_json = [this](const state::NodeRecord& n) {
    json info = ParseOr(n.info_json, json::object());
    json workers = json::array();
    for (const auto& w : scheduler_->WorkersSnapshot()) {
      if (w.value("node_id", "") == n.node_id) workers.push_back(w.value("worker_id", ""));
    }
    return json{{"node_id", n.node_id}, {"alias", n.alias}, {"info", info},
                {"registered_at", n.registered_at}, {"last_seen", n.last_seen},
                {"local", info.value("local", false)}, {"workers", workers}};
  };
  r.Add("GET", p + "/nodes", [this, node_json](Request& req) {
    auto nodes = store_->ListNodes();
    if (!nodes.ok()) return StatusResponse(nodes.status());
    json out = json::array();
    for (const auto& n : *nodes) {
      json rec = node_json(n);
      if (Matches(rec, req.query, {})) out.push_back(std::move(rec));
    }
    return JsonResponse(200, out);
  });
  r.Add("GET", p + "/nodes/workers", [this](Request& req) {
    json out = json::object();
    for (const auto& w : scheduler_->WorkersSnapshot()) out[w.value("node_id", "")].push_back(w);
    return JsonResponse(200, out);
  });
  r.AddAsync("POST", p + "/nodes/register", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) {
      resp->Send(Response::Error(422, "node registration must be a JSON object"));
      return;
    }
    const auth::PluginHost* plugins = auth_ ? auth_->plugins() : nullptr;
    scheduler_->RegisterNode(std::move(body), [resp, plugins](Result<json> res) {
      if (res.ok() && plugins) plugins->Register("node", res->value("node_id", ""), "", "");
      SendResult(resp, res, 201);
    });
  });
  // Registers a worker that a supervisor manages without the gRPC protocol (the published
  // contract's route); native supervisors announce theirs on the bus instead.
  r.AddAsync("POST", p + "/nodes/{id}/workers/register", [this](Request& req, std::shared_ptr<http::Responder> resp) {
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
      resp->Send(Response::Error(422, "worker registration needs 'task_types' (a list of task types it runs)"));
      return;
    }
    std::string worker_id = body.value("worker_id", "");
    if (worker_id.rfind("wkr-", 0) != 0) worker_id = NewId("wkr");
    json up = {{"kind", "worker_up"}, {"node_id", node->node_id}, {"worker_id", worker_id}, {"info", info}};
    bus::Message m;
    m.payload = up.dump();
    if (const auth::PluginHost* plugins = auth_ ? auth_->plugins() : nullptr) {
      plugins->Register("worker", worker_id, "", "");
    }
    scheduler_->ApplyBusMessagesAsync({m}, [resp, worker_id] {
      resp->Send(JsonResponse(201, json{{"ok", true}, {"worker_id", worker_id}}));
    });
  });
  r.Add("GET", p + "/nodes/{id}", [this, node_json](Request& req) {
    auto n = store_->GetNode(req.params["id"]);
    if (!n.ok()) return StatusResponse(n.status());
    return JsonResponse(200, node_json(*n));
  });
  r.Add("GET", p + "/nodes/{id}/workers", [this](Request& req) {
    auto n = store_->GetNode(req.params["id"]);
    if (!n.ok()) return StatusResponse(n.status());
    json out = json::array();
    for (const auto& w : scheduler_->WorkersSnapshot()) {
      if (w.value("node_id", "") == n->node_id) out.push_back(w);
    }
    return JsonResponse(200, out);
  });
  for (const char* verb : {"start", "stop"}) {
    r.AddAsync("POST", p + "/nodes/{id}/workers/{name}/" + verb,
               [this, verb](Request& req, std::shared_ptr<http::Responder> resp) {
                 if (req.params["id"] != scheduler_->local_node_id()) {
                   resp->Send(Response::Error(404, "node " + req.params["id"] + " is not managed by this server's supervisor"));
                   return;
                 }
                 scheduler_->StackWorkerCommand(std::string(verb) == "start" ? "start_worker" : "stop_worker",
                                                req.params["name"], json::object(), [resp](Result<json> res) {
                                                  if (res.ok()) {
                                                    Response ok;
                                                    ok.status = 204;
                                                    resp->Send(ok);
                                                  } else {
                                                    resp->Send(StatusResponse(res.status()));
                                                  }
                                                });
               });
  }

  // The local node's worker processes.
  r.Add("GET", p + "/stack/workers", [this](Request& req) {
    return JsonResponse(200, scheduler_->StackWorkersSnapshot());
  });
  r.AddAsync("POST", p + "/stack/workers", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
    if (!body.is_object()) {
      resp->Send(Response::Error(422, "worker init config must be a JSON object {provider, worker_config}"));
      return;
    }
    std::string provider = body.value("provider", "native");
    if (provider != "native") {
      resp->Send(Response::Error(422, "provider '" + provider + "' is not available on this node (supported: native)"));
      return;
    }
    json cfg = body.value("worker_config", json::object());
    if (!cfg.is_object()) {
      resp->Send(Response::Error(422, "worker_config must be an object"));
      return;
    }
    std::string type = cfg.value("worker_type", "cpu");
    if (type != "cpu" && type != "gpu") {
      resp->Send(Response::Error(422, "worker_config.worker_type must be cpu or gpu, got '" + type + "'"));
      return;
    }
    std::string name = body.value("name", "");
    scheduler_->StackWorkerCommand("start_worker", name, body, [resp](Result<json> res) { SendResult(resp, res, 201); });
  });
  r.Add("GET", p + "/stack/workers/{name}", [this](Request& req) {
    for (const auto& w : scheduler_->StackWorkersSnapshot()) {
      if (w.value("name", "") == req.params["name"]) return JsonResponse(200, w);
    }
    return Response::Error(404, "stack worker " + req.params["name"] + " not found");
  });
  auto stack_cmd = [this](const std::string& kind) {
    return [this, kind](Request& req, std::shared_ptr<http::Responder> resp) {
      std::string name = req.params["name"];
      bool known = false;
      for (const auto& w : scheduler_->StackWorkersSnapshot()) known |= w.value("name", "") == name;
      if (!known) {
        resp->Send(Response::Error(404, "stack worker " + name + " not found"));
        return;
      }
      scheduler_->StackWorkerCommand(kind, name, json::object(), [resp](Result<json> res) { SendResult(resp, res); });
    };
  };
  r.AddAsync("DELETE", p + "/stack/workers/{name}", stack_cmd("remove_worker"));
  r.AddAsync("POST", p + "/stack/workers/{name}/start", stack_cmd("start_worker"));
  r.AddAsync("POST", p + "/stack/workers/{name}/stop", stack_cmd("stop_worker"));
}

// ---------------------------------------------------------------- system

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
    return JsonResponse(200, json{{"status", "ok"}, {"version", config_.version},
                                  {"local_node", node.empty() ? json(nullptr) : json(node)}});
  });
  r.Add("GET", std::string(kPrefix) + "/schema/workflow", [](Request&) {
    Response resp = Response::Json(200, WorkflowJsonSchema());
    resp.content_type = "application/schema+json";
    return resp;
  });
  r.Add("GET", std::string(kPrefix) + "/system/version", [this](Request&) {
    return JsonResponse(200, json{{"version", config_.version}, {"api", "v1"}, {"name", "flowmesh"}});
  });
  r.Add("GET", std::string(kPrefix) + "/system/metrics", [this](Request&) {
    return JsonResponse(200, MetricsJson());
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
    std::string out;
    // items() refers into its json: iterating over a temporary's items() would dangle.
    const json metrics = MetricsJson();
    for (const auto& [key, value] : metrics.items()) {
      if (!value.is_number()) continue;
      std::string name = "flowmesh_" + key;
      bool counter = key.size() > 6 && key.compare(key.size() - 6, 6, "_total") == 0;
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
