#include "scheduler/bus_intake.h"

#include "common/json_util.h"
#include "common/log.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

void BusIntake::Apply(const std::string& payload) {
  json m = json::parse(payload, nullptr, false);
  if (!m.is_object()) {
    FM_LOG_WARN("dropping malformed bus message ({} bytes)", payload.size());
    return;
  }
  counters_->bus_messages++;
  std::string kind = JsonOr(m, "kind", "");
  try {
    if (kind == "task_event") {
      OnTaskEvent(m);
    } else if (kind == "worker_up") {
      liveness_->Up(m);
    } else if (kind == "worker_down") {
      liveness_->Down(JsonOr(m, "worker_id", ""), JsonOr(m, "reason", "worker stopped"));
    } else if (kind == "stack_workers") {
      nodes_->OnStackWorkers(m);
    } else if (kind == "command_result") {
      nodes_->OnCommandResult(m);
    } else {
      FM_LOG_WARN("dropping bus message of unknown kind '{}'", kind);
    }
  } catch (const json::exception& e) {
    // A well-formed object with fields of the wrong types: drop it, keep serving.
    FM_LOG_WARN("dropping bus message of kind '{}': {}", kind, e.what());
  }
}

void BusIntake::OnTaskEvent(const json& m) {
  Task* found = graph_->Find(JsonOr(m, "task_id", ""));
  if (found == nullptr) return;  // finished and dropped, or unknown: nothing to do
  Task& t = *found;
  int attempt = JsonOr(m, "attempt", 0);
  std::string type = JsonOr(m, "type", "");
  std::string worker_id = JsonOr(m, "worker_id", "");
  // Idempotent per attempt: anything about another attempt, or from another worker, is stale.
  if (attempt != t.rec.attempts || worker_id != t.rec.assigned_worker) return;
  liveness_->Seen(worker_id);  // an event is as good as a heartbeat
  bool live = t.rec.status == TaskState::kDispatched || t.rec.status == TaskState::kCancelling;
  if (!live) return;
  json payload = m.contains("payload") && m["payload"].is_object() ? m["payload"] : json::object();
  if (type == "TASK_STARTED") {
    if (t.rec.started_ts != 0) return;
    t.rec.started_ts = JsonOr(m, "ts", time_->WallSeconds());
    outbox_->PutTask(t.rec);
    outbox_->Emit("TASK_STARTED", t.rec, "", false, payload);
  } else if (type == "TASK_LOG") {
    outbox_->Emit("TASK_LOG", t.rec, "", false, payload);
  } else if (type == "TASK_UPDATE") {
    internal_->Keep(t.rec.task_id, &payload);
    t.rec.latest_update_json = payload.dump();
    outbox_->PutTask(t.rec);
    outbox_->Emit("TASK_UPDATE", t.rec, "", false, payload);
  } else if (type == "TASK_SUCCEEDED") {
    internal_->Forget(t.rec.task_id);
    ends_->Succeed(t, std::move(payload));
  } else if (type == "TASK_FAILED") {
    internal_->Forget(t.rec.task_id);
    std::string error = JsonOr(m, "error", "");
    if (error.empty()) error = "task failed";
    ends_->Fail(t, error, JsonOr(m, "retryable", false));
  } else if (type == "TASK_CANCELLED") {
    internal_->Forget(t.rec.task_id);
    if (t.rec.status == TaskState::kCancelling) {
      ends_->Cancelled(t);
    } else {
      ends_->Fail(t, "cancelled by the worker", true);
    }
  }
}

}  // namespace flowmesh::scheduler
