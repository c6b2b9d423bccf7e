#include "scheduler/task_ends.h"

#include <algorithm>

#include "common/json_util.h"
#include "bus/bus.h"
#include "common/log.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

void TaskEnds::RecordUsage(Task& t, const std::string& status, const json& tokens) {
  const Worker* w = d_.workers->Find(t.rec.assigned_worker);
  double started = t.rec.started_ts != 0 ? t.rec.started_ts : t.rec.dispatched_ts;
  double finished = d_.time->WallSeconds();
  double cost_per_hour = w != nullptr ? w->cost_per_hour : 0;
  std::string hardware = w != nullptr ? w->worker_type : "";
  json usages = json::parse(t.rec.usages_json, nullptr, false);
  if (!usages.is_array()) usages = json::array();
  double runtime = std::max(0.0, finished - started);
  usages.push_back({{"started_at", started},
                    {"finished_at", finished},
                    {"runtime_sec", runtime},
                    {"hardware", hardware},
                    {"cost_per_hour", cost_per_hour},
                    {"total_cost", runtime / 3600.0 * cost_per_hour},
                    {"status", status}});
  t.rec.usages_json = usages.dump();
  // One durable row per attempt, for usage queries and billing.
  state::UsageRecord row;
  row.task_id = t.rec.task_id;
  row.workflow_id = t.rec.workflow_id;
  row.org_id = t.rec.org_id;
  row.principal_id = t.rec.owner_id;
  row.supplier_id = t.rec.supplier_id;
  row.worker_id = t.rec.assigned_worker;
  row.attempt = t.rec.attempts;
  row.started_at = started;
  row.finished_at = finished;
  row.runtime_sec = runtime;
  row.hardware = hardware;
  row.cost_per_hour = cost_per_hour;
  row.cost = runtime / 3600.0 * cost_per_hour;
  row.status = status;
  auto count = [&tokens](const char* key) -> int64_t {
    if (!tokens.is_object()) return 0;
    auto v = tokens.find(key);
    return v != tokens.end() && v->is_number_integer() ? std::max<int64_t>(0, v->get<int64_t>()) : 0;
  };
  row.prompt_tokens = count("prompt_tokens");
  row.completion_tokens = count("completion_tokens");
  d_.metrics->Tokens(t.rec.task_type, row.prompt_tokens, row.completion_tokens);
  d_.store->Write([row](state::WriteTxn& txn) { return txn.AppendUsage(row); });
  if (usage_sink_) usage_sink_(row);
}

void TaskEnds::CancelRetry(Task& t) {
  if (t.retry_timer == 0) return;
  d_.deadlines->Cancel(t.retry_timer);
  t.retry_timer = 0;
}

void TaskEnds::Cascade(const Task& origin, TaskState to) {
  std::vector<std::string> stack(origin.rec.dependents.begin(), origin.rec.dependents.end());
  std::string why = (to == TaskState::kFailed ? "dependency failed: " : "dependency cancelled: ") +
                    origin.rec.task_name;
  while (!stack.empty()) {
    std::string id = stack.back();
    stack.pop_back();
    Task* d = d_.graph->Find(id);
    if (d == nullptr || d->rec.status != TaskState::kPending) continue;
    CancelRetry(*d);
    d_.graph->SetState(*d, to);
    d->rec.finished_ts = d_.time->WallSeconds();
    if (to == TaskState::kFailed) {
      d->rec.error = why;
      d_.counters->failed++;
    } else {
      d_.counters->cancelled++;
    }
    d_.outbox->PutTask(d->rec);
    d_.outbox->Emit(to == TaskState::kFailed ? "TASK_FAILED" : "TASK_CANCELLED", d->rec, d->rec.error);
    stack.insert(stack.end(), d->rec.dependents.begin(), d->rec.dependents.end());
  }
}

void TaskEnds::Succeed(Task& t, json payload) {
  if (payload.contains("result")) {
    // A small result inside the event: store it in the same group commit as DONE.
    Status stored = StoreResult(t, std::move(payload["result"]), JsonOr(payload, "metadata", json::object()));
    if (!stored.ok()) {
      Fail(t, "storing the result failed: " + stored.message(), true);
      return;
    }
    payload.erase("result");
    payload["result_digest"] = t.rec.result_digest;
  }
  d_.queue->LearnRunTime(t);
  d_.queue->Release(t);
  RecordUsage(t, "DONE", payload.contains("usage") ? payload["usage"] : json());
  d_.graph->SetState(t, TaskState::kDone);
  t.rec.finished_ts = d_.time->WallSeconds();
  if (payload.contains("result_digest") && payload["result_digest"].is_string()) {
    t.rec.result_digest = payload["result_digest"].get<std::string>();
  }
  d_.counters->succeeded++;
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_SUCCEEDED", t.rec, "", false, payload);
  if (t.dedup_leader) d_.dedup->FinishFlight(t);
  d_.graph->ReleaseDependents(t);
  d_.graph->RefreshWorkflow(t.rec.workflow_id);
}

Status TaskEnds::StoreResult(Task& t, json result, const json& metadata) {
  auto blob = d_.content->Prepare(result.dump(-1, ' ', false, json::error_handler_t::replace));
  if (!blob.ok()) return blob.status();
  state::ResultRecord rr;
  rr.task_id = t.rec.task_id;
  rr.digest = blob->digest;
  rr.size = static_cast<int64_t>(blob->size);
  rr.worker_id = t.rec.assigned_worker;
  rr.metadata_json = metadata.dump();
  rr.received_at = d_.time->WallSeconds();
  t.rec.result_digest = blob->digest;
  t.result_size = static_cast<int64_t>(blob->size);
  t.result = std::move(result);
  d_.store->Write([rr, b = std::move(blob).value()](state::WriteTxn& txn) -> Status {
    FM_RETURN_IF_ERROR(cas::ContentStore::Record(b, txn));
    return txn.PutResult(rr);
  });
  return Status::Ok();
}

void TaskEnds::Skip(Task& t) {
  Status stored = StoreResult(t, json{{"skipped", true}}, json{{"skipped", true}});
  if (!stored.ok()) {
    FM_LOG_WARN("storing the skipped result of {} failed: {}", t.rec.task_id, stored.ToString());
  }
  d_.graph->SetState(t, TaskState::kDone);
  t.rec.finished_ts = d_.time->WallSeconds();
  t.rec.latest_update_json = json{{"skipped", true}}.dump();
  d_.counters->succeeded++;
  d_.outbox->PutTask(t.rec);
  std::string why = "condition not met";
  if (const auto& c = t.spec.condition) why += ": " + c->node + "." + c->field + " != " + c->equals.dump();
  d_.outbox->Emit("TASK_SUCCEEDED", t.rec, "", false,
                  json{{"skipped", true}, {"reason", why}, {"result_digest", t.rec.result_digest}});
  d_.graph->ReleaseDependents(t);
  d_.graph->RefreshWorkflow(t.rec.workflow_id);
}

void TaskEnds::FailBeforeDispatch(Task& t, const std::string& error) {
  d_.graph->SetState(t, TaskState::kFailed);
  t.rec.error = error;
  t.rec.last_error = error;
  t.rec.finished_ts = d_.time->WallSeconds();
  d_.counters->failed++;
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_FAILED", t.rec, error, false);
  Cascade(t, TaskState::kFailed);
  d_.graph->RefreshWorkflow(t.rec.workflow_id);
}

void TaskEnds::Fail(Task& t, const std::string& error, bool retryable) {
  d_.queue->Release(t);
  if (t.rec.status == TaskState::kCancelling) {
    Cancelled(t);
    return;
  }
  RecordUsage(t, "FAILED");
  t.rec.last_error = error;
  const std::string& worker = t.rec.assigned_worker;
  auto& failed_on = t.rec.failed_workers;
  if (!worker.empty() && std::find(failed_on.begin(), failed_on.end(), worker) == failed_on.end()) {
    failed_on.push_back(worker);
  }
  if (RetryPolicy::ShouldRetry(retryable, t.rec.attempts, t.rec.max_attempts)) {
    ScheduleRetry(t, error);
    return;
  }
  d_.graph->SetState(t, TaskState::kFailed);
  t.rec.error = error;
  t.rec.finished_ts = d_.time->WallSeconds();
  d_.counters->failed++;
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_FAILED", t.rec, error, false, json{{"attempt", t.rec.attempts}});
  Cascade(t, TaskState::kFailed);
  d_.graph->RefreshWorkflow(t.rec.workflow_id);
}

void TaskEnds::ScheduleRetry(Task& t, const std::string& error) {
  d_.graph->SetState(t, TaskState::kPending);
  d_.counters->retried++;
  double delay = retry_.Delay(t.rec.attempts);
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_FAILED", t.rec, error, true, json{{"attempt", t.rec.attempts}, {"retry_in_s", delay}});
  t.rec.assigned_worker.clear();
  t.retry_timer = d_.deadlines->After(delay, [graph = d_.graph, id = t.rec.task_id] {
    Task* task = graph->Find(id);
    if (task == nullptr) return;
    task->retry_timer = 0;
    if (task->rec.status == TaskState::kPending) graph->MarkReady(id);
  });
  d_.graph->RefreshWorkflow(t.rec.workflow_id);
}

void TaskEnds::Cancelled(Task& t) {
  d_.queue->Release(t);
  if (t.rec.dispatched_ts != 0 && t.rec.status == TaskState::kCancelling) RecordUsage(t, "CANCELLED");
  d_.graph->SetState(t, TaskState::kCancelled);
  t.rec.finished_ts = d_.time->WallSeconds();
  d_.counters->cancelled++;
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_CANCELLED", t.rec);
  Cascade(t, TaskState::kCancelled);
  d_.graph->RefreshWorkflow(t.rec.workflow_id);
}

void TaskEnds::CancelPending(Task& t) {
  CancelRetry(t);
  d_.graph->SetState(t, TaskState::kCancelled);
  t.rec.finished_ts = d_.time->WallSeconds();
  d_.counters->cancelled++;
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_CANCELLED", t.rec);
}

void TaskEnds::RequestInterrupt(Task& t, const char* flag) {
  d_.graph->SetState(t, TaskState::kCancelling);
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_UPDATE", t.rec, "", false, json{{flag, true}});
  SendInterrupt(t);
}

void TaskEnds::SendInterrupt(const Task& t) {
  const Worker* w = d_.workers->Find(t.rec.assigned_worker);
  if (w == nullptr) return;
  d_.outbox->Send(bus::NodeStream(w->node_id), json{{"kind", "interrupt"},
                                                   {"worker_id", w->id},
                                                   {"task_id", t.rec.task_id},
                                                   {"attempt", t.rec.attempts}});
}

}  // namespace flowmesh::scheduler
