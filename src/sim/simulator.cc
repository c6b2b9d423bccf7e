#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <queue>
#include <unordered_map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "placement/placement.h"
#include "sim/workload.h"

namespace flowmesh::sim {

using nlohmann::json;

namespace {

constexpr double kEps = 1e-9;

enum class Policy { kFlowMesh, kTenantPool, kSharedFcfs, kNaiveStatic, kNaiveRoundRobin, kNaiveFcfs };

const std::vector<std::pair<std::string, Policy>>& Policies() {
  static const std::vector<std::pair<std::string, Policy>> kPolicies = {
      {"flowmesh", Policy::kFlowMesh},
      {"static_tenant_pool", Policy::kTenantPool},
      {"shared_fcfs_autoscaled", Policy::kSharedFcfs},
      {"naive_static_worker", Policy::kNaiveStatic},
      {"naive_round_robin", Policy::kNaiveRoundRobin},
      {"naive_fcfs_first_fit", Policy::kNaiveFcfs}};
  return kPolicies;
}

// Relative speed of a GPU type on a kind of work (cpu tasks take their stated time anywhere).
double SpeedOn(const GpuType& g, const std::string& kind) {
  if (kind == "training") return g.train_speed;
  if (kind == "inference") return g.infer_speed;
  return 1.0;
}

// One run of one policy.
class Run {
 public:
  Run(const Model& m, Policy policy, std::string name, SimOptions opt)
      : m_(m), policy_(policy), name_(std::move(name)), opt_(opt), rng_(m.seed * 7919 + 1), placer_(m.placement) {
    // De-duplication is the fabric's: the baselines are isolated pipelines or plain
    // schedulers that run every task they are given.
    scope_ = !flowmesh() ? "off" : opt.dedup_scope.empty() ? m.dedup_scope : opt.dedup_scope;
    for (const auto& [org, weight] : m.orgs) placer_.SetOrgPolicy(org, {weight, 0, 0});
  }

  PolicyResult Go() {
    for (size_t i = 0; i < m_.arrivals.size(); ++i) Push(m_.arrivals[i], kArrival, static_cast<int>(i));
    bool fixed = policy_ == Policy::kNaiveRoundRobin || policy_ == Policy::kNaiveFcfs || (flowmesh() && !m_.elastic);
    if (fixed) {
      for (size_t g = 0; g < m_.gpus.size(); ++g) {
        for (int i = 0; i < m_.gpus[g].max_count; ++i) StartWorker(static_cast<int>(g), 0, true);
      }
    } else if (flowmesh()) {
      for (int i = 0; i < m_.min_workers; ++i) StartWorker(CheapestFor(0), 0, true);
      Push(0, kTick, 0);
    } else if (pool()) {
      Push(0, kTick, 0);
    }
    if (opt_.preempt && m_.preempt_fraction > 0) Push(m_.preempt_at, kPreempt, 0);
    while (!events_.empty()) {
      Event e = events_.top();
      if (opt_.horizon_s > 0 && e.t > opt_.horizon_s) break;
      events_.pop();
      now_ = e.t;
      Handle(e);
      // Everything at this instant first, then one dispatch pass.
      if (!events_.empty() && events_.top().t <= now_ + kEps) continue;
      Dispatch();
      if (done_wfs_ == static_cast<int>(wfs_.size()) && wfs_.size() == m_.arrivals.size() && tasks_queued_ == 0) {
        // Autoscaled fleets run on until their idle workers retire: that time is paid for.
        if (!(flowmesh() && m_.elastic) && !pool()) break;
      }
    }
    double end = opt_.horizon_s > 0 ? opt_.horizon_s : now_;
    for (size_t w = 0; w < workers_.size(); ++w) Advance(static_cast<int>(w), end);
    PolicyResult r;
    r.policy = name_;
    r.workflows = static_cast<int>(wfs_.size());
    std::vector<double> lat;
    for (const auto& wf : wfs_) {
      if (wf.done_at >= 0) lat.push_back(wf.done_at - wf.arrival);
    }
    r.completed = static_cast<int>(lat.size());
    for (const auto& wf : wfs_) {
      r.by_workflow[m_.wfs[wf.def].name].push_back(wf.done_at >= 0 ? wf.done_at - wf.arrival : -1);
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&lat](double p) {
      if (lat.empty()) return 0.0;
      size_t i = static_cast<size_t>(std::ceil(p * lat.size())) - 1;
      return lat[std::min(i, lat.size() - 1)];
    };
    r.p50_s = pct(0.50);
    r.p95_s = pct(0.95);
    double sum = 0;
    for (double l : lat) sum += l;
    r.mean_s = lat.empty() ? 0 : sum / lat.size();
    double up = 0, busy = 0;
    for (const auto& w : workers_) {
      double stop = w.down_at >= 0 ? w.down_at : end;
      double uptime = std::max(0.0, stop - w.up_at);
      up += uptime;
      double cost = uptime / 3600.0 * m_.gpus[w.type].cost;
      double busy_s = w.busy_s + (w.tasks.empty() ? 0 : std::max(0.0, stop - w.busy_since));
      r.cost += cost;
      r.energy_kwh += (busy_s * m_.gpus[w.type].busy_watts + std::max(0.0, uptime - busy_s) * m_.gpus[w.type].idle_watts) / 3.6e6;
      r.cost_by_type[m_.gpus[w.type].name] += cost;
      r.busy_by_type[m_.gpus[w.type].name] += busy_s;
      busy += busy_s;
    }
    r.utilisation = up > 0 ? busy / up : 0;
    r.worker_seconds = up;
    r.workers_started = static_cast<int>(workers_.size());
    r.learned_s = learned_;
    r.task_seconds = task_seconds_;
    r.makespan_s = end;
    r.peak_workers = peak_;
    r.preempted = preempted_;
    r.retries = retries_;
    r.failed_tasks = failed_tasks_;
    r.total_tasks = static_cast<int>(tasks_.size());
    r.executed_tasks = executed_;
    r.reused_tasks = reused_;
    r.joined_tasks = joined_;
    double total = 0;
    for (const auto& [o, s] : org_ws_) total += s;
    for (const auto& [o, s] : org_ws_) r.org_share[o] = total > 0 ? s / total : 0;
    return r;
  }

 private:
  enum Kind { kArrival, kWorkerReady, kWorkerEvent, kTick, kPreempt, kRetry, kHeartbeat };
  struct Event {
    double t;
    uint64_t seq;
    Kind kind;
    int a;
    uint64_t b;
    bool operator<(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  struct TaskRun {
    int wf = 0, def = 0, unmet = 0, state = 0;  // 0 waiting, 1 queued, 2 running, 3 done
    double remaining = 0, start_at = 0, dispatched_at = 0, rate = 0, share = 0;
    int worker = -1, attempts = 0;
    std::vector<int> failed_on;
  };
  struct WfRun {
    int def = 0, left = 0, static_worker = -1, variant = -1;
    std::string org;
    double arrival = 0, done_at = -1;
    std::vector<int> tasks;
    std::deque<int> static_queue;
  };
  struct WorkerRun {
    int type = 0;
    std::string id;
    double up_at = 0, ready_at = 0, down_at = -1, last = 0, busy_s = 0, busy_since = 0, idle_since = 0;
    bool ready = false;
    std::vector<int> tasks;
    std::map<std::string, double> loaded;  // key -> when it is ready
    uint64_t version = 0;
    int owner_wf = -1;  // naive_static_worker: the workflow it serves
    std::string owner_org;  // static_tenant_pool: the tenant whose pool it is in
  };

  bool flowmesh() const { return policy_ == Policy::kFlowMesh; }
  bool pool() const { return policy_ == Policy::kTenantPool || policy_ == Policy::kSharedFcfs; }

  void Push(double t, Kind k, int a, uint64_t b = 0) { events_.push({t, seq_++, k, a, b}); }

  const TaskDef& Def(const TaskRun& t) const { return m_.wfs[wfs_[t.wf].def].tasks[t.def]; }

  // What a task computes, independent of who asks: its template task, its own inputs (the
  // variant or the parameters drawn for it) and, as the server's operator fingerprint, what
  // its dependencies computed.
  std::string Content(int ti) const {
    const TaskRun& t = tasks_[ti];
    const WfRun& wf = wfs_[t.wf];
    std::string c = m_.wfs[wf.def].name + "/" + Def(t).name + "(" + m_.arrival_inputs[t.wf][t.def] + ")";
    if (!Def(t).deps.empty()) {
      std::vector<std::string> up;
      for (int d : Def(t).deps) up.push_back(Content(wf.tasks[d]));
      std::sort(up.begin(), up.end());
      c += "<";
      for (const auto& u : up) c += u + ",";
      c += ">";
    }
    return c;
  }

  // A locality key with "{wf}" standing for what this instance's producing task made
  // (adapters it trains: content-addressed, so equal work names equal outputs).
  std::string Key(const TaskRun& t, const std::string& k) const {
    size_t at = k.find("{wf}");
    if (at == std::string::npos) return k;
    const TaskDef& d = Def(t);
    const WfRun& wf = wfs_[t.wf];
    std::string made = d.produces == k ? Content(wf.tasks[t.def])
                       : d.producer >= 0 ? Content(wf.tasks[d.producer])
                                         : "wf" + std::to_string(t.wf);
    return k.substr(0, at) + made + k.substr(at + 4);
  }

  // The operator fingerprint of a task, with the org hashed in under tenant scope.
  std::string Fingerprint(int ti) const {
    const TaskRun& t = tasks_[ti];
    std::string fp = Content(ti);
    return scope_ == "tenant" ? wfs_[t.wf].org + "|" + fp : fp;
  }

  // The batch key, as the server's: task type and model identity.
  std::string BatchKey(const TaskRun& t) const { return Def(t).task_type + "|" + Key(t, Def(t).model); }

  // Work in the task's own unit: tokens (inference), H100-seconds (training), seconds (cpu).
  static double Work(const TaskDef& d) {
    if (d.kind == "training") return d.train_h100_s;
    if (d.kind == "cpu") return d.seconds;
    return d.rows * d.tokens_per_row;
  }

  // The GPU type with the lowest cost per unit of this kind of work that holds the task.
  int CheapestForTask(const TaskDef& d) const {
    int best = -1;
    for (size_t g = 0; g < m_.gpus.size(); ++g) {
      if (m_.gpus[g].memory_gb + kEps < d.memory_gb || m_.gpus[g].max_count <= 0) continue;
      double c = m_.gpus[g].cost / SpeedOn(m_.gpus[g], d.kind);
      if (best < 0 || c < m_.gpus[best].cost / SpeedOn(m_.gpus[best], d.kind)) best = static_cast<int>(g);
    }
    return best;
  }

  int CheapestFor(double memory_gb) const {
    int best = -1;
    for (size_t g = 0; g < m_.gpus.size(); ++g) {
      if (m_.gpus[g].memory_gb + kEps < memory_gb) continue;
      double c = m_.gpus[g].cost / m_.gpus[g].infer_speed;
      if (best < 0 || c < m_.gpus[best].cost / m_.gpus[best].infer_speed) best = static_cast<int>(g);
    }
    return best < 0 ? 0 : best;
  }

  int StartWorker(int type, double now, bool instant) {
    WorkerRun w;
    w.type = type;
    w.id = "w" + std::to_string(workers_.size()) + "-" + m_.gpus[type].name;
    w.up_at = now;
    w.ready_at = instant ? now : now + m_.startup_s;
    w.last = w.ready_at;
    workers_.push_back(w);
    int wi = static_cast<int>(workers_.size()) - 1;
    Push(w.ready_at, kWorkerReady, wi);
    ++live_;
    peak_ = std::max(peak_, live_);
    return wi;
  }

  // Sequences the worker's engine could start now: its capacity less the rows in flight of
  // its inference tasks (those still loading the model included).
  int FreeSequences(int wi) const {
    double busy = 0;
    for (int ti : workers_[wi].tasks) {
      if (Def(tasks_[ti]).kind == "inference") busy += Wave(tasks_[ti]).first;
    }
    return std::max(0, m_.max_sequences - static_cast<int>(std::ceil(busy - 1e-9)));
  }

  placement::WorkerSpec SpecOf(int wi) const {
    const WorkerRun& w = workers_[wi];
    const GpuType& g = m_.gpus[w.type];
    placement::WorkerSpec s;
    s.id = w.id;
    s.task_types = {"inference", "training", "cpu"};
    s.gpu_type = g.name;
    s.capacity = {static_cast<double>(m_.slots), 0, 1, g.memory_gb * 1024};
    s.slots = m_.slots;
    s.cost_per_hour = g.cost;
    s.speed = g.infer_speed;
    s.training_speed = g.train_speed;
    for (const auto& [k, t] : w.loaded) s.keys.push_back(k);
    if (m_.heartbeat_s > 0) s.free_sequence_slots = FreeSequences(wi);
    return s;
  }

  void Handle(const Event& e) {
    switch (e.kind) {
      case kArrival: Arrive(e.a); break;
      case kWorkerReady: {
        WorkerRun& w = workers_[e.a];
        if (w.down_at >= 0) break;
        w.ready = true;
        w.last = now_;
        w.idle_since = now_;
        if (flowmesh()) {
          placer_.UpsertWorker(SpecOf(e.a), now_);
          if (m_.heartbeat_s > 0) Push(now_ + m_.heartbeat_s, kHeartbeat, e.a);
        }
        if (w.owner_wf >= 0) StaticPump(w.owner_wf);
        break;
      }
      case kWorkerEvent:
        if (workers_[e.a].version == e.b && workers_[e.a].down_at < 0) Recompute(e.a);
        break;
      case kTick:
        if (flowmesh()) {
          Elastic();
        } else {
          PoolScale();
        }
        break;
      case kPreempt: Preempt(); break;
      case kRetry: Ready(e.a); break;
      case kHeartbeat:
        // As the worker's heartbeat: the engine's free sequence slots, which the placement
        // core fills with at most one inference task per slot until the next report.
        if (workers_[e.a].down_at < 0) {
          Advance(e.a, now_);
          placer_.SetSequenceSlots(workers_[e.a].id, FreeSequences(e.a));
          Push(now_ + m_.heartbeat_s, kHeartbeat, e.a);
        }
        break;
    }
  }

  void Arrive(int i) {
    WfRun wf;
    wf.def = m_.arrival_wf[i];
    wf.arrival = now_;
    wf.org = m_.orgs[m_.arrival_org[i]].first;
    wf.variant = m_.arrival_variant[i];
    const WorkflowDef& d = m_.wfs[wf.def];
    wf.left = static_cast<int>(d.tasks.size());
    int wfi = static_cast<int>(wfs_.size());
    for (size_t k = 0; k < d.tasks.size(); ++k) {
      TaskRun t;
      t.wf = wfi;
      t.def = static_cast<int>(k);
      t.unmet = static_cast<int>(d.tasks[k].deps.size());
      wf.tasks.push_back(static_cast<int>(tasks_.size()));
      tasks_.push_back(t);
    }
    wfs_.push_back(std::move(wf));
    if (policy_ == Policy::kNaiveStatic) {
      // The fleet's count of each type holds for dedicated workers too: a workflow whose
      // type is all taken waits for one.
      if (LiveOf(d.static_gpu) < m_.gpus[d.static_gpu].max_count) {
        GiveStaticWorker(wfi, d.static_gpu);
      } else {
        static_waiting_.push_back(wfi);
      }
    }
    // The roots first: a root completed at once from a stored result readies its
    // dependents itself.
    std::vector<int> roots;
    for (int ti : wfs_[wfi].tasks) {
      if (tasks_[ti].unmet == 0) roots.push_back(ti);
    }
    for (int ti : roots) Ready(ti);
  }

  void Ready(int ti) {
    TaskRun& t = tasks_[ti];
    const TaskDef& d = Def(t);
    if (scope_ != "off") {
      // As the server's scheduler once a task's inputs are resolved: reuse a stored result,
      // join the running twin (single flight), or lead.
      std::string fp = Fingerprint(ti);
      if (results_.count(fp)) {
        ++reused_;
        t.state = 3;
        Complete(ti);
        return;
      }
      auto [flight, leads] = flights_.try_emplace(fp, Flight{ti, {}});
      if (!leads && flight->second.leader != ti) {
        ++joined_;
        t.state = 1;
        flight->second.joiners.push_back(ti);
        return;
      }
    }
    t.state = 1;
    t.remaining = Work(d);
    ++tasks_queued_;
    if (flowmesh()) {
      placement::TaskRequest r;
      r.handle = static_cast<uint64_t>(ti) + 1;
      r.org = wfs_[t.wf].org;
      r.task_type = d.kind;
      r.category = d.kind == "training"    ? placement::Category::kTraining
                   : d.kind == "inference" ? placement::Category::kInference
                                           : placement::Category::kOther;
      r.batch_key = BatchKey(t);
      r.demand = {d.kind == "training" ? static_cast<double>(m_.slots) : 1.0, 0, 0, d.memory_gb * 1024};
      if (!d.model.empty()) r.locality_keys = {Key(t, d.model)};
      for (int f : t.failed_on) r.failed_on.push_back(workers_[f].id);
      r.enqueue_time = now_;
      // As the server: an estimate only once the batch key has run (its run-time history).
      if (auto est = learned_.find(r.batch_key); est != learned_.end()) {
        r.est_seconds = est->second;
        r.est_known = true;
      }
      placer_.Enqueue(r);
    } else if (policy_ == Policy::kNaiveStatic) {
      wfs_[t.wf].static_queue.push_back(ti);
      StaticPump(t.wf);
    } else {
      fifo_.push_back(ti);
    }
  }

  bool Fits(const WorkerRun& w, const TaskDef& d) const {
    if (!w.ready || w.down_at >= 0) return false;
    if (m_.gpus[w.type].memory_gb + kEps < d.memory_gb) return false;
    int inference = 0;
    for (int ti : w.tasks) {
      if (Def(tasks_[ti]).kind == "training") return false;
      ++inference;
    }
    if (d.kind == "training") return inference == 0;
    return inference < m_.slots;
  }

  void GiveStaticWorker(int wfi, int type) {
    int wi = StartWorker(type, now_, false);
    workers_[wi].owner_wf = wfi;
    wfs_[wfi].static_worker = wi;
  }

  void StaticPump(int wfi) {
    WfRun& wf = wfs_[wfi];
    if (wf.static_worker < 0) return;
    while (!wf.static_queue.empty()) {
      int ti = wf.static_queue.front();
      if (!Fits(workers_[wf.static_worker], Def(tasks_[ti]))) return;
      wf.static_queue.pop_front();
      Start(ti, wf.static_worker);
    }
  }

  void Dispatch() {
    if (flowmesh()) {
      for (const auto& pl : placer_.Schedule(now_)) {
        int wi = WorkerIndex(pl.worker_id);
        for (uint64_t h : pl.tasks) Start(static_cast<int>(h - 1), wi);
      }
      return;
    }
    if (policy_ == Policy::kNaiveStatic) return;
    if (pool()) {
      PoolDispatch();
      return;
    }
    std::deque<int> keep;
    while (!fifo_.empty()) {
      int ti = fifo_.front();
      fifo_.pop_front();
      const TaskDef& d = Def(tasks_[ti]);
      int chosen = -1;
      size_t n = workers_.size();
      for (size_t k = 0; k < n && chosen < 0; ++k) {
        size_t wi = policy_ == Policy::kNaiveRoundRobin ? (rr_ + k) % n : k;
        if (Fits(workers_[wi], d)) chosen = static_cast<int>(wi);
      }
      if (chosen < 0) {
        keep.push_back(ti);
        continue;
      }
      if (policy_ == Policy::kNaiveRoundRobin) rr_ = (chosen + 1) % n;
      Start(ti, chosen);
    }
    fifo_ = std::move(keep);
  }

  int WorkerIndex(const std::string& id) {
    // ids are "w<index>-<type>"
    return std::stoi(id.substr(1, id.find('-') - 1));
  }

  // Pools: which pool (tenant, "" shared) and GPU type a task runs in.
  std::string PoolOwner(int ti) const { return policy_ == Policy::kTenantPool ? wfs_[tasks_[ti].wf].org : ""; }
  int PoolType(int ti) const {
    const TaskRun& t = tasks_[ti];
    return policy_ == Policy::kTenantPool ? m_.wfs[wfs_[t.wf].def].static_gpu : CheapestForTask(Def(t));
  }

  // Queued tasks in arrival order, each to a free worker of its pool and type: one with
  // its model loaded if there is one, else the first that fits.
  void PoolDispatch() {
    std::deque<int> keep;
    while (!fifo_.empty()) {
      int ti = fifo_.front();
      fifo_.pop_front();
      const TaskDef& d = Def(tasks_[ti]);
      std::string owner = PoolOwner(ti), key = d.model.empty() ? "" : Key(tasks_[ti], d.model);
      int type = PoolType(ti), chosen = -1;
      bool warm = false;
      for (size_t wi = 0; wi < workers_.size() && !warm; ++wi) {
        const WorkerRun& w = workers_[wi];
        if (w.type != type || w.owner_org != owner || !Fits(w, d)) continue;
        warm = !key.empty() && w.loaded.count(key) > 0;
        if (chosen < 0 || warm) chosen = static_cast<int>(wi);
      }
      if (chosen < 0) {
        keep.push_back(ti);
      } else {
        Start(ti, chosen);
      }
    }
    fifo_ = std::move(keep);
  }

  // Pools' autoscaler, every tick: workers idle for idle_timeout_s retire; tasks no free
  // worker took start workers of their pool and type (a worker per `slots` queued tasks,
  // one per training task), within the fleet's count of the type and max_workers.
  void PoolScale() {
    PoolDispatch();  // what this instant's arrivals and ready workers can already run
    for (size_t wi = 0; wi < workers_.size(); ++wi) {
      const WorkerRun& w = workers_[wi];
      if (w.ready && w.down_at < 0 && w.tasks.empty() && now_ - w.idle_since >= m_.idle_timeout_s - kEps) {
        Retire(static_cast<int>(wi));
      }
    }
    std::map<std::pair<std::string, int>, double> units;
    for (int ti : fifo_) {
      units[{PoolOwner(ti), PoolType(ti)}] += Def(tasks_[ti]).kind == "training" ? m_.slots : 1;
    }
    for (const auto& w : workers_) {
      if (!w.ready && w.down_at < 0) units[{w.owner_org, w.type}] -= m_.slots;  // already starting
    }
    for (auto& [pool, u] : units) {
      while (u > kEps && LiveOf(pool.second) < m_.gpus[pool.second].max_count &&
             (m_.max_workers <= 0 || live_ < m_.max_workers)) {
        int wi = StartWorker(pool.second, now_, false);
        workers_[wi].owner_org = pool.first;
        u -= m_.slots;
      }
    }
    if (done_wfs_ < static_cast<int>(m_.arrivals.size()) || live_ > 0) Push(now_ + m_.tick_s, kTick, 0);
  }

  void Start(int ti, int wi) {
    TaskRun& t = tasks_[ti];
    WorkerRun& w = workers_[wi];
    const TaskDef& d = Def(t);
    Advance(wi, now_);
    --tasks_queued_;
    t.state = 2;
    t.worker = wi;
    t.start_at = now_;
    t.dispatched_at = now_;
    if (!d.model.empty()) {
      std::string key = Key(t, d.model);
      auto it = w.loaded.find(key);
      if (it == w.loaded.end()) {
        bool adapter = key.rfind("adapter:", 0) == 0 || key.rfind("weights:", 0) == 0;
        double ready = now_ + (adapter ? m_.adapter_load_s : m_.model_load_s);
        w.loaded[key] = ready;
        if (flowmesh()) placer_.AddKey(w.id, key);
        t.start_at = ready;
      } else {
        t.start_at = std::max(now_, it->second);
      }
    }
    if (w.tasks.empty()) w.busy_since = now_;
    w.tasks.push_back(ti);
    Recompute(wi);
  }

  // Moves every started task on the worker forward to `to` at the current rates.
  void Advance(int wi, double to) {
    WorkerRun& w = workers_[wi];
    if (!w.ready || to <= w.last) return;
    double dt = to - w.last;
    for (int ti : w.tasks) {
      TaskRun& t = tasks_[ti];
      if (t.start_at > w.last + kEps) continue;
      t.remaining -= t.rate * dt;
      org_ws_[wfs_[t.wf].org] += t.share * dt;
    }
    w.last = to;
  }

  // An inference task's rows decode in waves of up to per_task_sequences sequences of equal
  // length, which advance together and end together (as llama-batched-bench measures the
  // curve). Returns the sequences of the current wave and the tokens left in it.
  std::pair<double, double> Wave(const TaskRun& t) const {
    const TaskDef& d = Def(t);
    double cap = m_.per_task_sequences, row = d.tokens_per_row;
    double done = std::max(0.0, d.rows * row - t.remaining);
    double waves = std::floor(done / (cap * row) + 1e-9);
    double seqs = std::max(1.0, std::min(cap, std::ceil(d.rows - waves * cap - 1e-9)));
    double left = std::min((waves + 1) * cap * row, d.rows * row) - done;
    return {seqs, std::max(left, 0.0)};
  }

  void Recompute(int wi) {
    Advance(wi, now_);
    std::vector<int> finished;
    for (int ti : workers_[wi].tasks) {
      const TaskRun& t = tasks_[ti];
      if (t.start_at <= now_ + kEps && t.remaining <= 1e-6) finished.push_back(ti);
    }
    for (int ti : finished) Finish(ti, wi);
    // Only now: finishing may start workers (naive_static_worker), which moves workers_.
    WorkerRun& w = workers_[wi];
    const GpuType& g = m_.gpus[w.type];
    // Rates: processor sharing of the curve among started inference tasks.
    double seqs = 0;
    for (int ti : w.tasks) {
      TaskRun& t = tasks_[ti];
      if (t.start_at > now_ + kEps || Def(t).kind != "inference") continue;
      seqs += Wave(t).first;
    }
    double capped = std::min<double>(seqs, m_.max_sequences);
    double tp = Curve(m_, capped) * g.infer_speed;
    double next = -1;
    for (int ti : w.tasks) {
      TaskRun& t = tasks_[ti];
      const TaskDef& d = Def(t);
      if (t.start_at > now_ + kEps) {
        t.rate = 0;
        t.share = 0;
        next = next < 0 ? t.start_at : std::min(next, t.start_at);
        continue;
      }
      if (d.kind == "training") {
        t.rate = g.train_speed;
        t.share = 1;
      } else if (d.kind == "cpu") {
        t.rate = 1;
        t.share = 0;  // a slot, not the engine: org shares count engine and GPU time
      } else {
        double c = Wave(t).first;
        t.rate = seqs > 0 ? tp * c / seqs : 0;
        t.share = seqs > 0 ? c / seqs : 0;
      }
      if (t.rate > 0) {
        // Next change: this task ends, or its wave of sequences does.
        double until = t.remaining / t.rate;
        if (d.kind == "inference") until = std::min(until, Wave(t).second / t.rate + 1e-6);
        double at = now_ + std::max(until, 1e-6);
        next = next < 0 ? at : std::min(next, at);
      }
    }
    ++w.version;
    if (next >= 0) Push(next, kWorkerEvent, wi, w.version);
  }

  void Finish(int ti, int wi) {
    TaskRun& t = tasks_[ti];
    WorkerRun& w = workers_[wi];
    const TaskDef& d = Def(t);
    t.state = 3;
    ++executed_;
    task_seconds_ += now_ - t.dispatched_at;
    w.tasks.erase(std::find(w.tasks.begin(), w.tasks.end(), ti));
    if (w.tasks.empty()) {
      w.busy_s += now_ - w.busy_since;
      w.idle_since = now_;
    }
    if (!d.produces.empty()) {
      w.loaded[Key(t, d.produces)] = now_;
      if (flowmesh()) placer_.AddKey(w.id, Key(t, d.produces));
    }
    if (flowmesh()) {
      // As the server (PlacementQueue::Release, LearnRunTime): charge the org the time the
      // task ran, and learn its batch key's run time at speed 1 (moving average, 0.2 new).
      double ran = now_ - t.dispatched_at;
      placer_.Finished(static_cast<uint64_t>(ti) + 1, ran, now_);
      double at_speed_1 = ran * SpeedOn(m_.gpus[w.type], d.kind);
      auto [it, added] = learned_.try_emplace(BatchKey(t), at_speed_1);
      if (!added) it->second = 0.8 * it->second + 0.2 * at_speed_1;
    }
    if (scope_ != "off") {
      std::string fp = Fingerprint(ti);
      results_.insert(fp);
      auto flight = flights_.find(fp);
      if (flight != flights_.end()) {
        std::vector<int> joiners = std::move(flight->second.joiners);
        flights_.erase(flight);
        for (int j : joiners) {
          tasks_[j].state = 3;
          Complete(j);
        }
      }
    }
    Complete(ti);
  }

  // A task's result is there (run here, reused or shared): its dependents may start and
  // its workflow may end.
  void Complete(int ti) {
    const TaskRun& t = tasks_[ti];
    const TaskDef& d = Def(t);
    WfRun& wf = wfs_[t.wf];
    for (int dep : d.dependents) {
      TaskRun& n = tasks_[wf.tasks[dep]];
      if (--n.unmet == 0) Ready(wf.tasks[dep]);
    }
    if (--wf.left == 0) {
      wf.done_at = now_;
      ++done_wfs_;
      if (wf.static_worker >= 0) {
        int type = workers_[wf.static_worker].type;
        Retire(wf.static_worker);
        for (auto it = static_waiting_.begin(); it != static_waiting_.end(); ++it) {
          if (m_.wfs[wfs_[*it].def].static_gpu == type) {
            int next = *it;
            static_waiting_.erase(it);
            GiveStaticWorker(next, type);
            break;
          }
        }
      }
    } else if (wf.static_worker >= 0) {
      StaticPump(t.wf);
    }
  }

  void Retire(int wi) {
    WorkerRun& w = workers_[wi];
    if (w.down_at >= 0) return;
    Advance(wi, now_);
    w.down_at = now_;
    --live_;
    if (flowmesh()) placer_.RemoveWorker(w.id);
  }

  void Elastic() {
    placement::ElasticityConfig e;
    e.enabled = true;
    e.min_workers = m_.min_workers;
    e.max_workers = m_.max_workers;
    e.idle_timeout_s = m_.idle_timeout_s;
    e.queued_per_new_worker = m_.slots;
    e.new_worker_cpu = m_.slots;
    e.new_worker_slots = m_.slots;
    placement::ElasticityAdvice a = placer_.Advise(e, now_);
    int starting = 0;
    for (const auto& w : workers_) starting += (!w.ready && w.down_at < 0) ? 1 : 0;
    int want = a.start - starting;
    if (m_.max_workers > 0) want = std::min(want, m_.max_workers - live_);
    // Which types: for the queued tasks in arrival order, the type with the lowest cost per
    // unit of that task's kind of work that holds it, within the fleet's count of the type.
    std::vector<double> units(m_.gpus.size(), 0);
    std::vector<int> planned(m_.gpus.size(), 0);
    for (size_t g = 0; g < m_.gpus.size(); ++g) planned[g] = LiveOf(static_cast<int>(g));
    int started = 0;
    for (const auto& t : tasks_) {
      if (started >= want) break;
      if (t.state != 1) continue;
      if (placer_.Deferred(static_cast<uint64_t>(&t - tasks_.data()) + 1)) continue;  // waits for a busy faster worker
      const TaskDef& d = Def(t);
      int best = -1;
      for (size_t g = 0; g < m_.gpus.size(); ++g) {
        if (m_.gpus[g].memory_gb + kEps < d.memory_gb || planned[g] >= m_.gpus[g].max_count) continue;
        double speed = SpeedOn(m_.gpus[g], d.kind);
        double best_speed = best < 0 ? 1 : SpeedOn(m_.gpus[best], d.kind);
        if (best < 0 || m_.gpus[g].cost / speed < m_.gpus[best].cost / best_speed) best = static_cast<int>(g);
      }
      if (best < 0) continue;
      units[best] += d.kind == "training" ? m_.slots : 1;
      if (units[best] >= m_.slots || d.kind == "training") {
        units[best] = 0;
        StartWorker(best, now_, false);
        ++planned[best];
        ++started;
      }
    }
    for (size_t g = 0; g < m_.gpus.size() && started < want; ++g) {
      if (units[g] > 0 && planned[g] < m_.gpus[g].max_count) {
        StartWorker(static_cast<int>(g), now_, false);
        ++started;
      }
    }
    for (const auto& id : a.retire) Retire(WorkerIndex(id));
    bool more = done_wfs_ < static_cast<int>(m_.arrivals.size()) || live_ > m_.min_workers;
    if (more) Push(now_ + m_.tick_s, kTick, 0);
  }

  int LiveOf(int type) const {
    int n = 0;
    for (const auto& w : workers_) n += (w.type == type && w.down_at < 0) ? 1 : 0;
    return n;
  }

  // Preempts a share of the live workers: their tasks fail and are retried elsewhere
  // (naive_static_worker: its workflow gets a fresh worker).
  void Preempt() {
    std::vector<int> live;
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (workers_[i].ready && workers_[i].down_at < 0) live.push_back(static_cast<int>(i));
    }
    std::shuffle(live.begin(), live.end(), rng_);
    int n = static_cast<int>(std::ceil(live.size() * m_.preempt_fraction));
    for (int k = 0; k < n && k < static_cast<int>(live.size()); ++k) {
      int wi = live[k];
      Advance(wi, now_);
      std::vector<int> running = workers_[wi].tasks;
      int owner = workers_[wi].owner_wf;
      if (!workers_[wi].tasks.empty()) workers_[wi].busy_s += now_ - workers_[wi].busy_since;
      workers_[wi].tasks.clear();
      Retire(wi);
      ++preempted_;
      for (int ti : running) {
        TaskRun& t = tasks_[ti];
        task_seconds_ += now_ - t.dispatched_at;
        if (flowmesh()) placer_.Finished(static_cast<uint64_t>(ti) + 1, -1, now_);
        t.failed_on.push_back(wi);
        t.state = 0;
        ++t.attempts;
        ++retries_;
        double backoff = std::min(30.0, 0.1 * std::pow(2.0, t.attempts - 1)) *
                         std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
        if (owner >= 0) {
          wfs_[owner].static_queue.push_front(ti);
          t.state = 1;
          t.remaining = Work(Def(t));
          ++tasks_queued_;
        } else {
          Push(now_ + backoff, kRetry, ti);
        }
      }
      if (owner >= 0 && wfs_[owner].done_at < 0) {
        int nw = StartWorker(workers_[wi].type, now_, false);
        workers_[nw].owner_wf = owner;
        wfs_[owner].static_worker = nw;
      }
    }
  }

  const Model& m_;
  Policy policy_;
  std::string name_;
  SimOptions opt_;
  std::mt19937_64 rng_;
  placement::Placer placer_;
  std::priority_queue<Event> events_;
  uint64_t seq_ = 0;
  double now_ = 0;
  std::vector<TaskRun> tasks_;
  std::vector<WfRun> wfs_;
  std::vector<WorkerRun> workers_;
  std::deque<int> fifo_;
  std::deque<int> static_waiting_;  // static_worker: workflows waiting for a worker
  size_t rr_ = 0;
  int done_wfs_ = 0, tasks_queued_ = 0, live_ = 0, peak_ = 0, preempted_ = 0, retries_ = 0, failed_tasks_ = 0;
  std::map<std::string, double> org_ws_;
  struct Flight {
    int leader = -1;
    std::vector<int> joiners;
  };
  std::string scope_ = "off";
  std::set<std::string> results_;                      // fingerprints with a stored result
  std::unordered_map<std::string, Flight> flights_;    // fingerprint -> running leader
  int executed_ = 0, reused_ = 0, joined_ = 0;
  double task_seconds_ = 0;
  std::map<std::string, double> learned_;  // flowmesh: batch key -> run time at speed 1
};

}  // namespace

const std::vector<std::string>& PolicyNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n;
    for (const auto& [name, p] : Policies()) n.push_back(name);
    return n;
  }();
  return kNames;
}

Result<PolicyResult> Simulate(const json& workload, const std::string& policy, const SimOptions& options) {
  auto known = std::find_if(Policies().begin(), Policies().end(), [&](const auto& p) { return p.first == policy; });
  if (known == Policies().end()) {
    std::string names;
    for (const auto& n : PolicyNames()) names += (names.empty() ? "" : ", ") + n;
    return InvalidArgument("unknown policy '" + policy + "' (" + names + ")");
  }
  const std::string& scope = options.dedup_scope;
  if (!scope.empty() && !KnownScope(scope)) {
    return InvalidArgument("unknown dedup scope '" + scope + "' (off, tenant, global)");
  }
  if (!options.submissions.empty() && options.submissions != "published" && options.submissions != "varied") {
    return InvalidArgument("unknown submissions '" + options.submissions + "' (published, varied)");
  }
  json w = workload;
  if (!options.submissions.empty() && w.is_object()) w["submissions"] = options.submissions;
  FM_ASSIGN_OR_RETURN(Model m, BuildModel(w));
  Run run(m, known->second, policy, options);
  return run.Go();
}

}  // namespace flowmesh::sim
