// Scheduler::Recover: the scheduler's state rebuilt from the store after a restart.
// Workers not DOWN get a grace period to prove they are alive; tasks recorded as running
// on a live worker are adopted (they hold its capacity, lead their de-duplication flight,
// and a pending interrupt is sent again); those whose worker is gone are failed
// (retryable) or, when being cancelled, cancelled.
#include "common/json_util.h"
#include "common/log.h"
#include "scheduler/rooms.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

Status Scheduler::Recover() {
  Impl& s = *impl_;
  FM_ASSIGN_OR_RETURN(int64_t cursor, s.store->MaxEventCursor());
  s.outbox.set_cursor(cursor);
  FM_RETURN_IF_ERROR(s.nodes.Recover());
  FM_ASSIGN_OR_RETURN(auto workers, s.store->ListWorkers());
  int64_t now = s.time->MonoMicros();
  for (auto& r : workers) {
    if (r.status == "DOWN") continue;
    json info = json::parse(r.info_json, nullptr, false);
    Worker* w = s.workers.Up(json{{"worker_id", r.worker_id},
                                  {"node_id", r.node_id},
                                  {"info", info.is_object() ? info : json::object()}});
    if (w == nullptr) continue;
    s.workers.SetCordoned(*w, r.cordoned);
    w->registered_at = r.registered_at;
    w->last_seen_mono = now;  // the watchdog gives it a grace period to prove it is alive
  }
  FM_RETURN_IF_ERROR(s.RecoverWorkflows());
  s.workers.RefreshSnapshot();
  s.graph.RequestDispatch();
  FM_LOG_INFO("recovered {} active workflows, {} workers, next cursor {}", s.graph.workflows(),
              s.workers.all().size(), s.outbox.cursor() + 1);
  return Status::Ok();
}

Status Scheduler::Impl::RecoverWorkflows() {
  FM_ASSIGN_OR_RETURN(auto active, store->LoadActiveWorkflows());
  for (auto& wr : active) {
    state::TaskFilter f;
    f.workflow_id = wr.workflow_id;
    FM_ASSIGN_OR_RETURN(auto recs, store->ListTasks(f));
    Workflow wf;
    wf.rec = wr;
    wf.durable = true;
    std::vector<Task> tasks;
    for (auto& r : recs) {
      Task t;
      t.rec = std::move(r);
      t.spec = spec::ParseTaskSpec(t.rec.task_type, json::parse(t.rec.spec_json, nullptr, false));
      TaskGraph::LoadHints(t);
      tasks.push_back(std::move(t));
    }
    graph.Add(std::move(wf), std::move(tasks));
  }
  std::vector<std::string> lost;
  ResumeRunning(&lost);
  for (const auto& id : lost) {
    Task* t = graph.Find(id);  // an earlier one may have finished its workflow
    if (t == nullptr) continue;
    if (t->rec.status == TaskState::kCancelling) {
      ends.Cancelled(*t);
    } else {
      ends.Fail(*t, "worker " + t->rec.assigned_worker + " is gone after a server restart", true);
    }
  }
  for (const auto& id : graph.WorkflowIds()) graph.RefreshWorkflow(id);
  return Status::Ok();
}

// Queues what is ready and adopts what runs on a live worker; `lost` gets the rest.
void Scheduler::Impl::ResumeRunning(std::vector<std::string>* lost) {
  for (const auto& wf_id : graph.WorkflowIds()) {
    Workflow* wf = graph.FindWorkflow(wf_id);
    for (const auto& id : wf->rec.task_ids) {
      Task* found = graph.Find(id);
      if (found == nullptr) continue;
      Task& t = *found;
      if (t.rec.status == TaskState::kPending && t.unmet == 0) graph.ready().push_back(id);
      if (t.rec.status != TaskState::kDispatched && t.rec.status != TaskState::kCancelling) continue;
      Worker* w = workers.Find(t.rec.assigned_worker);
      if (w == nullptr || !w->alive) {
        lost->push_back(id);
        continue;
      }
      workers.Hold(*w, id, t.spec.demand);
      queue.Adopt(t);  // it holds its worker's capacity in the placer too
      if (t.rec.status == TaskState::kDispatched) dedup.Restore(t);
      if (t.rec.status == TaskState::kCancelling) ends.SendInterrupt(t);  // may have been lost
    }
  }
}

}  // namespace flowmesh::scheduler
