#include "state/store_rows.h"

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "state/store_sql.h"

namespace flowmesh::state::store_internal {

std::string EncodeList(const std::vector<std::string>& v) {
  return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::vector<std::string>> DecodeList(const std::string& text, std::string_view what) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Internal(fmt::format("corrupt {} list in the store", what));
  out.reserve(j.size());
  for (const auto& item : j) {
    if (!item.is_string()) return Internal(fmt::format("corrupt {} list in the store", what));
    out.push_back(item.get<std::string>());
  }
  return out;
}

WorkflowRecord ReadWorkflow(const Statement& s) {
  WorkflowRecord w;
  w.workflow_id = s.Text(0);
  w.name = s.Text(1);
  w.org_id = s.Text(2);
  w.owner_id = s.Text(3);
  w.format = s.Text(4);
  w.source_text = s.Text(5);
  w.submitted_at = s.Double(6);
  w.updated_at = s.Double(7);
  w.status = s.Text(8);
  return w;
}

Result<TaskRecord> ReadTask(const Statement& s) {
  TaskRecord t;
  t.task_id = s.Text(0);
  t.workflow_id = s.Text(1);
  t.org_id = s.Text(2);
  t.owner_id = s.Text(3);
  t.supplier_id = s.Text(4);
  t.task_name = s.Text(5);
  t.graph_node_name = s.Text(6);
  t.task_type = s.Text(7);
  t.category = s.Text(8);
  std::string status = s.Text(9);
  std::optional<TaskState> state = ParseTaskState(status);
  if (!state) {
    return Internal(fmt::format("task {} has unknown status '{}' in the store", t.task_id, status));
  }
  t.status = *state;
  t.assigned_worker = s.Text(10);
  t.submitted_at = s.Double(11);
  t.dispatched_ts = s.Double(12);
  t.started_ts = s.Double(13);
  t.finished_ts = s.Double(14);
  t.attempts = s.Int(15);
  t.max_attempts = s.Int(16);
  FM_ASSIGN_OR_RETURN(t.failed_workers, DecodeList(s.Text(17), "failed_workers"));
  FM_ASSIGN_OR_RETURN(t.depends_on, DecodeList(s.Text(18), "depends_on"));
  FM_ASSIGN_OR_RETURN(t.dependents, DecodeList(s.Text(19), "dependents"));
  t.last_error = s.Text(20);
  t.error = s.Text(21);
  t.spec_json = s.Text(22);
  t.latest_update_json = s.Text(23);
  t.result_digest = s.Text(24);
  t.usages_json = s.Text(25);
  t.merge_key = s.Text(26);
  t.merged_parent_id = s.Text(27);
  t.schedule_json = s.Text(28);
  return t;
}

EventRecord ReadEvent(const Statement& s) {
  EventRecord e;
  e.cursor = s.Int64(0);
  e.workflow_id = s.Text(1);
  e.task_id = s.Text(2);
  e.ts = s.Double(3);
  e.type = s.Text(4);
  e.json = s.Text(5);
  return e;
}

WorkerRecord ReadWorker(const Statement& s) {
  WorkerRecord w;
  w.worker_id = s.Text(0);
  w.node_id = s.Text(1);
  w.name = s.Text(2);
  w.status = s.Text(3);
  w.info_json = s.Text(4);
  w.registered_at = s.Double(5);
  w.last_seen = s.Double(6);
  w.cordoned = s.Int(7) != 0;
  return w;
}

OrgRecord ReadOrg(const Statement& s) {
  OrgRecord o;
  o.org_id = s.Text(0);
  o.name = s.Text(1);
  o.created_at = s.Double(2);
  o.policy_json = s.Text(3);
  return o;
}

UsageRecord ReadUsage(const Statement& s) {
  UsageRecord u;
  u.task_id = s.Text(0);
  u.workflow_id = s.Text(1);
  u.org_id = s.Text(2);
  u.principal_id = s.Text(3);
  u.supplier_id = s.Text(4);
  u.worker_id = s.Text(5);
  u.attempt = s.Int(6);
  u.started_at = s.Double(7);
  u.finished_at = s.Double(8);
  u.runtime_sec = s.Double(9);
  u.hardware = s.Text(10);
  u.cost_per_hour = s.Double(11);
  u.cost = s.Double(12);
  u.status = s.Text(13);
  u.prompt_tokens = s.Int64(14);
  u.completion_tokens = s.Int64(15);
  u.seq = s.Int64(16);
  return u;
}

NodeRecord ReadNode(const Statement& s) {
  NodeRecord n;
  n.node_id = s.Text(0);
  n.alias = s.Text(1);
  n.info_json = s.Text(2);
  n.registered_at = s.Double(3);
  n.last_seen = s.Double(4);
  return n;
}

ResultRecord ReadResult(const Statement& s) {
  ResultRecord r;
  r.task_id = s.Text(0);
  r.digest = s.Text(1);
  r.size = s.Int64(2);
  r.worker_id = s.Text(3);
  r.metadata_json = s.Text(4);
  r.received_at = s.Double(5);
  return r;
}

ResultFileRecord ReadResultFile(const Statement& s) {
  ResultFileRecord f;
  f.task_id = s.Text(0);
  f.path = s.Text(1);
  f.digest = s.Text(2);
  f.size = s.Int64(3);
  return f;
}


Result<std::vector<std::string>> TaskIdsOf(Connection& conn, const std::string& workflow_id) {
  FM_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare(Q().task_ids_of_workflow));
  stmt.Bind(1, workflow_id);
  return CollectRows<std::string>(stmt, [](const Statement& s) { return s.Text(0); });
}

Status FillTaskIds(Connection& conn, std::vector<WorkflowRecord>& workflows) {
  for (WorkflowRecord& w : workflows) {
    FM_ASSIGN_OR_RETURN(w.task_ids, TaskIdsOf(conn, w.workflow_id));
  }
  return Status::Ok();
}

Status GroupTxn::PutWorkflow(const WorkflowRecord& w) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_workflow));
  s.Bind(1, w.workflow_id).Bind(2, w.name).Bind(3, w.org_id).Bind(4, w.owner_id);
  s.Bind(5, w.format).Bind(6, w.source_text).Bind(7, w.submitted_at).Bind(8, w.updated_at);
  s.Bind(9, w.status);
  return s.Run();
}

Status GroupTxn::PutTask(const TaskRecord& t) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_task));
  s.Bind(1, t.task_id).Bind(2, t.workflow_id).Bind(3, t.org_id).Bind(4, t.owner_id);
  s.Bind(5, t.supplier_id).Bind(6, t.task_name).Bind(7, t.graph_node_name);
  s.Bind(8, t.task_type).Bind(9, t.category).Bind(10, TaskStateName(t.status));
  s.Bind(11, t.assigned_worker).Bind(12, t.submitted_at).Bind(13, t.dispatched_ts);
  s.Bind(14, t.started_ts).Bind(15, t.finished_ts).Bind(16, t.attempts);
  s.Bind(17, t.max_attempts).Bind(18, EncodeList(t.failed_workers));
  s.Bind(19, EncodeList(t.depends_on)).Bind(20, EncodeList(t.dependents));
  s.Bind(21, t.last_error).Bind(22, t.error).Bind(23, t.spec_json);
  s.Bind(24, t.latest_update_json).Bind(25, t.result_digest).Bind(26, t.usages_json);
  s.Bind(27, t.merge_key).Bind(28, t.merged_parent_id).Bind(29, t.schedule_json);
  return s.Run();
}

Status GroupTxn::AppendEvent(const EventRecord& e) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().insert_event));
  if (e.cursor > 0) {
    s.Bind(1, e.cursor);
  } else {
    s.BindNull(1);  // next free cursor
  }
  s.Bind(2, e.workflow_id).Bind(3, e.task_id).Bind(4, e.ts).Bind(5, e.type).Bind(6, e.json);
  return s.Run();
}

Status GroupTxn::PutWorker(const WorkerRecord& w) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_worker));
  s.Bind(1, w.worker_id).Bind(2, w.node_id).Bind(3, w.name).Bind(4, w.status);
  s.Bind(5, w.info_json).Bind(6, w.registered_at).Bind(7, w.last_seen);
  s.Bind(8, w.cordoned ? 1 : 0);
  return s.Run();
}

Status GroupTxn::PutNode(const NodeRecord& n) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_node));
  s.Bind(1, n.node_id).Bind(2, n.alias).Bind(3, n.info_json).Bind(4, n.registered_at);
  s.Bind(5, n.last_seen);
  return s.Run();
}

Status GroupTxn::PutResult(const ResultRecord& r) {
  FM_RETURN_IF_ERROR(provenance::MoveResultRef(conn_, r));
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_result));
  s.Bind(1, r.task_id).Bind(2, r.digest).Bind(3, r.size).Bind(4, r.worker_id);
  s.Bind(5, r.metadata_json).Bind(6, r.received_at);
  return s.Run();
}

Status GroupTxn::PutResultFile(const ResultFileRecord& f) {
  FM_RETURN_IF_ERROR(provenance::MoveResultFileRef(conn_, f));
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_result_file));
  s.Bind(1, f.task_id).Bind(2, f.path).Bind(3, f.digest).Bind(4, f.size);
  return s.Run();
}

Status GroupTxn::PutSetting(const std::string& key, const std::string& value) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_setting));
  s.Bind(1, key).Bind(2, value);
  return s.Run();
}

Status GroupTxn::PutOrg(const OrgRecord& o) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_org));
  s.Bind(1, o.org_id).Bind(2, o.name).Bind(3, o.created_at).Bind(4, o.policy_json);
  return s.Run();
}

Status GroupTxn::PutApiKey(const ApiKeyRecord& k) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_api_key));
  s.Bind(1, k.key_id).Bind(2, k.org_id).Bind(3, k.principal_id).Bind(4, k.name);
  s.Bind(5, EncodeList(k.scopes)).Bind(6, k.key_hash).Bind(7, k.prefix).Bind(8, k.created_at);
  s.Bind(9, k.revoked_at);
  return s.Run();
}

Status GroupTxn::AppendUsage(const UsageRecord& u) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().insert_usage));
  s.Bind(1, u.task_id).Bind(2, u.workflow_id).Bind(3, u.org_id).Bind(4, u.principal_id);
  s.Bind(5, u.supplier_id).Bind(6, u.worker_id).Bind(7, u.attempt).Bind(8, u.started_at);
  s.Bind(9, u.finished_at).Bind(10, u.runtime_sec).Bind(11, u.hardware);
  s.Bind(12, u.cost_per_hour).Bind(13, u.cost).Bind(14, u.status);
  s.Bind(15, u.prompt_tokens).Bind(16, u.completion_tokens);
  return s.Run();
}

Status GroupTxn::PutBlob(const std::string& digest, std::string_view data) {
  FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().insert_blob));
  s.Bind(1, digest).Bind(2, static_cast<int64_t>(data.size())).BindBlob(3, data).Bind(4, WallSeconds());
  FM_RETURN_IF_ERROR(s.Run());
  return provenance::TrackBlob(conn_, digest, static_cast<int64_t>(data.size()));
}

}  // namespace flowmesh::state::store_internal
