#include "scheduler/submission.h"

#include <algorithm>
#include <unordered_map>

#include "common/ids.h"
#include "common/log.h"
#include "spec/task_spec.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

std::vector<state::TaskRecord> Submission::TaskRecords(const SubmitRequest& req,
                                                       const state::WorkflowRecord& wf) {
  std::unordered_map<std::string, std::string> id_of;
  for (const auto& def : req.def.tasks) id_of[def.node_name] = NewId("tsk");
  std::vector<state::TaskRecord> recs;
  for (const auto& def : req.def.tasks) {
    json hints = json::object();
    if (def.epoch >= 0) {
      const auto& members = req.def.epochs[def.epoch];
      hints["epoch"] = def.epoch;
      hints["pos"] = std::find(members.begin(), members.end(), def.node_name) - members.begin();
      hints["in_order"] = req.def.schedule_in_epoch_order;
    }
    if (!def.selected_workers.empty()) hints["workers"] = def.selected_workers;
    state::TaskRecord r;
    r.task_id = id_of[def.node_name];
    r.workflow_id = wf.workflow_id;
    r.org_id = req.org_id;
    r.owner_id = req.owner_id;
    r.task_name = def.task_name;
    r.graph_node_name = def.node_name;
    r.task_type = def.task_type;
    r.category = def.category;
    r.submitted_at = wf.submitted_at;
    r.max_attempts = def.max_attempts;
    r.spec_json = def.spec.dump();
    r.schedule_json = hints.dump();  // beside the spec, never inside it
    r.latest_update_json = "{}";
    for (const auto& dep : def.depends_on) r.depends_on.push_back(id_of[dep]);
    recs.push_back(std::move(r));
  }
  for (auto& r : recs) {
    for (const auto& dep : r.depends_on) {
      for (auto& other : recs) {
        if (other.task_id == dep) other.dependents.push_back(r.task_id);
      }
    }
  }
  return recs;
}

void Submission::Submit(SubmitRequest req, SubmitCallback done) {
  Workflow wf;
  wf.rec.workflow_id = NewId("wfl");
  wf.rec.name = req.def.name;
  wf.rec.org_id = req.org_id;
  wf.rec.owner_id = req.owner_id;
  wf.rec.format = req.format;
  wf.rec.source_text = std::move(req.source_text);
  wf.rec.submitted_at = time_->WallSeconds();
  wf.rec.updated_at = wf.rec.submitted_at;
  wf.rec.status = "PENDING";
  std::vector<state::TaskRecord> recs = TaskRecords(req, wf.rec);
  std::vector<state::EventRecord> events;
  std::vector<Task> tasks;
  for (size_t i = 0; i < recs.size(); ++i) {
    const state::TaskRecord& r = recs[i];
    wf.rec.task_ids.push_back(r.task_id);
    events.push_back(outbox_->MakeEvent("TASK_SUBMITTED", r.workflow_id, r.task_id, "", "PENDING",
                                        "", false, json{{"graph_node_name", r.graph_node_name}}));
    Task t;
    t.rec = r;
    t.spec = spec::ParseTaskSpec(r.task_type, req.def.tasks[i].spec);  // parsed once, here
    TaskGraph::LoadHints(t);
    tasks.push_back(std::move(t));
  }
  std::string wf_id = wf.rec.workflow_id;
  state::WorkflowRecord wf_rec = wf.rec;
  graph_->Add(std::move(wf), std::move(tasks));
  counters_->submitted_workflows++;
  counters_->submitted_tasks += recs.size();
  store_->Write(
      [wf_rec, recs = std::move(recs), events](state::WriteTxn& txn) -> Status {
        FM_RETURN_IF_ERROR(txn.PutWorkflow(wf_rec));
        for (const auto& r : recs) FM_RETURN_IF_ERROR(txn.PutTask(r));
        for (const auto& e : events) FM_RETURN_IF_ERROR(txn.AppendEvent(e));
        return Status::Ok();
      },
      [this, wf_id, events, done = std::move(done)](const Status& s) {
        if (s.ok()) {
          for (const auto& e : events) hub_->Publish(e);
        }
        loop_->Post([this, wf_id, s, done] { OnDurable(wf_id, s, done); });
      });
}

void Submission::OnDurable(const std::string& wf_id, const Status& s, const SubmitCallback& done) {
  Workflow* wf = graph_->FindWorkflow(wf_id);
  if (wf == nullptr) {
    done(Internal("workflow vanished before it was stored"));
    return;
  }
  if (!s.ok()) {
    graph_->Drop(wf_id);
    FM_LOG_ERROR("storing workflow {} failed: {}", wf_id, s.ToString());
    done(Status(StatusCode::kUnavailable, "could not store the workflow: " + s.message()));
    return;
  }
  wf->durable = true;
  SubmitReply reply;
  reply.workflow_id = wf_id;
  for (const auto& id : wf->rec.task_ids) {
    Task* t = graph_->Find(id);
    if (t == nullptr) continue;
    reply.tasks.push_back(Summary(*t));
    if (t->unmet == 0 && t->rec.status == TaskState::kPending) graph_->ready().push_back(id);
  }
  graph_->RequestDispatch();
  done(std::move(reply));
}

SubmittedTask Submission::Summary(const Task& t) const {
  SubmittedTask s;
  s.task_id = t.rec.task_id;
  s.status = t.rec.status;
  s.assigned_worker = t.rec.assigned_worker;
  for (const auto& dep : t.rec.depends_on) {
    const Task* d = graph_->Find(dep);
    if (d != nullptr && d->rec.status != TaskState::kDone) s.waiting_on.push_back(dep);
  }
  s.depends_on = t.rec.depends_on;
  s.attempts = t.rec.attempts;
  s.max_attempts = t.rec.max_attempts;
  s.graph_node_name = t.rec.graph_node_name;
  return s;
}

}  // namespace flowmesh::scheduler
