// Queueing: tasks into groups (by org, batch key, demand, pin), taking them out, and the
// bookkeeping when a placed task ends.
#include "placement/placement_internal.h"

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace flowmesh::placement {

uint32_t Placer::Impl::GroupFor(const TaskRequest& t, uint32_t oi) {
  uint32_t type = strings.Id(t.task_type);
  uint32_t gpu = strings.Id(t.gpu_type);
  std::vector<uint32_t> failed;
  for (const auto& f : t.failed_on) {
    auto it = worker_ids.find(f);
    if (it != worker_ids.end()) failed.push_back(it->second);
  }
  std::string key;
  if (failed.empty()) {
    std::ostringstream k;
    k << oi << '\x1f' << t.priority << '\x1f' << t.batch_key << '\x1f' << t.task_type << '\x1f'
      << t.gpu_type << '\x1f' << t.demand.cpu << '\x1f' << t.demand.memory_mb << '\x1f' << t.demand.gpus
      << '\x1f' << t.demand.gpu_memory_mb << '\x1f' << static_cast<int>(t.category);
    for (const auto& p : t.pinned) k << '\x1e' << p;
    k << '\x1d';
    for (const auto& l : t.locality_keys) k << '\x1e' << l;
    key = k.str();
    auto it = group_ids.find(key);
    if (it != group_ids.end()) return it->second;
  }
  uint32_t gi = NewGroup();
  Group& g = groups[gi];
  g.org = oi;
  g.type = type;
  g.gpu_type = gpu;
  g.batch = strings.Id(t.batch_key);
  g.priority = t.priority;
  g.category = t.category;
  g.demand = t.demand;
  for (const auto& p : t.pinned) g.pins.push_back(strings.Id(p));
  g.failed_on = std::move(failed);
  for (const auto& l : t.locality_keys) {
    if (!l.empty()) g.keys.push_back(strings.Id(l));
  }
  g.key = key;
  if (!key.empty()) group_ids.emplace(std::move(key), gi);
  return gi;
}

bool Placer::Impl::Enqueue(const TaskRequest& t) {
  if (queued_tasks.count(t.handle) || running_tasks.count(t.handle)) return false;
  uint32_t oi = OrgIndex(t.org);
  uint32_t gi = GroupFor(t, oi);
  uint32_t si;
  if (!free_slab.empty()) {
    si = free_slab.back();
    free_slab.pop_back();
  } else {
    si = static_cast<uint32_t>(slab.size());
    slab.emplace_back();
  }
  slab[si] = Task{t.handle, t.enqueue_time, static_cast<float>(t.est_seconds), t.est_known, gi};
  queued_tasks.emplace(t.handle, si);
  Group& g = groups[gi];
  if (g.live == 0) g.first_enqueue = t.enqueue_time;
  g.queue.push_back(si);
  ++g.live;
  ++n_queued;
  ++orgs[oi].queued;
  if (!g.in_org && !g.parked) OrgInsert(gi);
  return true;
}

bool Placer::Impl::Remove(uint64_t handle) {
  auto it = queued_tasks.find(handle);
  if (it == queued_tasks.end()) return false;
  uint32_t si = it->second;
  queued_tasks.erase(it);
  uint32_t gi = slab[si].group;
  Group& g = groups[gi];
  bool was_head = HeadSlab(g) == si;
  if (was_head) OrgErase(gi, false);
  slab[si].group = kNone;
  free_slab.push_back(si);
  --g.live;
  --n_queued;
  --orgs[g.org].queued;
  if (g.live == 0) {
    ReleaseGroupIfEmpty(gi);
  } else if (was_head) {
    OrgInsert(gi);
  }
  if (orgs[g.org].groups.empty()) DeactivateOrg(g.org);
  return true;
}

void Placer::Impl::Finished(uint64_t handle, double worker_seconds, double now) {
  auto it = running_tasks.find(handle);
  if (it == running_tasks.end()) return;
  Running r = it->second;
  running_tasks.erase(it);
  if (worker_seconds >= 0) Charge(r.org, worker_seconds - r.charged);
  Org& o = orgs[r.org];
  o.running--;
  o.running_gpus -= r.demand.gpus;
  ActivateOrg(r.org);
  if (r.worker < workers.size()) {
    Worker& w = workers[r.worker];
    if (w.running > 0) {
      w.running--;
      if (r.inference) ++w.seq_delta;
      w.used.cpu = std::max(0.0, w.used.cpu - r.demand.cpu);
      w.used.memory_mb = std::max(0.0, w.used.memory_mb - r.demand.memory_mb);
      w.used.gpus = std::max(0, w.used.gpus - r.demand.gpus);
      if (w.running == 0) {
        w.idle_since = now;
        w.busy_until = now;
        KeyFreeAt(r.worker);
      }
      Index(r.worker);  // back in the indexes if it was full; its keys there do not change
      // Resources freed on a worker that still had a free slot: groups parked for
      // lack of resources may fit now.
      for (uint32_t t : w.types) Unpark(t);
    }
  }
}

}  // namespace flowmesh::placement
