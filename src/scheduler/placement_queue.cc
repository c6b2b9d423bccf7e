#include "scheduler/placement_queue.h"

#include <algorithm>


namespace flowmesh::scheduler {

using state::TaskState;

bool PlacementQueue::Enqueue(Task& t) {
  placement::TaskRequest r;
  r.handle = next_handle_++;
  r.org = t.rec.org_id;
  r.priority = t.spec.priority;
  r.task_type = t.rec.task_type;
  r.batch_key = t.spec.batch_key;
  r.category = placement::CategoryFromTaskType(t.rec.task_type, t.rec.category);
  const spec::Demand& d = t.spec.demand;
  r.demand = {d.cpu, d.memory_mb, d.gpus, d.gpu_memory_mb};
  r.gpu_type = d.gpu_type;
  r.pinned = t.pinned;
  r.failed_on = t.rec.failed_workers;
  if (!t.spec.model_key.empty()) r.locality_keys.push_back(t.spec.model_key);
  r.enqueue_time = time_->MonoSeconds();
  if (auto est = run_estimates_.find(r.batch_key); est != run_estimates_.end()) {
    r.est_seconds = est->second;
    r.est_known = true;
  }
  if (!placer_->Enqueue(r)) return false;
  t.handle = r.handle;
  t.admitted_mono = r.enqueue_time;
  t.batch_key = std::move(r.batch_key);
  t.category = r.category;
  handle_task_.emplace(r.handle, t.rec.task_id);
  return true;
}

void PlacementQueue::Adopt(Task& t) {
  placement::TaskRequest r;
  r.handle = next_handle_++;
  r.org = t.rec.org_id;
  const spec::Demand& d = t.spec.demand;
  r.demand = {d.cpu, d.memory_mb, d.gpus, d.gpu_memory_mb};
  if (!placer_->Adopt(r, t.rec.assigned_worker)) return;
  t.handle = r.handle;
  handle_task_.emplace(r.handle, t.rec.task_id);
}

void PlacementQueue::Unqueue(Task& t) {
  if (t.handle == 0 || !placer_->Queued(t.handle)) return;
  placer_->Remove(t.handle);
  handle_task_.erase(t.handle);
  t.handle = 0;
}

void PlacementQueue::Release(Task& t) {
  if (t.handle != 0 && placer_->Queued(t.handle)) {
    Unqueue(t);  // ended before it was placed
  } else if (t.handle != 0) {
    double ran = t.rec.dispatched_ts != 0
                     ? std::max(0.0, time_->WallSeconds() - t.rec.dispatched_ts)
                     : 0;
    placer_->Finished(t.handle, ran, time_->MonoSeconds());
    handle_task_.erase(t.handle);
    t.handle = 0;
    graph_->RequestDispatch();
  }
  Worker* w = workers_->Find(t.rec.assigned_worker);
  if (w != nullptr && workers_->Free(*w, t.rec.task_id, t.spec.demand)) graph_->RequestDispatch();
}

void PlacementQueue::LearnRunTime(const Task& t) {
  if (t.handle == 0 || t.batch_key.empty() || t.rec.dispatched_ts == 0 ||
      placer_->Queued(t.handle)) {
    return;
  }
  const Worker* w = workers_->Find(t.rec.assigned_worker);
  double speed = w == nullptr ? 1.0 : SpeedOf(*w, t.category);
  double ran = std::max(0.0, time_->WallSeconds() - t.rec.dispatched_ts) * speed;
  auto [it, added] = run_estimates_.try_emplace(t.batch_key, ran);
  if (!added) it->second = 0.8 * it->second + 0.2 * ran;
  if (run_estimates_.size() > 100000) run_estimates_.clear();  // batch keys are open-ended
}

std::vector<PlacementQueue::Decision> PlacementQueue::Schedule() {
  std::vector<Decision> out;
  for (auto& placement : placer_->Schedule(time_->MonoSeconds())) {
    Decision d{workers_->Find(placement.worker_id), {}};
    for (uint64_t h : placement.tasks) {
      auto hit = handle_task_.find(h);
      Task* t = hit == handle_task_.end() ? nullptr : graph_->Find(hit->second);
      if (d.worker == nullptr || t == nullptr || t->rec.status != TaskState::kPending) {
        placer_->Finished(h, 0, time_->MonoSeconds());
        if (hit != handle_task_.end()) handle_task_.erase(hit);
        if (t != nullptr) {
          t->handle = 0;
          graph_->ready().push_back(t->rec.task_id);
        }
        continue;
      }
      d.tasks.push_back(t);
    }
    if (!d.tasks.empty()) out.push_back(std::move(d));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> PlacementQueue::FindUnplaceable(double grace_s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& u : placer_->FindUnplaceable(time_->MonoSeconds(), grace_s)) {
    auto hit = handle_task_.find(u.handle);
    if (hit != handle_task_.end()) out.emplace_back(hit->second, u.reason);
  }
  return out;
}

}  // namespace flowmesh::scheduler
