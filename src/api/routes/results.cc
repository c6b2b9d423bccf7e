// Result routes: worker uploads (JSON and multipart files), result and file downloads,
// archived task logs, and tar.gz bundles in the published layout:
// <task>/results.json (the result envelope), <task>/artifacts/…, <task>/logs/logs.jsonl.
#include <sstream>

#include "api/access.h"
#include "api/archive.h"
#include "api/routes/common.h"
#include "api/service.h"
#include "cas/content_store.h"
#include "common/clock.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

struct MultipartPart {
  std::string name, filename, data;
};

Result<std::vector<MultipartPart>> ParseMultipart(const std::string& body,
                                                  const std::string& content_type) {
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
  if (pos == std::string::npos)
    return InvalidArgument("multipart body has no part delimited by its boundary");
  for (;;) {
    pos += delim.size();
    if (body.compare(pos, 2, "--") == 0) break;
    if (body.compare(pos, 2, "\r\n") != 0)
      return InvalidArgument("malformed multipart delimiter line");
    pos += 2;
    size_t header_end = body.find("\r\n\r\n", pos);
    if (header_end == std::string::npos)
      return InvalidArgument("multipart part without headers end");
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

void ApiService::PostResult(Request& req, std::shared_ptr<http::Responder> resp) {
  json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    resp->Send(Response::Error(
        422, "result upload must be a JSON object {task_id, worker_id, metadata, result}"));
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
  auto task = AccessibleTask(req, task_id, auth::Kind::kResult, auth::Action::kWrite);
  if (!task.ok()) {
    resp->Send(StatusResponse(task.status()));
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
  rec.worker_id = TextField(body, "worker_id");
  rec.metadata_json = body.contains("metadata") ? body["metadata"].dump() : "{}";
  rec.received_at = WallSeconds();
  std::string d = prepared->digest;
  store_->Write(
      [rec, blob = std::move(prepared).value()](state::WriteTxn& txn) -> Status {
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
}

Response ApiService::GetResult(Request& req) {
  std::string id = req.params["task_id"];
  auto task = AccessibleTask(req, id, auth::Kind::kResult, auth::Action::kRead);
  if (!task.ok()) return StatusResponse(task.status());
  auto rec = store_->GetResult(id);
  if (!rec.ok()) {
    return Response::Error(404, "task " + id + " has no result (status " +
                                    std::string(state::TaskStateName(task->status)) + ")");
  }
  auto blob = blobs_->Get(rec->digest);
  if (!blob.ok()) return StatusResponse(blob.status());
  return Response::Json(200, std::move(blob).value());
}

void ApiService::PostResultFiles(Request& req, std::shared_ptr<http::Responder> resp) {
  std::string id = req.params["task_id"];
  auto task = AccessibleTask(req, id, auth::Kind::kResult, auth::Action::kWrite);
  if (!task.ok()) {
    resp->Send(StatusResponse(task.status()));
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
  for (const auto& f : files)
    out.push_back({{"path", f.path}, {"digest", f.digest}, {"size", f.size}});
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
}

Response ApiService::GetResultFile(Request& req) {
  std::string id = req.params["task_id"];
  auto task = AccessibleTask(req, id, auth::Kind::kResult, auth::Action::kRead);
  if (!task.ok()) return StatusResponse(task.status());
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
}

Result<std::string> ApiService::TaskLogLines(const std::string& task_id) const {
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
}

Response ApiService::GetResultLogs(Request& req) {
  std::string id = req.params["task_id"];
  auto task = AccessibleTask(req, id, auth::Kind::kResult, auth::Action::kRead);
  if (!task.ok()) return StatusResponse(task.status());
  auto lines = TaskLogLines(id);
  if (!lines.ok()) return StatusResponse(lines.status());
  Response resp;
  resp.content_type = "application/x-ndjson";
  resp.body = std::move(lines).value();
  return resp;
}

// The published results.json: {task_id, result, worker_id, metadata, received_at}, the
// result carrying `_artifacts` (where its files are: artifacts/ beside it in a bundle).
// Null when the task has no result.
Result<json> ApiService::ResultEnvelope(const std::string& task_id) const {
  auto rec = store_->GetResult(task_id);
  if (!rec.ok()) return json(nullptr);
  FM_ASSIGN_OR_RETURN(std::string blob, blobs_->Get(rec->digest));
  json result = ParseOr(blob, json::object());
  if (!result.is_object()) result = json{{"value", result}};
  if (!result.contains("_artifacts")) {
    result["_artifacts"] = {{"base_dir", "artifacts"},
                            {"base_url", std::string(kPrefix) + "/results/" + task_id + "/files"}};
  }
  json metadata = ParseOr(rec->metadata_json, json::object());
  return json{{"task_id", task_id},
              {"result", std::move(result)},
              {"worker_id", rec->worker_id.empty() ? json(nullptr) : json(rec->worker_id)},
              {"metadata", metadata.is_object() ? metadata : json(nullptr)},
              {"received_at", IsoTime(rec->received_at)}};
}

Response ApiService::GetResultBundle(Request& req) {
  std::string id = req.params["task_id"];
  auto task = AccessibleTask(req, id, auth::Kind::kResult, auth::Action::kRead);
  if (!task.ok()) return StatusResponse(task.status());
  if (!state::IsTerminal(task->status)) {
    return Response::Error(409, "task " + id + " is " +
                                    std::string(state::TaskStateName(task->status)) +
                                    "; bundles are available once it is finished");
  }
  std::set<std::string> include;
  // `include` repeats (?include=results&include=logs, the SDK's form) or lists parts
  // separated by commas; absent: results and artifacts.
  std::vector<std::string> given = QueryValues(req, "include");
  if (given.empty()) given.push_back("results,artifacts");
  for (const auto& value : given) {
    std::stringstream list(value);
    std::string part;
    while (std::getline(list, part, ',')) {
      if (part.empty()) continue;
      if (part != "results" && part != "artifacts" && part != "logs" && part != "all") {
        return Response::Error(422, "query parameter 'include' has unknown part '" + part +
                                        "' (expected results, artifacts, logs or all)");
      }
      include.insert(part);
    }
  }
  auto has = [&include](const std::string& what) {
    return include.count("all") > 0 || include.count(what) > 0;
  };
  std::vector<ArchiveEntry> entries;
  std::string root = id + "/";
  if (has("results")) {
    auto envelope = ResultEnvelope(id);
    if (!envelope.ok()) return StatusResponse(envelope.status());
    if (!envelope->is_null()) entries.push_back({root + "results.json", envelope->dump(2)});
  }
  if (has("artifacts")) {
    auto files = store_->ListResultFiles(id);
    if (!files.ok()) return StatusResponse(files.status());
    entries.push_back({root + "artifacts/", ""});  // present even when empty
    for (const auto& f : *files) {
      auto blob = blobs_->Get(f.digest);
      if (!blob.ok()) return StatusResponse(blob.status());
      entries.push_back({root + "artifacts/" + f.path, std::move(blob).value()});
    }
  }
  if (has("logs")) {
    auto lines = TaskLogLines(id);
    if (!lines.ok()) return StatusResponse(lines.status());
    entries.push_back({root + "logs/", ""});
    entries.push_back({root + "logs/logs.jsonl", std::move(lines).value()});
  }
  auto tgz = MakeTarGz(entries, WallSeconds());
  if (!tgz.ok()) return StatusResponse(tgz.status());
  Response resp;
  resp.content_type = "application/gzip";
  resp.headers["Content-Disposition"] = "attachment; filename=\"" + id + ".tar.gz\"";
  resp.body = std::move(tgz).value();
  return resp;
}

void ApiService::AddResultRoutes(http::Router& r) {
  std::string p = std::string(kPrefix) + "/results";
  r.AddAsync("POST", p, [this](Request& req, std::shared_ptr<http::Responder> resp) {
    PostResult(req, std::move(resp));
  });
  r.Add("GET", p + "/{task_id}", [this](Request& req) { return GetResult(req); });
  r.AddAsync("POST", p + "/{task_id}/files",
             [this](Request& req, std::shared_ptr<http::Responder> resp) {
               PostResultFiles(req, std::move(resp));
             });
  r.Add("GET", p + "/{task_id}/files/{path...}",
        [this](Request& req) { return GetResultFile(req); });
  r.Add("GET", p + "/{task_id}/logs", [this](Request& req) { return GetResultLogs(req); });
  r.Add("GET", p + "/{task_id}/bundle", [this](Request& req) { return GetResultBundle(req); });
}

}  // namespace flowmesh::api
