#include "scheduler/dedup.h"

#include <algorithm>

#include "common/hash.h"
#include "common/log.h"
#include "spec/operator.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

bool Dedup::Consider(Task& t) {
  json inputs = UpstreamInputs(t);
  std::vector<std::string> digests;
  for (const auto& in : inputs) digests.push_back(in["digest"].get<std::string>());
  t.deterministic = t.spec.deterministic;
  t.rec.merge_key = spec::OperatorFingerprint(t.rec.task_type, t.dispatch_spec, std::move(digests));
  WriteLineage(t, inputs, /*reused=*/false);
  // With de-duplication off, executors must not share work between tasks either (the
  // inference engine merges identical requests otherwise). `cache` is not part of the
  // fingerprint.
  if (scope_ == "off") t.dispatch_spec["cache"] = "never";
  if (scope_ == "off" || !t.deterministic || t.dedup_bypass) return true;
  t.dedup_key = KeyOf(t);
  if (auto hit = FindReusable(t.dedup_key)) {
    CompleteReused(t, *hit);
    return false;
  }
  auto flight = flights_.find(t.dedup_key);
  if (flight != flights_.end() && flight->second.leader != t.rec.task_id) {
    Join(t, flight->second);
    return false;
  }
  flights_[t.dedup_key].leader = t.rec.task_id;
  t.dedup_leader = true;
  return true;
}

void Dedup::Join(Task& t, const Flight& flight) {
  auto& joiners = flights_[t.dedup_key].joiners;
  if (std::find(joiners.begin(), joiners.end(), t.rec.task_id) != joiners.end()) return;
  joiners.push_back(t.rec.task_id);
  counters_->joined++;
  const Task* leader = graph_->Find(flight.leader);
  if (leader != nullptr && leader->rec.org_id == t.rec.org_id) {
    t.rec.merged_parent_id = flight.leader;  // never across organisations
  }
  t.dedup_joined = true;  // dispatch leaves it alone until its leader ends
  outbox_->PutTask(t.rec);
  outbox_->Emit("TASK_UPDATE", t.rec, "", false,
                json{{"waiting_for_twin", true}, {"fingerprint", t.rec.merge_key}});
}

std::string Dedup::KeyOf(const Task& t) const {
  return scope_ == "global" ? t.rec.merge_key : Sha256Hex(t.rec.org_id + "\n" + t.rec.merge_key);
}

void Dedup::Restore(Task& t) {
  if (scope_ == "off" || t.rec.merge_key.empty() || !t.spec.deterministic) {
    return;
  }
  t.deterministic = true;
  t.dedup_key = KeyOf(t);
  if (flights_.count(t.dedup_key) > 0) return;
  flights_[t.dedup_key].leader = t.rec.task_id;
  t.dedup_leader = true;
}

// The task's inputs for lineage: [{node, task_id, digest}] of its dependencies' results.
json Dedup::UpstreamInputs(const Task& t) const {
  json inputs = json::array();
  for (const auto& dep_id : t.rec.depends_on) {
    const Task* d = graph_->Find(dep_id);
    if (d == nullptr) continue;
    inputs.push_back(
        {{"node", d->rec.graph_node_name}, {"task_id", dep_id}, {"digest", d->rec.result_digest}});
  }
  return inputs;
}

void Dedup::WriteLineage(const Task& t, const json& inputs, bool reused) {
  state::LineageRecord l;
  l.task_id = t.rec.task_id;
  l.workflow_id = t.rec.workflow_id;
  l.fingerprint = t.rec.merge_key;
  l.deterministic = t.deterministic;
  l.inputs_json = inputs.dump(-1, ' ', false, json::error_handler_t::replace);
  l.reused = reused;
  l.recorded_at = time_->WallSeconds();
  store_->Write([l = std::move(l)](state::WriteTxn& txn) { return txn.PutLineage(l); });
}

std::optional<Dedup::Reusable> Dedup::FindReusable(const std::string& key) {
  if (auto it = committing_.find(key); it != committing_.end()) return it->second;
  auto stored = store_->GetOperatorResult(key);
  if (!stored.ok()) {
    if (stored.status().code() != StatusCode::kNotFound) {
      FM_LOG_WARN("operator result lookup failed: {}", stored.status().ToString());
    }
    return std::nullopt;
  }
  Reusable r;
  r.digest = stored->result_digest;
  r.source_task_id = stored->source_task_id;
  auto rec = store_->GetResult(stored->source_task_id);
  if (rec.ok()) r.size = rec->size;
  return r;
}

// Completes a task with a result computed for its twin: its own result record (same blob,
// files by reference), lineage marked reused, no worker involved.
void Dedup::CompleteReused(Task& t, const Reusable& r) {
  std::vector<state::ResultFileRecord> files;
  if (auto listed = store_->ListResultFiles(r.source_task_id); listed.ok()) files = *listed;
  for (auto& f : files) f.task_id = t.rec.task_id;
  state::ResultRecord rr;
  rr.task_id = t.rec.task_id;
  rr.digest = r.digest;
  rr.size = r.size;
  rr.metadata_json = json{{"reused", true}, {"fingerprint", t.rec.merge_key}}.dump();
  rr.received_at = time_->WallSeconds();
  store_->Write([rr, files = std::move(files)](state::WriteTxn& txn) -> Status {
    FM_RETURN_IF_ERROR(txn.PutResult(rr));
    for (const auto& f : files) FM_RETURN_IF_ERROR(txn.PutResultFile(f));
    return Status::Ok();
  });
  t.dedup_joined = false;
  t.rec.result_digest = r.digest;
  if (!r.result.is_null()) t.result = r.result;
  graph_->SetState(t, TaskState::kDone);
  t.rec.finished_ts = time_->WallSeconds();
  counters_->succeeded++;
  counters_->reused++;
  WriteLineage(t, UpstreamInputs(t), /*reused=*/true);
  outbox_->PutTask(t.rec);
  outbox_->Emit("TASK_SUCCEEDED", t.rec, "", false,
                json{{"reused", true}, {"fingerprint", t.rec.merge_key}, {"result_digest", r.digest}});
  graph_->ReleaseDependents(t);
  graph_->RefreshWorkflow(t.rec.workflow_id);  // may drop t
}

void Dedup::FinishFlight(Task& t) {
  t.dedup_leader = false;
  Reusable r;
  r.digest = t.rec.result_digest;
  r.size = t.result_size;
  r.result = t.result;
  r.source_task_id = t.rec.task_id;
  if (r.size == 0) {
    if (auto rec = store_->GetResult(t.rec.task_id); rec.ok()) r.size = rec->size;
  }
  std::string key = t.dedup_key;
  auto flight = flights_.find(key);
  std::vector<std::string> joiners;
  if (flight != flights_.end() && flight->second.leader == t.rec.task_id) {
    joiners = std::move(flight->second.joiners);
    flights_.erase(flight);
  }
  if (r.digest.empty()) {
    ReleaseJoiners(joiners);
    return;
  }
  state::OperatorResultRecord op;
  op.scope_key = key;
  op.fingerprint = t.rec.merge_key;
  op.task_type = t.rec.task_type;
  op.result_digest = r.digest;
  op.source_task_id = t.rec.task_id;
  op.created_at = time_->WallSeconds();
  committing_[key] = r;
  store_->Write([op](state::WriteTxn& txn) { return txn.PutOperatorResult(op); },
                [this, key](const Status&) { loop_->Post([this, key] { committing_.erase(key); }); });
  for (const auto& id : joiners) {
    Task* j = graph_->Find(id);
    if (j == nullptr || j->rec.status != TaskState::kPending || !j->dedup_joined) continue;
    CompleteReused(*j, r);
  }
}

void Dedup::ReleaseFlight(Task& t) {
  t.dedup_leader = false;
  auto flight = flights_.find(t.dedup_key);
  if (flight == flights_.end() || flight->second.leader != t.rec.task_id) return;
  std::vector<std::string> joiners = std::move(flight->second.joiners);
  flights_.erase(flight);
  ReleaseJoiners(joiners);
}

void Dedup::ReleaseJoiners(const std::vector<std::string>& joiners) {
  for (const auto& id : joiners) {
    Task* j = graph_->Find(id);
    if (j == nullptr || j->rec.status != TaskState::kPending) continue;
    j->dedup_joined = false;
    j->dedup_bypass = true;
    graph_->MarkReady(id);
  }
}

}  // namespace flowmesh::scheduler
