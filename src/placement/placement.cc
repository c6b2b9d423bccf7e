#include "placement/placement.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "placement/placement_internal.h"

namespace flowmesh::placement {

Placer::Placer(PlacementConfig config) : impl_(std::make_unique<Impl>(config)) {
  impl_->strings.Id("");  // id 0 is "no GPU type / none"
}
Placer::~Placer() = default;

void Placer::SetOrgPolicy(const std::string& org, OrgPolicy policy) {
  uint32_t oi = impl_->OrgIndex(org);
  auto& o = impl_->orgs[oi];
  impl_->DeactivateOrg(oi);
  o.policy = policy;
  impl_->ActivateOrg(oi);
}

void Placer::UpsertWorker(const WorkerSpec& spec, double now) { impl_->UpsertWorker(spec, now); }
void Placer::RemoveWorker(const std::string& id) { impl_->RemoveWorker(id); }

void Placer::SetCordoned(const std::string& id, bool cordoned) {
  auto it = impl_->worker_ids.find(id);
  if (it == impl_->worker_ids.end()) return;
  impl_->workers[it->second].cordoned = cordoned;
  impl_->KeyFreeAt(it->second);
  impl_->Reindex(it->second);
}

void Placer::SetKeys(const std::string& id, const std::vector<std::string>& keys) {
  auto it = impl_->worker_ids.find(id);
  if (it == impl_->worker_ids.end()) return;
  uint32_t wi = it->second;
  impl_->Unindex(wi);
  auto& w = impl_->workers[wi];
  w.keys.clear();
  for (const auto& k : keys) w.keys.push_back(impl_->strings.Id(k));
  std::sort(w.keys.begin(), w.keys.end());
  w.keys.erase(std::unique(w.keys.begin(), w.keys.end()), w.keys.end());
  impl_->Index(wi);
}

void Placer::AddKey(const std::string& id, const std::string& key) {
  auto it = impl_->worker_ids.find(id);
  if (it == impl_->worker_ids.end() || key.empty()) return;
  uint32_t k = impl_->strings.Id(key);
  auto& w = impl_->workers[it->second];
  if (std::binary_search(w.keys.begin(), w.keys.end(), k)) return;
  impl_->Unindex(it->second);
  w.keys.insert(std::lower_bound(w.keys.begin(), w.keys.end(), k), k);
  impl_->Index(it->second);
}

void Placer::SetSequenceSlots(const std::string& id, int free_sequence_slots) {
  auto it = impl_->worker_ids.find(id);
  if (it == impl_->worker_ids.end()) return;
  auto& w = impl_->workers[it->second];
  w.seq_free = free_sequence_slots;
  w.seq_delta = 0;
  // Inference groups parked for want of sequences may fit now.
  for (uint32_t t : w.types) impl_->Unpark(t);
}

bool Placer::HasWorker(const std::string& id) const {
  auto it = impl_->worker_ids.find(id);
  return it != impl_->worker_ids.end() && impl_->workers[it->second].live;
}

bool Placer::Enqueue(const TaskRequest& task) { return impl_->Enqueue(task); }
bool Placer::Remove(uint64_t handle) { return impl_->Remove(handle); }
bool Placer::Queued(uint64_t handle) const { return impl_->queued_tasks.count(handle) > 0; }

std::vector<Placement> Placer::Schedule(double now, int max_placements) {
  std::vector<Placement> out;
  Placement p;
  impl_->WakeOverdue(now);
  while (static_cast<int>(out.size()) < max_placements && !impl_->active.empty()) {
    p.tasks.clear();
    if (!impl_->PlaceOne(now, p)) break;
    if (!p.tasks.empty()) out.push_back(p);
  }
  return out;
}

bool Placer::Adopt(const TaskRequest& task, const std::string& worker_id) {
  Impl& s = *impl_;
  auto wit = s.worker_ids.find(worker_id);
  if (wit == s.worker_ids.end() || s.queued_tasks.count(task.handle) || s.running_tasks.count(task.handle)) return false;
  uint32_t wi = wit->second;
  uint32_t oi = s.OrgIndex(task.org);
  auto& w = s.workers[wi];
  w.running++;
  w.used.cpu += task.demand.cpu;
  w.used.memory_mb += task.demand.memory_mb;
  w.used.gpus += task.demand.gpus;
  s.orgs[oi].running++;
  s.orgs[oi].running_gpus += task.demand.gpus;
  s.running_tasks[task.handle] = Impl::Running{wi, oi, task.demand, 0};
  if (w.free() <= 0) s.Unindex(wi);
  return true;
}

void Placer::Finished(uint64_t handle, double worker_seconds, double now) {
  impl_->Finished(handle, worker_seconds, now);
}

bool Placer::Deferred(uint64_t handle) const {
  auto it = impl_->queued_tasks.find(handle);
  if (it == impl_->queued_tasks.end()) return false;
  uint32_t gi = impl_->slab[it->second].group;
  return gi != kNone && impl_->groups[gi].waiting_on != kNone;
}

uint64_t Placer::deferrals() const { return impl_->n_deferrals; }
size_t Placer::queued() const { return impl_->n_queued; }
size_t Placer::running() const { return impl_->running_tasks.size(); }
size_t Placer::workers() const {
  size_t n = 0;
  for (const auto& w : impl_->workers) n += w.live ? 1 : 0;
  return n;
}

std::map<std::string, double> Placer::OrgUsage() const {
  std::map<std::string, double> out;
  for (const auto& o : impl_->orgs) out[o.name] = o.usage;
  return out;
}

}  // namespace flowmesh::placement
