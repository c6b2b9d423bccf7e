#include "scheduler/task_graph.h"

#include <algorithm>

#include "common/json_util.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

int Workflow::current_epoch() const {
  for (size_t i = 0; i < epoch_open.size(); ++i) {
    if (epoch_open[i] > 0) return static_cast<int>(i);
  }
  return static_cast<int>(epoch_open.size());
}

Task* TaskGraph::Find(const std::string& task_id) {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

const Task* TaskGraph::Find(const std::string& task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

Workflow* TaskGraph::FindWorkflow(const std::string& workflow_id) {
  auto it = workflows_.find(workflow_id);
  return it == workflows_.end() ? nullptr : &it->second;
}

std::vector<std::string> TaskGraph::WorkflowIds() const {
  std::vector<std::string> ids;
  ids.reserve(workflows_.size());
  for (const auto& [id, wf] : workflows_) ids.push_back(id);
  return ids;
}

Workflow& TaskGraph::Add(Workflow wf, std::vector<Task> tasks) {
  std::string wf_id = wf.rec.workflow_id;
  Workflow& stored = workflows_[wf_id] = std::move(wf);
  for (auto& t : tasks) {
    t.wf = &stored;
    ++stored.counts[static_cast<int>(t.rec.status)];
    ++live_[static_cast<int>(t.rec.status)];
    if (metrics_ != nullptr) metrics_->SeeTaskType(t.rec.task_type);
    CountEpoch(stored, t);
    std::string id = t.rec.task_id;
    tasks_[id] = std::move(t);
  }
  // Unmet dependencies: those not DONE (all of them at submission; some after a restart).
  for (const auto& id : stored.rec.task_ids) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    Task& t = it->second;
    t.unmet = 0;
    for (const auto& dep : t.rec.depends_on) {
      auto d = tasks_.find(dep);
      if (d == tasks_.end() || d->second.rec.status != TaskState::kDone) ++t.unmet;
    }
  }
  return stored;
}

void TaskGraph::Drop(const std::string& workflow_id) {
  auto wit = workflows_.find(workflow_id);
  if (wit == workflows_.end()) return;
  for (const auto& id : wit->second.rec.task_ids) {
    auto t = tasks_.find(id);
    if (t == tasks_.end()) continue;
    --live_[static_cast<int>(t->second.rec.status)];
    tasks_.erase(t);
  }
  workflows_.erase(wit);
}

void TaskGraph::SetState(Task& t, TaskState to) {
  if (t.rec.status == TaskState::kPending && to != TaskState::kPending && hooks_.left_pending) {
    hooks_.left_pending(t);
  }
  if (t.wf != nullptr) {
    --t.wf->counts[static_cast<int>(t.rec.status)];
    ++t.wf->counts[static_cast<int>(to)];
    if (t.epoch >= 0 && t.epoch < static_cast<int>(t.wf->epoch_open.size()) &&
        !state::IsTerminal(t.rec.status) && state::IsTerminal(to)) {
      if (--t.wf->epoch_open[t.epoch] == 0) dispatch_needed_ = true;  // the next epoch may go
    }
  }
  --live_[static_cast<int>(t.rec.status)];
  ++live_[static_cast<int>(to)];
  if (metrics_ != nullptr && !state::IsTerminal(t.rec.status) && state::IsTerminal(to)) {
    metrics_->TaskEnded(t.rec.task_type, state::TaskStateName(to));
  }
  t.rec.status = to;
  if (t.dedup_leader && state::IsTerminal(to) && to != TaskState::kDone &&
      hooks_.leader_ended_without_result) {
    hooks_.leader_ended_without_result(t);
  }
}

void TaskGraph::LoadHints(Task& t) {
  json h = json::parse(t.rec.schedule_json, nullptr, false);
  if (!h.is_object()) h = json::object();
  t.epoch = JsonOr(h, "epoch", -1);
  t.epoch_pos = JsonOr(h, "pos", 0);
  t.in_epoch_order = JsonOr(h, "in_order", false);
  t.pinned.clear();
  for (const auto& w : JsonOr(h, "workers", json::array())) {
    if (w.is_string()) t.pinned.push_back(w.get<std::string>());
  }
}

void TaskGraph::CountEpoch(Workflow& wf, const Task& t) {
  if (t.epoch < 0) return;
  if (static_cast<int>(wf.epoch_open.size()) <= t.epoch) wf.epoch_open.resize(t.epoch + 1, 0);
  if (!state::IsTerminal(t.rec.status)) ++wf.epoch_open[t.epoch];
}

bool TaskGraph::EpochAllows(const Task& t) const {
  if (t.epoch < 0 || t.wf == nullptr) return true;
  if (t.epoch > t.wf->current_epoch()) return false;
  if (!t.in_epoch_order) return true;
  // In epoch order: every task listed before it in its epoch has been dispatched.
  for (const auto& id : t.wf->rec.task_ids) {
    auto o = tasks_.find(id);
    if (o == tasks_.end() || &o->second == &t) continue;
    const Task& other = o->second;
    if (other.epoch == t.epoch && other.epoch_pos < t.epoch_pos &&
        other.rec.status == TaskState::kPending && other.rec.attempts == 0) {
      return false;
    }
  }
  return true;
}

std::string TaskGraph::WorkflowStatus(const std::array<int, 6>& c) {
  auto n = [&c](TaskState s) { return c[static_cast<int>(s)]; };
  if (n(TaskState::kFailed) > 0) return "FAILED";
  if (n(TaskState::kDispatched) + n(TaskState::kCancelling) > 0) return "DISPATCHED";
  if (n(TaskState::kPending) > 0) return "PENDING";
  if (n(TaskState::kCancelled) > 0) return "CANCELLED";
  return "DONE";
}

void TaskGraph::RefreshWorkflow(const std::string& workflow_id) {
  auto wit = workflows_.find(workflow_id);
  if (wit == workflows_.end()) return;
  Workflow& wf = wit->second;
  int terminal = wf.counts[static_cast<int>(TaskState::kDone)] +
                 wf.counts[static_cast<int>(TaskState::kFailed)] +
                 wf.counts[static_cast<int>(TaskState::kCancelled)];
  std::string status = WorkflowStatus(wf.counts);
  bool all_terminal = terminal == static_cast<int>(wf.rec.task_ids.size());
  if (status != wf.rec.status || all_terminal) {
    wf.rec.status = status;
    wf.rec.updated_at = time_->WallSeconds();
    outbox_->PutWorkflow(wf.rec);
  }
  if (!all_terminal) return;
  outbox_->EmitEvent(outbox_->MakeEvent("LOG_STREAM_CLOSED", workflow_id, "", "", status, "",
                                        false, json{{"workflow_status", status}}));
  // The workflow is finished and durable: drop it from memory.
  Drop(workflow_id);
}

void TaskGraph::ReleaseDependents(const Task& t) {
  for (const auto& dep_id : t.rec.dependents) {
    auto d = tasks_.find(dep_id);
    if (d == tasks_.end()) continue;
    if (--d->second.unmet == 0 && d->second.rec.status == TaskState::kPending) MarkReady(dep_id);
  }
}

void TaskGraph::MarkReady(const std::string& task_id) {
  ready_.push_back(task_id);
  dispatch_needed_ = true;
}

}  // namespace flowmesh::scheduler
