// Elasticity advice: how many workers to start for the backlog, which idle ones to retire.
#include "placement/placement_internal.h"

#include <algorithm>
#include <cmath>

namespace flowmesh::placement {

ElasticityAdvice Placer::Advise(const ElasticityConfig& config, double now) const {
  ElasticityAdvice a;
  if (!config.enabled) return a;
  const Impl& s = *impl_;
  double per_slot = config.new_worker_slots > 0 && config.new_worker_cpu > 0
                        ? config.new_worker_cpu / config.new_worker_slots : 0;
  int live = 0, free = 0;
  for (const auto& w : s.workers) {
    if (!w.live) continue;
    ++live;
    int f = std::max(0, w.free());
    if (per_slot > 0 && w.cap.cpu > 0) f = std::min(f, static_cast<int>(std::floor((w.cap.cpu - w.used.cpu) / per_slot + 1e-9)));
    free += f;
  }
  // Free slots only absorb the groups that fit a live worker now; a group no free worker
  // can hold (too big for the idle ones, another task type or GPU type) needs new workers
  // however many slots are free elsewhere.
  double units = 0, unheld = 0;
  for (const auto& g : s.groups) {
    if (g.live == 0 || g.waiting_on != kNone) continue;  // waiting for a known busy worker
    double u = per_slot > 0 ? std::max(1.0, std::ceil(g.demand.cpu / per_slot - 1e-9)) : 1.0;
    bool held = std::any_of(s.workers.begin(), s.workers.end(),
                            [&](const auto& w) { return s.CouldEverHold(w, g) && s.Fits(w, g); });
    (held ? units : unheld) += u * static_cast<double>(g.live);
  }
  int backlog = std::max(0, static_cast<int>(std::ceil(units)) - free) + static_cast<int>(std::ceil(unheld));
  if (backlog > 0) {
    int want = (backlog + std::max(1, config.queued_per_new_worker) - 1) / std::max(1, config.queued_per_new_worker);
    if (config.max_workers > 0) want = std::min(want, config.max_workers - live);
    a.start = std::max(0, want);
  }
  if (s.n_queued == 0) {
    int can_retire = live - config.min_workers;
    for (const auto& w : s.workers) {
      if (can_retire <= 0) break;
      if (w.live && w.running == 0 && now - w.idle_since >= config.idle_timeout_s) {
        a.retire.push_back(w.id);
        --can_retire;
      }
    }
  }
  return a;
}

}  // namespace flowmesh::placement
