#include "placement/placement.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace flowmesh::placement {

Category CategoryFromTaskType(const std::string& task_type, const std::string& category) {
  auto has = [](const std::string& s, const char* w) { return s.find(w) != std::string::npos; };
  if (has(category, "train") || has(task_type, "train") || has(task_type, "sft") ||
      has(task_type, "lora") || has(task_type, "dpo") || has(task_type, "ppo") ||
      has(task_type, "fine")) {
    return Category::kTraining;
  }
  if (has(category, "infer") || has(task_type, "infer") || has(task_type, "llm") ||
      has(task_type, "generat") || has(task_type, "chat") || has(task_type, "rag")) {
    return Category::kInference;
  }
  return Category::kOther;
}

std::string SetPlacementOption(PlacementConfig& c, const std::string& key, double v) {
  struct Weight {
    const char* name;
    double PlacementConfig::*field;
    double lo, hi;
  };
  static const Weight kWeights[] = {
      {"lambda_inference", &PlacementConfig::lambda_inference, 0, 1},
      {"lambda_training", &PlacementConfig::lambda_training, 0, 1},
      {"lambda_other", &PlacementConfig::lambda_other, 0, 1},
      {"alpha_locality", &PlacementConfig::alpha_locality, 0, 1e6},
      {"beta_age", &PlacementConfig::beta_age, 0, 1e6},
      {"fairness_weight", &PlacementConfig::fairness_weight, 0, 1e6},
      {"defer_gain", &PlacementConfig::defer_gain, 0, 1},
  };
  struct Count {
    const char* name;
    int PlacementConfig::*field;
  };
  static const Count kCounts[] = {
      {"candidate_batches", &PlacementConfig::candidate_batches},
      {"candidates_per_index", &PlacementConfig::candidates_per_index},
      {"scan_limit", &PlacementConfig::scan_limit},
  };
  if (!std::isfinite(v)) return key + " must be a finite number";
  for (const auto& w : kWeights) {
    if (key != w.name) continue;
    if (v < w.lo || v > w.hi) {
      std::ostringstream o;
      o << key << " must be between " << w.lo << " and " << w.hi << ", got " << v;
      return o.str();
    }
    c.*w.field = v;
    return "";
  }
  for (const auto& n : kCounts) {
    if (key != n.name) continue;
    if (v < 1 || v > 1e6 || v != std::floor(v)) return key + " must be a whole number from 1 to 1000000";
    c.*n.field = static_cast<int>(v);
    return "";
  }
  std::string known;
  for (const auto& w : kWeights) known += std::string(known.empty() ? "" : ", ") + w.name;
  for (const auto& n : kCounts) known += std::string(", ") + n.name;
  return "unknown option '" + key + "' (known: " + known + ")";
}

std::string ParsePlacementOptions(PlacementConfig& config, const std::string& text) {
  PlacementConfig next = config;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(at, end - at);
    at = end + 1;
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos) return "'" + item + "' is not key=value";
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    char* stop = nullptr;
    double v = std::strtod(value.c_str(), &stop);
    if (value.empty() || stop == nullptr || *stop != '\0') return key + ": '" + value + "' is not a number";
    if (std::string e = SetPlacementOption(next, key, v); !e.empty()) return e;
  }
  config = next;
  return "";
}

namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr double kEps = 1e-9;

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

std::string DescribeResources(const Resources& r) {
  std::ostringstream o;
  o << "cpu=" << r.cpu << " memory_mb=" << r.memory_mb << " gpus=" << r.gpus;
  if (r.gpu_memory_mb > 0) o << " gpu_memory_mb=" << r.gpu_memory_mb;
  return o.str();
}

}  // namespace

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

  void Collect(const Group& g, bool allow_failed, std::vector<uint32_t>& out) {
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

  // Whether some live worker that has not failed the group's task could ever run it.
  bool UnfailedCapableExists(const Group& g) const {
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

  // How many of the group's tasks the worker can take now.
  int Capacity(const Worker& w, const Group& g, const Org& o) const {
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

  bool PlaceOne(double now, Placement& out) {
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

  // Whether the best pair's group should rather wait for a busy worker that is both faster
  // and no dearer per unit of work, because it would still finish the group's head task
  // sooner (by cfg.defer_gain): e.g. a training job that would run three times longer on
  // the idle slower GPU than it waits for the fast one. Earliest-finish-time with
  // reservations: each waiting group adds its run time to the worker it waits for, so a
  // queue that grows long sends the next group to the slower worker after all. The group
  // parks until a worker of its type frees capacity, or until its wait was expected to end.
  bool Defer(const Pair& p, double now) {
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

  // Moves a group's head task into a one-task group of the same kind; returns its index.
  uint32_t SplitHead(uint32_t gi) {
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
  void WakeOverdue(double now) {
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

  void Commit(const Pair& p, double utility, double now, Placement& out) {
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

  // ---- queueing ----

  uint32_t GroupFor(const TaskRequest& t, uint32_t oi) {
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

  bool Enqueue(const TaskRequest& t) {
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

  bool Remove(uint64_t handle) {
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

  void Finished(uint64_t handle, double worker_seconds, double now) {
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

  // ---- workers ----

  void UpsertWorker(const WorkerSpec& s, double now) {
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

  void RemoveWorker(const std::string& id) {
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

  // "no worker offers taskType sft; workers offer: echo, inference" when no live worker
  // advertises the group's task type at all; "" when one does (then resources, GPU type or
  // pinning are what fail, and DescribeFleet says which).
  std::string NoWorkerOffers(const Group& g) const {
    std::set<std::string> offered;
    for (const Worker& w : workers) {
      if (!w.live) continue;
      if (std::find(w.types.begin(), w.types.end(), g.type) != w.types.end()) return "";
      for (uint32_t t : w.types) offered.insert(strings.Name(t));
    }
    std::string out = "no worker offers taskType " + strings.Name(g.type) + "; workers offer: ";
    if (offered.empty()) return out + "nothing (no live worker)";
    bool first = true;
    for (const std::string& t : offered) {
      out += (first ? "" : ", ") + t;
      first = false;
    }
    return out;
  }

  std::string DescribeFleet(const Group& g) const {
    std::ostringstream o;
    o << "asks for task type '" << strings.Name(g.type) << "'";
    if (g.gpu_type != 0 && !strings.Name(g.gpu_type).empty()) o << " on GPU type '" << strings.Name(g.gpu_type) << "'";
    o << " with " << DescribeResources(g.demand);
    if (!g.pins.empty()) {
      o << " on worker";
      for (uint32_t p : g.pins) o << " '" << strings.Name(p) << "'";
    }
    o << "; the fleet offers ";
    std::map<std::string, int> offers;
    int live = 0;
    for (const Worker& w : workers) {
      if (!w.live) continue;
      ++live;
      bool serves = std::find(w.types.begin(), w.types.end(), g.type) != w.types.end();
      std::ostringstream d;
      d << (serves ? "" : "(other task types) ") << (strings.Name(w.gpu_type).empty() ? "cpu" : strings.Name(w.gpu_type))
        << " worker " << DescribeResources(w.cap) << (w.cordoned ? " cordoned" : "");
      if (serves) ++offers[d.str()];
    }
    if (offers.empty()) {
      o << "no live worker of that task type (" << live << " live worker(s) of other types)";
    } else {
      bool first = true;
      for (const auto& [d, n] : offers) {
        o << (first ? "" : "; ") << n << " × " << d;
        first = false;
      }
    }
    return o.str();
  }
};

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

std::vector<Unplaceable> Placer::FindUnplaceable(double now, double grace_s) {
  std::vector<Unplaceable> out;
  Impl& s = *impl_;
  for (uint32_t gi = 0; gi < s.groups.size(); ++gi) {
    auto& g = s.groups[gi];
    if (g.live == 0 || now - g.first_enqueue < grace_s) continue;
    // Judged possible against this fleet already: nothing to scan until the fleet changes.
    if (g.possible_at != 0 && g.possible_at == s.fleet_version) continue;
    bool possible = false;
    for (const auto& w : s.workers) {
      if (s.CouldEverHold(w, g, false)) {
        possible = true;
        break;
      }
    }
    if (possible) {
      g.possible_at = s.fleet_version;
      continue;
    }
    std::string reason = s.NoWorkerOffers(g);
    if (reason.empty()) reason = "no worker can run this task: it " + s.DescribeFleet(g);
    for (size_t i = g.head; i < g.queue.size(); ++i) {
      const auto& t = s.slab[g.queue[i]];
      if (t.group == gi && now - t.enqueue >= grace_s) out.push_back({t.handle, reason});
    }
  }
  return out;
}

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
  double units = 0;
  for (const auto& g : s.groups) {
    if (g.live == 0 || g.waiting_on != kNone) continue;  // waiting for a known busy worker
    double u = per_slot > 0 ? std::max(1.0, std::ceil(g.demand.cpu / per_slot - 1e-9)) : 1.0;
    units += u * static_cast<double>(g.live);
  }
  int backlog = static_cast<int>(std::ceil(units)) - free;
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
