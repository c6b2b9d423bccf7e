// Log routes shared by workflows and tasks: cursor-paged query and the SSE stream.
// Cursors are decimal strings of the server-wide event sequence (opaque to clients).
#include <algorithm>
#include <mutex>

#include "api/access.h"
#include "api/routes/common.h"
#include "api/routes/records.h"
#include "api/service.h"
#include "common/log.h"
#include "common/thread_annotations.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

Status ApiService::CheckLogOwner(const Request& req, bool is_task, const std::string& id) const {
  if (is_task) return AccessibleTask(req, id, auth::Kind::kTask, auth::Action::kRead).status();
  auto w = store_->GetWorkflow(id);
  if (!w.ok()) return w.status();
  return CheckAccess(req, w->org_id, auth::Kind::kWorkflow, auth::Action::kRead, "workflow", id);
}

Response ApiService::QueryLogs(Request& req, bool is_task) {
  std::string id = req.params["id"];
  Status s = CheckLogOwner(req, is_task, id);
  if (!s.ok()) return StatusResponse(s);
  int limit = ParseInt(req.Query("limit"), is_task ? 200 : 500);
  if (limit < 1 || limit > 10000)
    return Response::Error(422, "query parameter 'limit' must be between 1 and 10000");
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
    entries.push_back({{"cursor", std::to_string(e.cursor)}, {"event", PublicEvent(e.json)}});
  }
  json next = events->empty() ? (q.after > 0 ? json(std::to_string(q.after)) : json(nullptr))
                              : json(std::to_string(events->back().cursor));
  json prev = events->empty() ? json(nullptr) : json(std::to_string(events->front().cursor));
  return JsonResponse(200,
                      json{{"entries", entries}, {"next_cursor", next}, {"prev_cursor", prev}});
}

void ApiService::StreamLogs(Request& req, std::shared_ptr<http::SseStream> stream, bool is_task) {
  std::string id = req.params["id"];
  std::string c = req.Header("Last-Event-ID");
  if (c.empty()) c = req.Query("cursor");
  int64_t cursor = ParseCursor(c, "cursor").ok() ? *ParseCursor(c, "cursor") : 0;

  // Live events are buffered until the backlog has been sent, then sent directly;
  // `last` suppresses anything already sent.
  struct StreamState {
    Mutex mu;
    int64_t last FM_GUARDED_BY(mu) = 0;
    bool live FM_GUARDED_BY(mu) = false;
    bool ended FM_GUARDED_BY(mu) = false;
    std::vector<state::EventRecord> buffered FM_GUARDED_BY(mu);
  };
  auto st = std::make_shared<StreamState>();
  {
    MutexLock lock(st->mu);  // not yet shared: taken for the analysis
    st->last = cursor;
  }
  auto is_end = [is_task](const state::EventRecord& e) {
    if (!is_task) return e.type == "LOG_STREAM_CLOSED";
    if (e.type == "LOG_STREAM_CLOSED") return false;
    json j = json::parse(e.json, nullptr, false);
    if (!j.is_object() || !j["status"].is_string()) return false;
    std::string s = j["status"].get<std::string>();
    return s == "DONE" || s == "FAILED" || s == "CANCELLED";
  };
  // Sends one event; caller holds st->mu. Returns false once the stream is over.
  auto deliver = [st, stream, is_end](const state::EventRecord& e) FM_REQUIRES(st->mu) {
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
    stream->Send(std::to_string(e.cursor), "log",
                 PublicEvent(e.json).dump(-1, ' ', false, json::error_handler_t::replace));
    if (is_end(e)) {
      stream->Send(std::to_string(e.cursor), "eos", json{{"cursor", e.cursor}}.dump());
      st->ended = true;
      stream->Close();
      return false;
    }
    return true;
  };
  uint64_t sub = hub_->Subscribe(id, [st, deliver](const state::EventRecord& e) {
    MutexLock lock(st->mu);
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
      MutexLock lock(st->mu);
      q.after = st->last;
    }
    auto page = store_->ReadEvents(q);
    if (!page.ok()) {
      FM_LOG_WARN("log stream {}: {}", id, page.status().ToString());
      stream->Close();
      return;
    }
    MutexLock lock(st->mu);
    for (const auto& e : *page) {
      if (!deliver(e)) return;
    }
    if (static_cast<int>(page->size()) < q.limit) break;
  }
  MutexLock lock(st->mu);
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
}

void ApiService::AddLogRoutes(http::Router& r, const std::string& kind) {
  std::string p = std::string(kPrefix) + "/" + kind + "/{id}";
  bool is_task = kind == "tasks";
  r.Add("GET", p + "/logs", [this, is_task](Request& req) { return QueryLogs(req, is_task); });
  auto precheck = [this, is_task](Request& req) -> std::optional<Response> {
    Status s = CheckLogOwner(req, is_task, req.params["id"]);
    if (!s.ok()) return StatusResponse(s);
    std::string c = req.Header("Last-Event-ID");
    if (c.empty()) c = req.Query("cursor");
    auto cursor = ParseCursor(c, "cursor");
    if (!cursor.ok()) return StatusResponse(cursor.status());
    return std::nullopt;
  };
  r.AddSse(
      p + "/logs/stream",
      [this, is_task](Request& req, std::shared_ptr<http::SseStream> stream) {
        StreamLogs(req, std::move(stream), is_task);
      },
      precheck);
}

}  // namespace flowmesh::api
