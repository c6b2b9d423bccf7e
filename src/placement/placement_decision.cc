// One placement decision: candidate workers per batch, the utility of each pair, the pick,
// and whether the pick should rather wait for a faster busy worker (Defer).
#include "placement/placement_internal.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>
#include <vector>

namespace flowmesh::placement {

void Placer::Impl::Collect(const Group& g, bool allow_failed, std::vector<uint32_t>& out) {
  // Dedupe by stamping workers with this collection's number.
  if (stamps.size() < workers.size()) stamps.resize(workers.size(), 0);
  ++stamp;
  auto add = [&](uint32_t wi) {
    if (stamps[wi] == stamp) return;
    stamps[wi] = stamp;
    out.push_back(wi);
  };
  const int k = cfg.candidates_per_index;
  if (!g.pins.empty()) {
    for (uint32_t p : g.pins) {
      auto it = by_name.find(p);
      if (it == by_name.end()) continue;
      for (uint32_t wi : it->second) {
        if (Eligible(workers[wi], wi, g, allow_failed)) add(wi);
      }
    }
    return;
  }
  auto walk = [&](const std::set<std::pair<double, uint32_t>>& index) {
    int found = 0, seen = 0;
    for (const auto& [score, wi] : index) {
      if (found >= k || seen++ >= cfg.scan_limit) break;
      if (Eligible(workers[wi], wi, g, allow_failed)) {
        add(wi);
        ++found;
      }
    }
  };
  auto cit = classes_of_type.find(g.type);
  if (cit != classes_of_type.end()) {
    for (uint64_t ck : cit->second) {
      Class& c = classes[ck];
      if (g.gpu_type != 0 && c.gpu_type != g.gpu_type) continue;
      walk(c.by_cost);
      walk(c.by_speed);
    }
  }
  for (uint32_t key : g.keys) {
    auto h = holders.find(key);
    if (h == holders.end()) continue;
    int found = 0, seen = 0;
    for (uint32_t wi : h->second) {
      if (found >= k || seen++ >= cfg.scan_limit) break;
      if (Eligible(workers[wi], wi, g, allow_failed)) {
        add(wi);
        ++found;
      }
    }
  }
}

bool Placer::Impl::UnfailedCapableExists(const Group& g) const {
  auto cit = classes_of_type.find(g.type);
  if (cit == classes_of_type.end()) return false;
  for (uint64_t ck : cit->second) {
    auto c = classes.find(ck);
    for (uint32_t wi : c->second.members) {
      if (!FailedOn(g, wi) && CouldEverHold(workers[wi], g)) return true;
    }
  }
  return false;
}

int Placer::Impl::Capacity(const Worker& w, const Group& g, const Org& o) const {
  int n = std::min<int>(w.free(), static_cast<int>(g.live));
  if (g.category == Category::kInference) n = std::min(n, w.SequencesLeft());
  const Resources& d = g.demand;
  auto limit = [&n](double cap, double used, double per) {
    if (per > 0 && cap > 0) n = std::min(n, static_cast<int>(std::floor((cap - used) / per + kEps)));
  };
  limit(w.cap.cpu, w.used.cpu, d.cpu);
  limit(w.cap.memory_mb, w.used.memory_mb, d.memory_mb);
  if (d.gpus > 0) n = std::min(n, (w.cap.gpus - w.used.gpus) / d.gpus);
  if (o.policy.max_running_tasks > 0) n = std::min(n, o.policy.max_running_tasks - o.running);
  if (o.policy.max_gpus > 0 && d.gpus > 0) n = std::min(n, (o.policy.max_gpus - o.running_gpus) / d.gpus);
  return std::max(n, 0);
}

bool Placer::Impl::PlaceOne(double now, Placement& out) {
  std::vector<uint32_t> batch_groups;
  double vmin = 0, vmax = 0;
  int taken = 0;
  for (const auto& [vt, oi] : active) {
    if (taken++ >= cfg.candidate_batches) break;
    Org& o = orgs[oi];
    if (o.groups.empty()) continue;
    if (batch_groups.empty()) vmin = vt;
    vmax = vt;
    batch_groups.push_back(std::get<2>(*o.groups.begin()));
  }
  if (batch_groups.empty()) return false;
  std::vector<Pair> pairs;
  std::vector<uint32_t> cands;
  for (uint32_t gi : batch_groups) {
    Group& g = groups[gi];
    Org& o = orgs[g.org];
    cands.clear();
    Collect(g, false, cands);
    if (cands.empty() && !g.failed_on.empty() && !UnfailedCapableExists(g)) Collect(g, true, cands);
    uint32_t h = HeadSlab(g);
    double age = h == kNone ? 0 : std::max(0.0, now - slab[h].enqueue);
    double fair = vmax - vmin > kEps ? -(o.vtime - vmin) / (vmax - vmin) : 0.0;
    bool any = false;
    for (uint32_t wi : cands) {
      const Worker& w = workers[wi];
      int n = Capacity(w, g, o);
      if (n <= 0) continue;
      any = true;
      double speed = g.category == Category::kTraining ? w.train_speed : w.speed;
      double thr = speed * n;
      double cost = w.cost_per_hour / std::max(speed * n, kEps);
      double loc = g.keys.empty() ? 0.0 : static_cast<double>(KeyMatches(w, g)) / g.keys.size();
      pairs.push_back({gi, wi, n, thr, cost, loc, age, fair});
    }
    if (!any) {
      // Nothing can take it now: park it until a worker of its type frees capacity.
      OrgErase(gi);
      g.parked = true;
      parked[g.type].push_back(gi);
    }
  }
  if (pairs.empty()) return true;  // progress: groups were parked
  double mthr = kEps, mcost = kEps, mage = kEps;
  for (const Pair& p : pairs) {
    mthr = std::max(mthr, p.thr);
    mcost = std::max(mcost, p.cost);
    mage = std::max(mage, p.age);
  }
  const Pair* best = nullptr;
  double best_u = 0;
  for (const Pair& p : pairs) {
    double lambda = Lambda(groups[p.group].category);
    double u = lambda * p.thr / mthr - (1 - lambda) * p.cost / mcost + cfg.alpha_locality * p.loc +
               cfg.beta_age * p.age / mage + cfg.fairness_weight * p.fair;
    if (best == nullptr || u > best_u + 1e-12) {
      best = &p;
      best_u = u;
    }
  }
  if (Defer(*best, now)) return true;  // progress: the group waits for a faster worker
  Commit(*best, best_u, now, out);
  return true;
}

bool Placer::Impl::Defer(const Pair& p, double now) {
  if (cfg.defer_gain <= 0) return false;
  Group& g = groups[p.group];
  if (!g.pins.empty()) return false;
  uint32_t h = HeadSlab(g);
  if (h == kNone || !slab[h].est_known || slab[h].est <= 0) return false;
  const Worker& here = workers[p.worker];
  double e = slab[h].est, s = SpeedFor(here, g.category);
  double unit_cost = here.cost_per_hour / s;
  double bar = e / s * cfg.defer_gain;  // a wait must beat this finish time
  uint32_t alt = kNone;
  auto cit = classes_of_type.find(g.type);
  if (cit == classes_of_type.end()) return false;
  for (uint64_t ck : cit->second) {
    Class& c = classes[ck];
    if (g.gpu_type != 0 && c.gpu_type != g.gpu_type) continue;
    double cs = g.category == Category::kTraining ? c.max_train_speed : c.max_speed;
    if (cs <= s * (1 + 1e-6)) continue;
    int seen = 0;
    for (const auto& [key, wi] : c.by_free_at) {
      if (seen++ >= cfg.scan_limit || std::max(key, now) - now + e / cs >= bar) break;
      const Worker& x = workers[wi];
      double xs = SpeedFor(x, g.category);
      if (xs <= s * (1 + 1e-6) || x.cost_per_hour / xs > unit_cost * (1 + 1e-6)) continue;
      if (Fits(x, g) || FailedOn(g, wi) || !CouldEverHold(x, g)) continue;  // free ones were candidates
      // A worker past its estimate is expected to run as long again.
      double free_at = x.busy_until < now ? now + (now - x.busy_until) : x.busy_until;
      double finish = free_at + x.reserved - now + e / xs;
      if (finish < bar) {
        bar = finish;
        alt = wi;
      }
    }
  }
  if (alt == kNone) return false;
  // Only the head waits, in a group of its own: the rest of its group, and tasks queued
  // later, keep competing (and see the reservation).
  uint32_t gi = groups[p.group].key.empty() && groups[p.group].live == 1 ? p.group : SplitHead(p.group);
  Group& d = groups[gi];
  Worker& a = workers[alt];
  d.waiting_on = alt;
  d.reservation = e / SpeedFor(a, d.category);
  d.wake_at = now + bar - d.reservation;
  a.reserved += d.reservation;
  KeyFreeAt(alt);
  OrgErase(gi);
  d.parked = true;
  parked[d.type].push_back(gi);
  if (!d.listed) {
    d.listed = true;
    deferred.push_back(gi);
  }
  ++n_deferrals;
  return true;
}

uint32_t Placer::Impl::SplitHead(uint32_t gi) {
  uint32_t ni = NewGroup();
  Group& g = groups[gi];
  Group& n = groups[ni];
  n.org = g.org;
  n.type = g.type;
  n.gpu_type = g.gpu_type;
  n.batch = g.batch;
  n.priority = g.priority;
  n.category = g.category;
  n.demand = g.demand;
  n.pins = g.pins;
  n.failed_on = g.failed_on;
  n.keys = g.keys;
  uint32_t h = HeadSlab(g);
  OrgErase(gi, false);
  ++g.head;
  --g.live;
  if (g.live > 0) {
    OrgInsert(gi);
  } else {
    ReleaseGroupIfEmpty(gi);
    if (orgs[n.org].groups.empty()) DeactivateOrg(n.org);
  }
  n.queue = {h};
  n.live = 1;
  n.first_enqueue = slab[h].enqueue;
  slab[h].group = ni;
  return ni;
}

void Placer::Impl::WakeOverdue(double now) {
  size_t keep = 0;
  for (uint32_t gi : deferred) {
    Group& g = groups[gi];
    if (g.waiting_on != kNone && g.parked && now + kEps < g.wake_at) {
      deferred[keep++] = gi;
      continue;
    }
    g.listed = false;
    if (g.waiting_on != kNone) Wake(gi);  // else woken already
  }
  deferred.resize(keep);
}

void Placer::Impl::Commit(const Pair& p, double utility, double now, Placement& out) {
  Group& g = groups[p.group];
  Worker& w = workers[p.worker];
  Org& o = orgs[g.org];
  out.worker_id = w.id;
  out.utility = utility;
  out.tasks.clear();
  OrgErase(p.group, false);  // re-keyed below (its head changes)
  double charged_total = 0;
  for (int i = 0; i < p.n; ++i) {
    uint32_t si = HeadSlab(g);
    if (si == kNone) break;
    Task& t = slab[si];
    double charged = t.est / SpeedFor(w, g.category);
    w.busy_until = std::max(w.busy_until, now + charged);
    running_tasks[t.handle] = Running{p.worker, g.org, g.demand, charged, g.category == Category::kInference};
    queued_tasks.erase(t.handle);
    out.tasks.push_back(t.handle);
    charged_total += charged;
    t.group = kNone;
    free_slab.push_back(si);
    --g.live;
    --n_queued;
    --o.queued;
    w.running++;
    if (g.category == Category::kInference) --w.seq_delta;
    w.used.cpu += g.demand.cpu;
    w.used.memory_mb += g.demand.memory_mb;
    w.used.gpus += g.demand.gpus;
    o.running++;
    o.running_gpus += g.demand.gpus;
  }
  Charge(g.org, charged_total);
  KeyFreeAt(p.worker);
  if (w.free() <= 0) Unindex(p.worker);
  if (g.live == 0) {
    ReleaseGroupIfEmpty(p.group);
  } else {
    OrgInsert(p.group);
  }
  if (AtQuota(o) || o.groups.empty()) DeactivateOrg(g.org);
}

}  // namespace flowmesh::placement
