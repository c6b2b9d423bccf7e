#include "api/collections.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include "api/access.h"
#include "api/routes/common.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/log.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr const char* kIndexFile = "index.fmvi";
constexpr const char* kEntriesFile = "entries.jsonl";
constexpr double kDefaultWaitS = 120;
constexpr double kMaxWaitS = 600;
constexpr size_t kMaxQueries = 1000;

// Options of a create request copied into the build task's `collection` section.
constexpr const char* kBuildOptions[] = {"text_field", "id_field", "metadata_fields",
                                         "chunking",   "metric",   "batch_size"};

std::string OrgOf(const Request& req) {
  const auth::Principal* p = Caller(req);
  return p == nullptr ? state::kDefaultOrg : p->org_id;
}

Result<spec::WorkflowDef> ParseDocument(const json& doc) {
  std::vector<spec::SpecError> errors;
  auto def = spec::ParseWorkflow(doc.dump(), spec::Format::kNative, &errors);
  if (def.ok()) return def;
  std::string detail;
  for (const auto& e : errors) detail += (detail.empty() ? "" : "; ") + e.ToString();
  return InvalidArgument(detail.empty() ? def.status().message() : detail);
}

// The newest version per name, in name order.
std::vector<state::CollectionRecord> Newest(const std::vector<state::CollectionRecord>& all) {
  std::map<std::string, state::CollectionRecord> by_name;
  for (const auto& c : all) {
    auto it = by_name.find(c.name);
    if (it == by_name.end() || it->second.version < c.version) by_name[c.name] = c;
  }
  std::vector<state::CollectionRecord> out;
  for (auto& [name, c] : by_name) out.push_back(std::move(c));
  return out;
}

int64_t ReadyBytes(const std::vector<state::CollectionRecord>& all, const state::CollectionRecord* except) {
  int64_t sum = 0;
  for (const auto& c : all) {
    if (c.status != "ready") continue;
    if (except && c.name == except->name && c.version == except->version) continue;
    sum += c.bytes();
  }
  return sum;
}

Response NoCollection(const std::string& name) {
  return Response::Error(404, "collection " + name + " not found");
}

}  // namespace

// ---- Pure parts ------------------------------------------------------------------------

Status CheckCollectionName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' &&
            std::all_of(name.begin(), name.end(), [](char ch) {
              return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
            });
  if (ok) return Status::Ok();
  return InvalidArgument("collection name '" + name +
                         "' must be 1-64 characters of A-Z a-z 0-9 . _ - (not starting with .)");
}

Result<json> CollectionBuildDocument(const std::string& name, const json& body) {
  FM_RETURN_IF_ERROR(CheckCollectionName(name));
  if (!body.is_object()) return InvalidArgument("expected a JSON object {name, items, model, ...}");
  for (const auto& item : body.items()) {
    const std::string& key = item.key();
    bool known = key == "name" || key == "items" || key == "data" || key == "model" ||
                 std::any_of(std::begin(kBuildOptions), std::end(kBuildOptions),
                             [&](const char* o) { return key == o; });
    if (!known) {
      return InvalidArgument("unknown field '" + key +
                             "' (expected name, items or data, model, text_field, id_field, "
                             "metadata_fields, chunking, metric, batch_size)");
    }
  }
  json data;
  if (auto it = body.find("items"); it != body.end()) {
    if (!it->is_array() || it->empty()) {
      return InvalidArgument("field 'items' must be a non-empty list of rows (objects or strings)");
    }
    data = {{"type", "list"}, {"items", *it}};
  } else if (auto d = body.find("data"); d != body.end() && d->is_object()) {
    data = *d;
  } else {
    return InvalidArgument("field 'items' (the rows to index) is required");
  }
  auto model = body.find("model");
  if (model == body.end() || !model->is_object()) {
    return InvalidArgument("field 'model' (the embedding model, a workflow model section) is "
                           "required and must be an object");
  }
  json section = {{"name", name}};
  for (const char* o : kBuildOptions) {
    if (auto it = body.find(o); it != body.end()) section[o] = *it;
  }
  return json{{"apiVersion", "flowmesh/v1"},
              {"kind", "Workflow"},
              {"metadata", {{"name", "collection-" + name}}},
              {"spec",
               {{"taskType", "collection"}, {"model", *model}, {"data", std::move(data)},
                {"collection", std::move(section)}}}};
}

json CollectionQueryDocument(const state::CollectionRecord& c,
                             const std::vector<std::string>& queries, const json& search) {
  json build = ParseOr(c.build_json, json::object());
  json model = build.is_object() && build.contains("model") ? build["model"] : json::object();
  json rag = {{"collection", c.name}, {"version", c.version}};
  if (search.is_object() && !search.empty()) rag["search"] = search;
  return json{{"apiVersion", "flowmesh/v1"},
              {"kind", "Workflow"},
              {"metadata", {{"name", "collection-query-" + c.name}}},
              {"spec",
               {{"taskType", "rag"}, {"model", std::move(model)},
                {"data", {{"type", "list"}, {"items", queries}}},
                {"rag", std::move(rag)}}}};
}

Status ApplyBuildResult(const json& result, state::CollectionRecord& c) {
  auto fail = [&](std::string why) {
    c.status = "failed";
    c.error = why;
    return FailedPrecondition(std::move(why));
  };
  const json* meta = result.is_object() && result.contains("collection") ? &result["collection"] : nullptr;
  if (meta == nullptr || !meta->is_object()) return fail("the build's result has no 'collection'");
  if (meta->value("name", std::string()) != c.name) {
    return fail("the build's result describes collection '" + meta->value("name", std::string()) +
                "', not '" + c.name + "'");
  }
  std::map<std::string, const json*> files;
  if (auto f = result.find("files"); f != result.end() && f->is_array()) {
    for (const auto& file : *f) {
      if (file.is_object() && file.contains("name") && file["name"].is_string()) {
        files[file["name"].get<std::string>()] = &file;
      }
    }
  }
  std::string digests[2];
  int64_t sizes[2] = {0, 0};
  const char* names[2] = {kIndexFile, kEntriesFile};
  for (int i = 0; i < 2; ++i) {
    auto it = files.find(names[i]);
    if (it == files.end()) return fail(fmt::format("the build produced no {}", names[i]));
    const json& f = *it->second;
    if (!f.value("stored", false)) {
      return fail(fmt::format("the build's {} was not stored: {}", names[i],
                              f.value("why_not", std::string("no reason given"))));
    }
    digests[i] = f.value("sha256", std::string());
    sizes[i] = f.value("size", int64_t{0});
    if (digests[i].size() != 64) return fail(fmt::format("the build's {} has no digest", names[i]));
  }
  c.status = "ready";
  c.error.clear();
  c.model_key = meta->value("model", std::string());
  c.dim = meta->value("dim", int64_t{0});
  c.count = meta->value("count", int64_t{0});
  c.documents = meta->value("documents", int64_t{0});
  c.metric = meta->value("metric", std::string("cosine"));
  c.index_digest = digests[0];
  c.index_size = sizes[0];
  c.entries_digest = digests[1];
  c.entries_size = sizes[1];
  return Status::Ok();
}

bool SpecNamesCollection(const json& spec, const std::string& name) {
  if (spec.is_object()) {
    for (const auto& [key, value] : spec.items()) {
      if (key == "collection") {
        if (value.is_string() && value.get<std::string>() == name) return true;
        if (value.is_object() && value.value("name", std::string()) == name) return true;
      }
      if (SpecNamesCollection(value, name)) return true;
    }
  } else if (spec.is_array()) {
    for (const auto& v : spec) {
      if (SpecNamesCollection(v, name)) return true;
    }
  }
  return false;
}

json CollectionJson(const state::CollectionRecord& c) {
  json j = {{"name", c.name},
            {"version", c.version},
            {"status", c.status},
            {"workflow_id", c.workflow_id},
            {"task_id", c.task_id},
            {"created_at", IsoTime(c.created_at)},
            {"updated_at", IsoTime(c.updated_at)}};
  if (c.status == "ready") {
    j["model"] = c.model_key;
    j["dim"] = c.dim;
    j["count"] = c.count;
    j["documents"] = c.documents;
    j["metric"] = c.metric;
    j["bytes"] = c.bytes();
    j["files"] = {{"index", {{"digest", c.index_digest}, {"size", c.index_size}}},
                  {"entries", {{"digest", c.entries_digest}, {"size", c.entries_size}}}};
  }
  if (c.status == "failed") j["error"] = c.error;
  return j;
}

// ---- Queries waiting for their task ------------------------------------------------------

// Each waiting query subscribes to its task's events; every event (and a first check
// right away, for a task that ended before the subscription) re-reads the task on the
// loop, which answers once it is terminal or the deadline passes. State only on the loop.
struct CollectionService::Waits {
  struct Pending {
    std::string task_id;
    std::function<void(Result<state::TaskRecord>, bool timed_out)> finish;
    uint64_t subscription = 0;
    EventLoop::TimerId timer = 0;
  };

  Waits(state::Store* store, scheduler::EventHub* hub) : store(store), hub(hub), loop("collection-waits") {
    loop.Start();
  }
  ~Waits() {
    loop.RunSync([this] {
      for (auto& [id, p] : pending) {
        hub->Unsubscribe(p.subscription);
        p.finish(Unavailable("the server is stopping"), false);
      }
      pending.clear();
    });
    loop.Stop();
  }

  void Wait(std::string task_id, double wait_s,
            std::function<void(Result<state::TaskRecord>, bool)> finish) {
    loop.Post([this, task_id = std::move(task_id), wait_s, finish = std::move(finish)]() mutable {
      uint64_t id = next_id++;
      Pending& p = pending[id];
      p.task_id = task_id;
      p.finish = std::move(finish);
      p.subscription = hub->Subscribe(task_id, [this, id](const state::EventRecord&) {
        loop.Post([this, id] { Check(id, false); });
      });
      p.timer = loop.PostDelayed(std::chrono::microseconds(static_cast<int64_t>(wait_s * 1e6)),
                                 [this, id] { Check(id, true); });
      Check(id, false);
    });
  }

  void Check(uint64_t id, bool deadline) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    auto task = store->GetTask(it->second.task_id);
    bool done = !task.ok() || state::IsTerminal(task->status);
    if (!done && !deadline) return;
    Pending p = std::move(it->second);
    pending.erase(it);
    hub->Unsubscribe(p.subscription);
    if (!deadline) loop.CancelTimer(p.timer);
    p.finish(std::move(task), !done);
  }

  state::Store* store;
  scheduler::EventHub* hub;
  EventLoop loop;
  uint64_t next_id = 1;
  std::map<uint64_t, Pending> pending;
};

// ---- The routes ------------------------------------------------------------------------

CollectionService::CollectionService(CollectionDeps deps)
    : deps_(std::move(deps)), waits_(std::make_unique<Waits>(deps_.store, deps_.hub)) {}

CollectionService::~CollectionService() = default;

bool CollectionService::IsFleet(const Request& req) const {
  const auth::Principal* p = Caller(req);
  if (p == nullptr) return deps_.auth == nullptr;
  return p->all_orgs ||
         (p->org_id == state::kDefaultOrg && p->Allows(auth::Kind::kNode, auth::Action::kWrite) &&
          p->Allows(auth::Kind::kResult, auth::Action::kWrite));
}

void CollectionService::Refresh(state::CollectionRecord& c) {
  if (c.status != "building") return;
  auto task = deps_.store->GetTask(c.task_id);
  if (!task.ok()) {
    c.status = "failed";
    c.error = "its build task " + c.task_id + " is gone";
  } else if (task->status == state::TaskState::kDone) {
    Result<std::string> blob = NotFound("no result");
    if (auto rec = deps_.store->GetResult(c.task_id); rec.ok()) blob = deps_.blobs->Get(rec->digest);
    if (!blob.ok()) {
      c.status = "failed";
      c.error = "its build task's result cannot be read: " + blob.status().message();
    } else if (ApplyBuildResult(ParseOr(*blob, json()), c).ok() && deps_.auth != nullptr) {
      int64_t quota = deps_.auth->PolicyOf(c.org_id).max_collection_bytes;
      auto all = deps_.store->ListCollections(c.org_id, "");
      int64_t others = all.ok() ? ReadyBytes(*all, &c) : 0;
      if (quota > 0 && others + c.bytes() > quota) {
        c.error = fmt::format("quota exceeded: max_collection_bytes (this version has {} bytes, "
                              "the organisation's other collections {}; the limit is {})",
                              c.bytes(), others, quota);
        c.status = "failed";
      }
    }
  } else if (task->status == state::TaskState::kFailed || task->status == state::TaskState::kCancelled) {
    c.status = "failed";
    c.error = "its build task " + c.task_id + " is " + std::string(state::TaskStateName(task->status)) +
              (task->error.empty() ? std::string() : ": " + task->error);
  }
  if (c.status == "building") return;
  c.updated_at = WallSeconds();
  FM_LOG_INFO("collection {}/{} version {} is {}{}", c.org_id, c.name, c.version, c.status,
              c.error.empty() ? "" : " (" + c.error + ")");
  state::CollectionRecord copy = c;
  deps_.store->Write([copy](state::WriteTxn& t) { return t.PutCollection(copy); });
}

Result<std::vector<state::CollectionRecord>> CollectionService::Versions(const std::string& org,
                                                                         const std::string& name) {
  FM_ASSIGN_OR_RETURN(auto all, deps_.store->ListCollections(org, name));
  for (auto& c : all) Refresh(c);
  return all;
}

Result<state::CollectionRecord> CollectionService::ReadyVersion(const std::string& org,
                                                                const std::string& name,
                                                                int version) {
  FM_ASSIGN_OR_RETURN(auto all, Versions(org, name));
  if (all.empty()) return NotFound("collection " + name + " not found");
  const state::CollectionRecord* best = nullptr;
  for (const auto& c : all) {
    if (version > 0 ? c.version == version : c.status == "ready") best = &c;
  }
  if (best == nullptr && version > 0) {
    return NotFound(fmt::format("collection {} has no version {}", name, version));
  }
  if (best == nullptr || best->status != "ready") {
    const auto& last = best ? *best : all.back();
    return FailedPrecondition(fmt::format("collection {} version {} is {}{}", name, last.version,
                                          last.status,
                                          last.error.empty() ? "" : ": " + last.error));
  }
  return *best;
}

void CollectionService::Create(Request& req, std::shared_ptr<http::Responder> resp) {
  json body = ParseOr(req.body, json());
  std::string name = body.is_object() ? TextField(body, "name") : "";
  auto doc = CollectionBuildDocument(name, body);
  if (!doc.ok()) return resp->Send(Response::Error(422, doc.status().message()));
  auto def = ParseDocument(*doc);
  if (!def.ok()) return resp->Send(Response::Error(422, def.status().message()));
  std::string org = OrgOf(req);
  if (deps_.auth != nullptr) {
    int64_t quota = deps_.auth->PolicyOf(org).max_collection_bytes;
    auto all = Versions(org, "");
    if (!all.ok()) return resp->Send(StatusResponse(all.status()));
    int64_t used = ReadyBytes(*all, nullptr);
    if (quota > 0 && used >= quota) {
      Response r = Response::Error(
          429, fmt::format("quota exceeded: max_collection_bytes (organisation {} keeps {} bytes "
                           "of collections; the limit is {}): delete a collection first",
                           org, used, quota));
      r.headers["Retry-After"] = "60";
      return resp->Send(std::move(r));
    }
  }
  json build = {{"model", body["model"]}};
  for (const char* o : kBuildOptions) {
    if (body.contains(o)) build[o] = body[o];
  }
  std::string text = doc->dump();
  auto refused = [resp](Response r) { resp->Send(std::move(r)); };
  deps_.submit(req, std::move(def).value(), std::move(text),
               [this, resp, org, name, build = build.dump()](Result<scheduler::SubmitReply> reply) {
                 if (!reply.ok()) return resp->Send(StatusResponse(reply.status()));
                 if (reply->tasks.empty()) {
                   return resp->Send(Response::Error(500, "the build workflow has no task"));
                 }
                 state::CollectionRecord c;
                 c.org_id = org;
                 c.name = name;
                 c.status = "building";
                 c.workflow_id = reply->workflow_id;
                 c.task_id = reply->tasks.front().task_id;
                 c.build_json = build;
                 c.created_at = c.updated_at = WallSeconds();
                 auto version = std::make_shared<int>(0);
                 deps_.store->Write(
                     [c, version](state::WriteTxn& t) -> Status {
                       FM_ASSIGN_OR_RETURN(*version, t.AddCollectionVersion(c));
                       return Status::Ok();
                     },
                     [resp, c, version](const Status& s) {
                       if (!s.ok()) return resp->Send(StatusResponse(s));
                       state::CollectionRecord made = c;
                       made.version = *version;
                       FM_LOG_INFO("collection {}/{} version {}: building in {}", c.org_id, c.name,
                                   made.version, c.workflow_id);
                       resp->Send(JsonResponse(202, CollectionJson(made)));
                     });
               },
               refused);
}

Response CollectionService::List(Request& req) {
  auto all = Versions(OrgOf(req), "");
  if (!all.ok()) return StatusResponse(all.status());
  json list = json::array();
  for (const auto& c : Newest(*all)) list.push_back(CollectionJson(c));
  return JsonResponse(200, {{"collections", std::move(list)}});
}

Response CollectionService::Info(Request& req) {
  std::string name = req.params["name"];
  auto all = Versions(OrgOf(req), name);
  if (!all.ok()) return StatusResponse(all.status());
  if (all->empty()) return NoCollection(name);
  json out = CollectionJson(all->back());
  json versions = json::array();
  for (const auto& c : *all) versions.push_back(CollectionJson(c));
  out["versions"] = std::move(versions);
  return JsonResponse(200, out);
}

Response CollectionService::Delete(Request& req) {
  std::string name = req.params["name"], org = OrgOf(req);
  Status s = deps_.store->WriteSync([&](state::WriteTxn& t) { return t.DeleteCollection(org, name); });
  if (s.code() == StatusCode::kNotFound) return NoCollection(name);
  if (!s.ok()) return StatusResponse(s);
  FM_LOG_INFO("collection {}/{} deleted", org, name);
  return JsonResponse(200, {{"name", name}, {"status", "deleted"}});
}

void CollectionService::Query(Request& req, std::shared_ptr<http::Responder> resp) {
  std::string name = req.params["name"], org = OrgOf(req);
  json body = ParseOr(req.body, json());
  if (!body.is_object()) return resp->Send(Response::Error(422, "expected a JSON object {query, top_k, filter}"));
  std::vector<std::string> queries;
  if (auto q = body.find("query"); q != body.end() && q->is_string()) queries.push_back(*q);
  if (auto qs = body.find("queries"); qs != body.end()) {
    if (!qs->is_array()) return resp->Send(Response::Error(422, "field 'queries' must be a list of strings"));
    for (const auto& q : *qs) {
      if (!q.is_string()) return resp->Send(Response::Error(422, "field 'queries' must be a list of strings"));
      queries.push_back(q);
    }
  }
  if (queries.empty()) return resp->Send(Response::Error(422, "field 'query' (or 'queries') is required"));
  if (queries.size() > kMaxQueries) {
    return resp->Send(Response::Error(422, fmt::format("at most {} queries per request", kMaxQueries)));
  }
  json search = json::object();
  for (const char* k : {"top_k", "filter", "score_threshold"}) {
    if (body.contains(k)) search[k] = body[k];
  }
  int version = body.value("version", 0);
  double wait_s = std::clamp(body.value("wait_s", kDefaultWaitS), 0.0, kMaxWaitS);
  auto ready = ReadyVersion(org, name, version);
  if (!ready.ok()) {
    int code = ready.status().code() == StatusCode::kNotFound ? 404 : 409;
    return resp->Send(Response::Error(code, ready.status().message()));
  }
  auto def = ParseDocument(CollectionQueryDocument(*ready, queries, search));
  if (!def.ok()) return resp->Send(Response::Error(422, def.status().message()));
  std::string text = CollectionQueryDocument(*ready, queries, search).dump();
  state::CollectionRecord c = *ready;
  auto refused = [resp](Response r) { resp->Send(std::move(r)); };
  deps_.submit(req, std::move(def).value(), std::move(text),
               [this, resp, c, wait_s](Result<scheduler::SubmitReply> reply) {
                 if (!reply.ok()) return resp->Send(StatusResponse(reply.status()));
                 std::string task_id = reply->tasks.front().task_id;
                 json ids = {{"name", c.name},         {"version", c.version},
                             {"task_id", task_id},     {"workflow_id", reply->workflow_id}};
                 waits_->Wait(task_id, wait_s, [this, resp, ids](Result<state::TaskRecord> task,
                                                                 bool timed_out) {
                   if (!task.ok()) return resp->Send(StatusResponse(task.status()));
                   json out = ids;
                   out["status"] = std::string(state::TaskStateName(task->status));
                   if (timed_out) {
                     out["detail"] = "the query is still running: its result will be at "
                                     "/api/v1/results/" + task->task_id;
                     return resp->Send(JsonResponse(202, out));
                   }
                   if (task->status != state::TaskState::kDone) {
                     return resp->Send(Response::Error(
                         502, "the query task " + task->task_id + " is " +
                                  std::string(state::TaskStateName(task->status)) +
                                  (task->error.empty() ? "" : ": " + task->error)));
                   }
                   Result<std::string> blob = NotFound("no result");
                   if (auto rec = deps_.store->GetResult(task->task_id); rec.ok()) {
                     blob = deps_.blobs->Get(rec->digest);
                   }
                   if (!blob.ok()) return resp->Send(StatusResponse(blob.status()));
                   json result = ParseOr(*blob, json::object());
                   out["queries"] = result.value("queries", json::array());
                   out["usage"] = result.value("usage", json::object());
                   resp->Send(JsonResponse(200, out));
                 });
               },
               refused);
}

Response CollectionService::Resolve(Request& req) {
  if (!IsFleet(req)) return Response::Error(403, "only the fleet's service token may resolve collections");
  json body = ParseOr(req.body, json());
  if (!body.is_object()) return Response::Error(422, "expected {task_id, attempt, name, version?}");
  std::string task_id = TextField(body, "task_id"), name = TextField(body, "name");
  auto task = deps_.store->GetTask(task_id);
  if (!task.ok()) return Response::Error(404, "no task " + task_id);
  int attempt = body.value("attempt", 0);
  if (task->attempts < attempt) {
    return Response::Error(409, fmt::format("task {} attempt {} is not recorded yet", task_id, attempt));
  }
  if (task->status != state::TaskState::kDispatched || task->attempts != attempt) {
    return Response::Error(403, fmt::format("task {} attempt {} is not running", task_id, attempt));
  }
  std::string worker = TextField(body, "worker_id");
  if (!worker.empty() && !task->assigned_worker.empty() && worker != task->assigned_worker) {
    return Response::Error(403, "task " + task_id + " is not assigned to " + worker);
  }
  if (!SpecNamesCollection(ParseOr(task->spec_json, json::object()), name)) {
    return Response::Error(403, "task " + task_id + " does not name collection '" + name + "'");
  }
  int version = body.value("version", 0);
  auto ready = ReadyVersion(task->org_id, name, version);
  if (!ready.ok()) {
    int code = ready.status().code() == StatusCode::kNotFound ? 404 : 409;
    return Response::Error(code, ready.status().message() + " in the task's organisation");
  }
  return JsonResponse(200, CollectionJson(*ready));
}

Response CollectionService::Blob(Request& req) {
  if (!IsFleet(req)) return Response::Error(403, "only the fleet's service token may fetch collection blobs");
  std::string digest = req.params["digest"];
  auto all = deps_.store->ListCollections("", "");
  if (!all.ok()) return StatusResponse(all.status());
  bool known = std::any_of(all->begin(), all->end(), [&](const state::CollectionRecord& c) {
    return c.status == "ready" && (c.index_digest == digest || c.entries_digest == digest);
  });
  if (!known) return Response::Error(404, "no collection blob " + digest);
  auto blob = deps_.blobs->Get(digest);
  if (!blob.ok()) return StatusResponse(blob.status());
  Response r;
  r.status = 200;
  r.content_type = "application/octet-stream";
  r.body = std::move(blob).value();
  return r;
}

void CollectionService::AddRoutes(http::Router& r) {
  const std::string p = std::string(kPrefix) + "/collections";
  // The fleet's routes first, so "resolve" and "blobs" are not taken for names.
  r.Add("POST", p + "/resolve", [this](Request& req) { return Resolve(req); });
  r.Add("GET", p + "/blobs/{digest}", [this](Request& req) { return Blob(req); });
  r.AddAsync("POST", p, [this](Request& req, std::shared_ptr<http::Responder> resp) {
    Create(req, std::move(resp));
  });
  r.Add("GET", p, [this](Request& req) { return List(req); });
  r.Add("GET", p + "/{name}", [this](Request& req) { return Info(req); });
  r.Add("DELETE", p + "/{name}", [this](Request& req) { return Delete(req); });
  r.AddAsync("POST", p + "/{name}/query", [this](Request& req, std::shared_ptr<http::Responder> resp) {
    Query(req, std::move(resp));
  });
}

}  // namespace flowmesh::api
