// Private to src/placement/: Placer::Impl, the state behind placement.h's Placer, shared by
// the files that implement it (one Impl, one thread; see placement.h). Split by concern:
//   placement.cc              Placer's public methods that only forward or touch one worker
//   placement_options.cc      categories and --utility options
//   placement_queue.cc        groups, enqueue/remove, Finished
//   placement_decision.cc     candidates, utility, the pick, deferral, commit
//   placement_fleet.cc        workers joining, changing and leaving
//   placement_unplaceable.cc  FindUnplaceable and its reasons
//   placement_elasticity.cc   Advise
// The small index and bookkeeping helpers stay inline here: they are on the hot path of
// every file above.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "placement/placement.h"

namespace flowmesh::placement {

inline constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
inline constexpr double kEps = 1e-9;

// Interns strings to small integers so queued entries stay compact.
class Interner {
 public:
  uint32_t Id(const std::string& s) {
    auto [it, added] = ids_.emplace(s, static_cast<uint32_t>(names_.size()));
    if (added) names_.push_back(s);
    return it->second;
  }
  uint32_t Find(const std::string& s) const {
    auto it = ids_.find(s);
    return it == ids_.end() ? kNone : it->second;
  }
  const std::string& Name(uint32_t id) const { return names_[id]; }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
};

struct Placer::Impl {
  struct Worker {
    std::string id;
    std::vector<uint32_t> names;   // interned aliases
    std::vector<uint32_t> types;   // interned task types
    uint32_t gpu_type = 0;         // interned ("" included)
    Resources cap, used;
    int slots = 1, running = 0;
    double cost_per_hour = 0, speed = 1, train_speed = 1;
    std::vector<uint32_t> keys;    // sorted interned locality keys
    bool live = false, cordoned = false, indexed = false;
    double idle_since = 0;
    // Expected time its running tasks end (from their estimates), the run time of tasks
    // waiting for it, and its key in the classes' by_free_at sets (-1: not in them).
    double busy_until = 0, reserved = 0, free_key = -1;
    // Decode sequences free at the last report (-1: not known) and the change since: -1
    // per inference task placed, +1 per one ended.
    int seq_free = -1, seq_delta = 0;
    int SequencesLeft() const { return seq_free < 0 ? std::numeric_limits<int>::max() : std::max(0, seq_free + seq_delta); }
    int free() const { return live && !cordoned ? slots - running : 0; }
  };
  // Tasks are a slab; groups hold slab indices.
  struct Task {
    uint64_t handle = 0;
    double enqueue = 0;
    float est = 1;
    bool est_known = false;
    uint32_t group = kNone;  // kNone: free slot
  };
  struct Group {
    uint32_t org = 0, type = 0, gpu_type = 0, batch = 0;
    int priority = 0;
    Category category = Category::kOther;
    Resources demand;
    std::vector<uint32_t> pins;       // interned names
    std::vector<uint32_t> failed_on;  // worker indices
    std::vector<uint32_t> keys;       // interned locality keys
    std::vector<uint32_t> queue;      // slab indices (dead ones skipped)
    size_t head = 0;
    size_t live = 0;
    bool in_org = false, parked = false;
    std::tuple<int, double, uint32_t> org_key;  // its entry in the org's ordered set
    double first_enqueue = 0;         // when the oldest queued task arrived (for FindUnplaceable)
    std::string key;                  // its key in group_ids ("" for one-task groups)
    // Waiting for a busy faster worker (see Defer): which, the run time reserved on it, and
    // when to look again if it has not freed by then.
    uint32_t waiting_on = kNone;
    double reservation = 0, wake_at = 0;
    bool listed = false;  // in `deferred`
    uint64_t possible_at = 0;  // fleet_version at which some worker could run it (0: not known)
  };
  struct Org {
    std::string name;
    OrgPolicy policy;
    double vtime = 0, usage = 0;
    int running = 0, running_gpus = 0;
    size_t queued = 0;
    bool active = false;
    std::set<std::tuple<int, double, uint32_t>> groups;  // (-priority, head age, group)
  };
  struct Running {
    uint32_t worker, org;
    Resources demand;
    double charged;  // worker-seconds charged at dispatch
    bool inference = false;
  };
  // A (task type, GPU type) class: its free workers, ordered.
  struct Class {
    uint32_t gpu_type;
    std::set<std::pair<double, uint32_t>> by_cost;   // cost per unit of work
    std::set<std::pair<double, uint32_t>> by_speed;  // -speed
    std::vector<uint32_t> members;                   // every worker, free or not
    // Live, uncordoned workers by expected free time (busy_until + reserved).
    std::set<std::pair<double, uint32_t>> by_free_at;
    double max_speed = 0, max_train_speed = 0;       // fastest member seen
  };

  PlacementConfig cfg;
  Interner strings;
  std::vector<Worker> workers;
  std::unordered_map<std::string, uint32_t> worker_ids;
  std::unordered_map<uint32_t, std::vector<uint32_t>> by_name;  // interned name -> workers
  std::unordered_map<uint64_t, Class> classes;                   // (type << 32 | gpu) -> class
  std::unordered_map<uint32_t, std::vector<uint64_t>> classes_of_type;
  std::unordered_map<uint32_t, std::set<uint32_t>> holders;      // key -> free workers holding it
  std::vector<Task> slab;
  std::vector<uint32_t> free_slab;
  std::unordered_map<uint64_t, uint32_t> queued_tasks;  // handle -> slab index
  std::unordered_map<uint64_t, Running> running_tasks;
  std::vector<Group> groups;
  std::vector<uint32_t> free_groups;
  std::unordered_map<std::string, uint32_t> group_ids;
  std::unordered_map<uint32_t, std::vector<uint32_t>> parked;  // task type -> groups
  std::vector<Org> orgs;
  std::unordered_map<uint32_t, uint32_t> org_ids;  // interned name -> org index
  std::set<std::pair<double, uint32_t>> active;    // (vtime, org)
  size_t n_queued = 0;
  std::vector<uint64_t> stamps;  // per worker: the last Collect that took it
  uint64_t stamp = 0;
  std::vector<uint32_t> deferred;  // groups waiting for a faster worker (see Defer)
  uint64_t fleet_version = 0;      // bumped whenever a worker joins, changes or leaves
  uint64_t n_deferrals = 0;

  explicit Impl(PlacementConfig c) : cfg(c) {}

  static uint64_t ClassKey(uint32_t type, uint32_t gpu) { return (uint64_t{type} << 32) | gpu; }

  uint32_t OrgIndex(const std::string& name) {
    uint32_t s = strings.Id(name);
    auto [it, added] = org_ids.emplace(s, static_cast<uint32_t>(orgs.size()));
    if (added) {
      Org o;
      o.name = name;
      orgs.push_back(std::move(o));
    }
    return it->second;
  }

  double Lambda(Category c) const {
    switch (c) {
      case Category::kInference: return cfg.lambda_inference;
      case Category::kTraining: return cfg.lambda_training;
      default: return cfg.lambda_other;
    }
  }

  // ---- worker indexes ----

  double CostKey(const Worker& w) const { return w.cost_per_hour / std::max(w.speed, kEps); }

  static double SpeedFor(const Worker& w, Category c) {
    return std::max(c == Category::kTraining ? w.train_speed : w.speed, kEps);
  }

  // Re-keys the worker in its classes' by_free_at sets.
  void KeyFreeAt(uint32_t wi) {
    Worker& w = workers[wi];
    double key = w.live && !w.cordoned ? w.busy_until + w.reserved : -1;
    if (key == w.free_key) return;
    for (uint32_t t : w.types) {
      Class& c = classes[ClassKey(t, w.gpu_type)];
      if (w.free_key >= 0) c.by_free_at.erase({w.free_key, wi});
      if (key >= 0) c.by_free_at.insert({key, wi});
    }
    w.free_key = key;
  }

  // A deferred group stops waiting: its reservation is released and it competes again.
  void Undefer(uint32_t gi) {
    Group& g = groups[gi];
    if (g.waiting_on == kNone) return;
    Worker& w = workers[g.waiting_on];
    w.reserved = std::max(0.0, w.reserved - g.reservation);
    KeyFreeAt(g.waiting_on);
    g.waiting_on = kNone;
    g.reservation = 0;
  }

  void Unindex(uint32_t wi) {
    Worker& w = workers[wi];
    if (!w.indexed) return;
    w.indexed = false;
    for (uint32_t t : w.types) {
      Class& c = classes[ClassKey(t, w.gpu_type)];
      c.by_cost.erase({CostKey(w), wi});
      c.by_speed.erase({-w.speed, wi});
    }
    for (uint32_t k : w.keys) holders[k].erase(wi);
  }

  // Puts a worker with a free slot into the indexes and wakes groups it could serve.
  void Index(uint32_t wi) {
    Worker& w = workers[wi];
    if (w.indexed || w.free() <= 0) return;
    w.indexed = true;
    for (uint32_t t : w.types) {
      Class& c = classes[ClassKey(t, w.gpu_type)];
      c.by_cost.insert({CostKey(w), wi});
      c.by_speed.insert({-w.speed, wi});
      Unpark(t);
    }
    for (uint32_t k : w.keys) holders[k].insert(wi);
  }

  void Reindex(uint32_t wi) {
    Unindex(wi);
    Index(wi);
  }

  void Unpark(uint32_t type) {
    auto it = parked.find(type);
    if (it == parked.end() || it->second.empty()) return;
    std::vector<uint32_t> list = std::move(it->second);
    it->second.clear();
    for (uint32_t g : list) Wake(g);
  }

  // A parked (or deferred) group competes again.
  void Wake(uint32_t gi) {
    Group& g = groups[gi];
    if (!g.parked) return;
    g.parked = false;
    Undefer(gi);
    if (g.live > 0) OrgInsert(gi);
  }

  // ---- groups and orgs ----

  uint32_t HeadSlab(Group& g) {
    while (g.head < g.queue.size() && slab[g.queue[g.head]].group == kNone) ++g.head;
    if (g.head > 64 && g.head * 2 > g.queue.size()) {
      g.queue.erase(g.queue.begin(), g.queue.begin() + static_cast<long>(g.head));
      g.head = 0;
    }
    return g.head < g.queue.size() ? g.queue[g.head] : kNone;
  }

  std::tuple<int, double, uint32_t> OrgKeyOf(uint32_t gi) {
    Group& g = groups[gi];
    uint32_t h = HeadSlab(g);
    return {-g.priority, h == kNone ? 0.0 : slab[h].enqueue, gi};
  }

  void OrgInsert(uint32_t gi) {
    Group& g = groups[gi];
    if (g.in_org || g.parked || g.live == 0) return;
    g.in_org = true;
    Org& o = orgs[g.org];
    g.org_key = OrgKeyOf(gi);
    o.groups.insert(g.org_key);
    ActivateOrg(g.org);
  }

  // deactivate=false re-keys a group without the org looking idle in between.
  void OrgErase(uint32_t gi, bool deactivate = true) {
    Group& g = groups[gi];
    if (!g.in_org) return;
    g.in_org = false;
    Org& o = orgs[g.org];
    o.groups.erase(g.org_key);
    if (deactivate && o.groups.empty()) DeactivateOrg(g.org);
  }

  bool AtQuota(const Org& o) const {
    if (o.policy.max_running_tasks > 0 && o.running >= o.policy.max_running_tasks) return true;
    if (o.policy.max_gpus > 0 && o.running_gpus >= o.policy.max_gpus) return true;
    return false;
  }

  void ActivateOrg(uint32_t oi) {
    Org& o = orgs[oi];
    if (o.active || o.groups.empty() || AtQuota(o)) return;
    // Coming back from idle: no credit for the time away.
    if (!active.empty()) o.vtime = std::max(o.vtime, active.begin()->first);
    o.active = true;
    active.insert({o.vtime, oi});
  }

  void DeactivateOrg(uint32_t oi) {
    Org& o = orgs[oi];
    if (!o.active) return;
    active.erase({o.vtime, oi});
    o.active = false;
  }

  void Charge(uint32_t oi, double worker_seconds) {
    Org& o = orgs[oi];
    bool was = o.active;
    if (was) active.erase({o.vtime, oi});
    o.usage += worker_seconds;
    o.vtime += worker_seconds / std::max(o.policy.weight, kEps);
    if (was) active.insert({o.vtime, oi});
  }

  void ReleaseGroupIfEmpty(uint32_t gi) {
    Group& g = groups[gi];
    if (g.live > 0) return;
    OrgErase(gi);
    Undefer(gi);
    if (!g.key.empty()) group_ids.erase(g.key);
    g.parked = false;  // a stale entry in `parked` is skipped (parked flag false)
    g.queue.clear();
    g.queue.shrink_to_fit();
    g.head = 0;
    g.key.clear();
    free_groups.push_back(gi);
  }

  // ---- fit and candidates ----

  bool Fits(const Worker& w, const Group& g) const {
    if (w.free() <= 0) return false;
    const Resources& d = g.demand;
    if (d.cpu > 0 && w.cap.cpu > 0 && w.used.cpu + d.cpu > w.cap.cpu + kEps) return false;
    if (d.memory_mb > 0 && w.cap.memory_mb > 0 && w.used.memory_mb + d.memory_mb > w.cap.memory_mb + kEps) return false;
    if (d.gpus > 0 && w.used.gpus + d.gpus > w.cap.gpus) return false;
    if (d.gpu_memory_mb > 0 && w.cap.gpu_memory_mb > 0 && d.gpu_memory_mb > w.cap.gpu_memory_mb + kEps) return false;
    return true;
  }

  // A cordoned worker counts when `cordon_blocks` is false (it may be uncordoned).
  bool CouldEverHold(const Worker& w, const Group& g, bool cordon_blocks = true) const {
    const Resources& d = g.demand;
    if (!w.live || (cordon_blocks && w.cordoned)) return false;
    if (d.cpu > 0 && w.cap.cpu > 0 && d.cpu > w.cap.cpu + kEps) return false;
    if (d.memory_mb > 0 && w.cap.memory_mb > 0 && d.memory_mb > w.cap.memory_mb + kEps) return false;
    if (d.gpus > w.cap.gpus) return false;
    if (d.gpu_memory_mb > 0 && w.cap.gpu_memory_mb > 0 && d.gpu_memory_mb > w.cap.gpu_memory_mb + kEps) return false;
    if (g.gpu_type != 0 && w.gpu_type != g.gpu_type) return false;
    if (!g.pins.empty() && !PinAllows(w, g)) return false;
    return std::find(w.types.begin(), w.types.end(), g.type) != w.types.end();
  }

  static bool PinAllows(const Worker& w, const Group& g) {
    if (g.pins.empty()) return true;
    for (uint32_t p : g.pins) {
      if (std::find(w.names.begin(), w.names.end(), p) != w.names.end()) return true;
    }
    return false;
  }

  bool FailedOn(const Group& g, uint32_t wi) const {
    return std::find(g.failed_on.begin(), g.failed_on.end(), wi) != g.failed_on.end();
  }

  bool Eligible(const Worker& w, uint32_t wi, const Group& g, bool allow_failed) const {
    if (!Fits(w, g)) return false;
    if (g.gpu_type != 0 && w.gpu_type != g.gpu_type) return false;
    if (!g.pins.empty() && !PinAllows(w, g)) return false;
    if (!allow_failed && FailedOn(g, wi)) return false;
    return std::find(w.types.begin(), w.types.end(), g.type) != w.types.end();
  }

  void Collect(const Group& g, bool allow_failed, std::vector<uint32_t>& out);

  // Whether some live worker that has not failed the group's task could ever run it.
  bool UnfailedCapableExists(const Group& g) const;

  // How many of the group's tasks the worker can take now.
  int Capacity(const Worker& w, const Group& g, const Org& o) const;

  int KeyMatches(const Worker& w, const Group& g) const {
    int m = 0;
    for (uint32_t k : g.keys) {
      if (std::binary_search(w.keys.begin(), w.keys.end(), k)) ++m;
    }
    return m;
  }

  // ---- the decision ----

  struct Pair {
    uint32_t group, worker;
    int n;
    double thr, cost, loc, age, fair;
  };

  bool PlaceOne(double now, Placement& out);

  // Whether the best pair's group should rather wait for a busy worker that is both faster
  // and no dearer per unit of work, because it would still finish the group's head task
  // sooner (by cfg.defer_gain): e.g. a training job that would run three times longer on
  // the idle slower GPU than it waits for the fast one. Earliest-finish-time with
  // reservations: each waiting group adds its run time to the worker it waits for, so a
  // queue that grows long sends the next group to the slower worker after all. The group
  // parks until a worker of its type frees capacity, or until its wait was expected to end.
  bool Defer(const Pair& p, double now);

  // Moves a group's head task into a one-task group of the same kind; returns its index.
  uint32_t SplitHead(uint32_t gi);

  uint32_t NewGroup() {
    uint32_t gi;
    if (!free_groups.empty()) {
      gi = free_groups.back();
      free_groups.pop_back();
      bool listed = groups[gi].listed;  // its entry in `deferred` stays until WakeOverdue drops it
      groups[gi] = Group{};
      groups[gi].listed = listed;
    } else {
      gi = static_cast<uint32_t>(groups.size());
      groups.emplace_back();
    }
    return gi;
  }

  // Deferred groups whose faster worker has not freed by the expected time look again.
  void WakeOverdue(double now);

  void Commit(const Pair& p, double utility, double now, Placement& out);

  // ---- queueing ----

  uint32_t GroupFor(const TaskRequest& t, uint32_t oi);

  bool Enqueue(const TaskRequest& t);

  bool Remove(uint64_t handle);

  void Finished(uint64_t handle, double worker_seconds, double now);

  // ---- workers ----

  void UpsertWorker(const WorkerSpec& s, double now);

  void RemoveWorker(const std::string& id);

  // "no worker offers taskType sft; workers offer: echo, inference" when no live worker
  // advertises the group's task type at all; "" when one does (then resources, GPU type or
  // pinning are what fail, and DescribeFleet says which).
  std::string NoWorkerOffers(const Group& g) const;

  std::string DescribeFleet(const Group& g) const;
};

}  // namespace flowmesh::placement
