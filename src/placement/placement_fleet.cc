// The fleet view: workers joining, changing and leaving, and their class memberships.
#include "placement/placement_internal.h"

#include <algorithm>
#include <string>

namespace flowmesh::placement {

void Placer::Impl::UpsertWorker(const WorkerSpec& s, double now) {
  ++fleet_version;
  auto [it, added] = worker_ids.emplace(s.id, static_cast<uint32_t>(workers.size()));
  uint32_t wi = it->second;
  if (added) workers.emplace_back();
  Unindex(wi);
  Worker& w = workers[wi];
  bool was_live = w.live;
  if (!added) {
    // Leave the old classes' member lists.
    w.live = false;
    KeyFreeAt(wi);
    for (uint32_t t : w.types) {
      auto& m = classes[ClassKey(t, w.gpu_type)].members;
      m.erase(std::remove(m.begin(), m.end(), wi), m.end());
    }
  }
  w.id = s.id;
  w.names.clear();
  w.names.push_back(strings.Id(s.id));
  for (const auto& n : s.names) {
    if (n.empty()) continue;
    uint32_t ni = strings.Id(n);
    if (std::find(w.names.begin(), w.names.end(), ni) == w.names.end()) w.names.push_back(ni);
  }
  for (uint32_t ni : w.names) {
    auto& list = by_name[ni];
    if (std::find(list.begin(), list.end(), wi) == list.end()) list.push_back(wi);
  }
  w.types.clear();
  for (const auto& t : s.task_types) w.types.push_back(strings.Id(t));
  w.gpu_type = strings.Id(s.gpu_type);
  w.cap = s.capacity;
  w.slots = std::max(1, s.slots);
  w.cost_per_hour = s.cost_per_hour;
  w.speed = s.speed > 0 ? s.speed : 1.0;
  w.train_speed = s.training_speed > 0 ? s.training_speed : w.speed;
  w.keys.clear();
  for (const auto& k : s.keys) w.keys.push_back(strings.Id(k));
  std::sort(w.keys.begin(), w.keys.end());
  w.keys.erase(std::unique(w.keys.begin(), w.keys.end()), w.keys.end());
  w.seq_free = s.free_sequence_slots;
  w.seq_delta = 0;
  w.live = true;
  if (!was_live) {
    w.running = 0;
    w.used = Resources{};
    w.idle_since = now;
  }
  for (uint32_t t : w.types) {
    uint64_t ck = ClassKey(t, w.gpu_type);
    auto [cit, cadded] = classes.try_emplace(ck);
    if (cadded) {
      cit->second.gpu_type = w.gpu_type;
      classes_of_type[t].push_back(ck);
    }
    cit->second.members.push_back(wi);
    cit->second.max_speed = std::max(cit->second.max_speed, w.speed);
    cit->second.max_train_speed = std::max(cit->second.max_train_speed, w.train_speed);
  }
  KeyFreeAt(wi);
  Index(wi);
}

void Placer::Impl::RemoveWorker(const std::string& id) {
  auto it = worker_ids.find(id);
  if (it == worker_ids.end()) return;
  uint32_t wi = it->second;
  ++fleet_version;
  Unindex(wi);
  Worker& w = workers[wi];
  w.live = false;
  w.running = 0;
  w.used = Resources{};
  KeyFreeAt(wi);
  // Groups waiting for it (or for any worker of its types) look again.
  for (uint32_t t : w.types) Unpark(t);
  // Its running tasks stay in running_tasks until Finished; they no longer hold it.
  for (auto& [h, r] : running_tasks) {
    if (r.worker == wi) r.worker = kNone;
  }
}

}  // namespace flowmesh::placement
