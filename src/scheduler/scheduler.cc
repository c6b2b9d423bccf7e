#include "scheduler/scheduler.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>

#include "common/clock.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/json_util.h"
#include "dataflow/dataflow.h"
#include "common/log.h"
#include "spec/operator.h"
#include "common/thread_annotations.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

namespace {

double MemoryToMb(const json& v) {
  if (v.is_number()) return v.get<double>() / (1024.0 * 1024.0);
  if (!v.is_string()) return 0;
  std::string s = v.get<std::string>();
  double n = 0;
  size_t pos = 0;
  try {
    n = std::stod(s, &pos);
  } catch (...) {
    return 0;
  }
  std::string unit = s.substr(pos);
  if (unit == "Gi" || unit == "G" || unit == "GB") return n * 1024;
  if (unit == "Mi" || unit == "M" || unit == "MB") return n;
  if (unit == "Ki" || unit == "K" || unit == "KB") return n / 1024;
  if (unit == "Ti" || unit == "T") return n * 1024 * 1024;
  return n / (1024.0 * 1024.0);
}

// What a task asks of a worker.
struct Demand {
  double cpu = 0;
  double memory_mb = 0;
  int gpus = 0;
  double gpu_memory_mb = 0;
  std::string gpu_type;
};

Demand DemandOf(const json& spec) {
  Demand d;
  auto hw = spec.find("resources");
  if (hw == spec.end() || !hw->is_object()) return d;
  auto h = hw->find("hardware");
  if (h == hw->end() || !h->is_object()) return d;
  if (auto c = h->find("cpu"); c != h->end() && c->is_number()) d.cpu = c->get<double>();
  if (auto m = h->find("memory"); m != h->end()) d.memory_mb = MemoryToMb(*m);
  if (auto g = h->find("gpu"); g != h->end() && g->is_object()) {
    if (auto n = g->find("count"); n != g->end() && n->is_number_integer()) d.gpus = n->get<int>();
    if (auto m = g->find("memory"); m != g->end()) d.gpu_memory_mb = MemoryToMb(*m);
    // `type: any` (the published default) asks for no particular model.
    if (auto t = g->find("type"); t != g->end() && t->is_string() && *t != "any") {
      d.gpu_type = t->get<std::string>();
    }
  }
  return d;
}

}  // namespace

struct Scheduler::Impl {
  struct Workflow;
  struct Task {
    state::TaskRecord rec;
    Workflow* wf = nullptr;  // owning workflow (node-based map: the pointer is stable)
    int missed_heartbeats = 0;  // heartbeats of its worker that did not list this attempt
    json spec;               // parsed rec.spec_json
    json dispatch_spec;      // spec with references resolved and data materialised
    // The result when it arrived inside the event: dependents read it from here, since
    // its write may still be in the group commit when they are prepared.
    json result;
    bool prepared = false;   // dispatch_spec is set
    bool preparing = false;  // its data is being prepared on the preparation thread
    // schedule_hint, kept in the stored spec under "_schedule" so it survives restarts.
    int epoch = -1;          // node_execution_order epoch; -1: unordered
    int epoch_pos = 0;       // position inside its epoch
    bool in_epoch_order = false;
    std::vector<std::string> pinned;  // selected_worker: ids or aliases; empty: any
    Demand demand;           // what it asks of a worker
    int unmet = 0;
    EventLoop::TimerId retry_timer = 0;
    double attempt_started = 0;
    // De-duplication (see "de-duplication" below).
    int64_t result_size = 0;     // of an inline result stored here
    std::string dedup_key;       // fingerprint within the configured scope
    bool deterministic = false;
    bool dedup_leader = false;   // runs for the twins that joined it
    bool dedup_joined = false;   // waits for its running twin
    bool dedup_bypass = false;   // its twin failed: runs on its own
    uint64_t handle = 0;     // its id in the placer while queued or placed there; 0: none
    std::string batch_key;   // as given to the placer (its run-time history's key)
    placement::Category category = placement::Category::kOther;  // as given to the placer
  };
  struct Workflow {
    state::WorkflowRecord rec;
    bool durable = false;
    std::array<int, 6> counts{};  // tasks per TaskState, kept as states change
    std::vector<int> epoch_open;   // unfinished tasks per epoch (node_execution_order)
    // The first epoch with unfinished tasks; tasks of later epochs wait.
    int current_epoch() const {
      for (size_t i = 0; i < epoch_open.size(); ++i) {
        if (epoch_open[i] > 0) return static_cast<int>(i);
      }
      return static_cast<int>(epoch_open.size());
    }
  };
  struct Worker {
    std::string id, node_id, name, alias, worker_type;
    json info;
    std::set<std::string> task_types;
    int slots = 1;
    double cpu = 0, memory_mb = 0;
    int gpus = 0;
    double cost_per_hour = 0;
    bool alive = false;
    bool cordoned = false;
    double registered_at = 0;
    double last_seen_wall = 0;
    int64_t last_seen_mono = 0;
    std::set<std::string> running;  // task ids
    double used_cpu = 0, used_memory_mb = 0;
    int used_gpus = 0;
    std::vector<std::string> loaded_models;  // ModelKeys it reports holding
    int free_sequence_slots = -1;  // decode slots its inference engines have free (-1: none)
  };
  struct Node {
    state::NodeRecord rec;
    bool local = false;
    json stack_workers = json::array();
  };
  struct PendingCommand {
    JsonCallback done;
    EventLoop::TimerId timer = 0;
    std::string kind, name;
  };

  SchedulerConfig config;
  state::Store* store;
  std::shared_ptr<bus::Bus> bus;
  EventHub* hub;
  cas::ContentStore* content;
  EventLoop loop{"scheduler"};
  EventLoop prepare_loop{"prepare"};  // dataset reads and fetches, off the scheduler loop

  // Loop-owned state.
  int64_t next_cursor = 0;
  std::unordered_map<std::string, Task> tasks;
  std::unordered_map<std::string, Workflow> workflows;
  std::map<std::string, Worker> workers;
  std::map<std::string, Node> nodes;
  std::string local_node;
  // Ready tasks not yet in the placer: being prepared, or held back by epoch order.
  std::deque<std::string> ready;
  // The scheduling core: every dispatch decision (which batch, which worker) is its.
  placement::Placer placer{config.placement};
  std::unordered_map<uint64_t, std::string> handle_task;  // placer handle -> task id
  // Run time at speed 1 per batch key, a moving average of completed runs: the placer's
  // estimate (fair-share charge; waiting for a busy faster worker needs one).
  std::unordered_map<std::string, double> run_estimates;
  uint64_t next_handle = 1;
  int elastic_starting = 0;                // start_worker commands in flight
  std::set<std::string> elastic_names;     // stack workers the elasticity started
  bool dispatch_needed = false;
  bool workers_dirty = false;  // the API's worker snapshot is rebuilt once per loop batch
  std::map<std::string, std::vector<std::string>> outgoing;  // stream -> payloads
  EventLoop::TimerId flush_retry_timer = 0;
  std::map<std::string, PendingCommand> commands;
  std::vector<std::function<void()>> waiting_for_local_node;
  std::mt19937_64 rng{std::random_device{}()};
  // De-duplication: running twins by key, and results whose operator_results row is still
  // in the group commit (a lookup in the store could miss them).
  struct Flight {
    std::string leader;
    std::vector<std::string> joiners;
  };
  struct Reusable {
    std::string digest;
    int64_t size = 0;
    json result;                 // the result itself while its blob may be uncommitted
    std::string source_task_id;  // internal only: never shown to the reuser
  };
  std::unordered_map<std::string, Flight> flights;
  std::unordered_map<std::string, Reusable> committing_results;

  // Counters (read by Metrics from any thread).
  std::atomic<uint64_t> submitted_workflows{0}, submitted_tasks{0}, dispatched{0},
      succeeded{0}, failed{0}, cancelled{0}, retried{0}, workers_lost{0}, bus_messages{0},
      reused{0}, joined{0};

  // Snapshots for the API.
  mutable Mutex snap_mu;
  json workers_snapshot FM_GUARDED_BY(snap_mu) = json::array();
  json stack_snapshot FM_GUARDED_BY(snap_mu) = json::array();
  std::string local_node_snapshot FM_GUARDED_BY(snap_mu);
  // Task id → the "_" keys of its latest TASK_UPDATE (Scheduler::InternalUpdate).
  mutable Mutex internal_mu;
  std::map<std::string, json> internal_updates FM_GUARDED_BY(internal_mu);

  Impl(SchedulerConfig c, state::Store* s, std::shared_ptr<bus::Bus> b, EventHub* h,
       cas::ContentStore* cs)
      : config(c), store(s), bus(std::move(b)), hub(h), content(cs) {}

  // ---- persistence and events ----

  void PersistTask(const Task& t) {
    store->Write([rec = t.rec](state::WriteTxn& txn) { return txn.PutTask(rec); });
  }

  void PersistWorkflow(const Workflow& w) {
    store->Write([rec = w.rec](state::WriteTxn& txn) { return txn.PutWorkflow(rec); });
  }

  state::EventRecord MakeEvent(const std::string& type, const std::string& workflow_id,
                               const std::string& task_id, const std::string& worker_id,
                               const std::string& status, const std::string& error,
                               bool retryable, json payload) {
    state::EventRecord e;
    e.cursor = ++next_cursor;
    e.workflow_id = workflow_id;
    e.task_id = task_id;
    e.ts = WallSeconds();
    e.type = type;
    json j = {{"type", type},       {"ts", e.ts},
              {"workflow_id", workflow_id}, {"task_id", task_id.empty() ? json(nullptr) : json(task_id)},
              {"worker_id", worker_id.empty() ? json(nullptr) : json(worker_id)},
              {"status", status.empty() ? json(nullptr) : json(status)},
              {"error", error.empty() ? json(nullptr) : json(error)},
              {"retryable", retryable},
              {"payload", payload.is_null() ? json::object() : std::move(payload)}};
    e.json = j.dump(-1, ' ', false, json::error_handler_t::replace);
    return e;
  }

  void EmitEvent(state::EventRecord e) {
    store->Write([e](state::WriteTxn& txn) { return txn.AppendEvent(e); },
                 [this, e](const Status& s) {
                   if (s.ok()) hub->Publish(e);
                 });
  }

  void Emit(const std::string& type, const Task& t, const std::string& error = "",
            bool retryable = false, json payload = nullptr) {
    EmitEvent(MakeEvent(type, t.rec.workflow_id, t.rec.task_id, t.rec.assigned_worker,
                        std::string(state::TaskStateName(t.rec.status)), error, retryable,
                        std::move(payload)));
  }

  void Send(const std::string& stream, json message) {
    outgoing[stream].push_back(message.dump(-1, ' ', false, json::error_handler_t::replace));
  }

  // Runs after each batch of loop closures: dispatch, then flush outgoing messages.
  void AfterBatch() {
    // A pass may unblock more (an in-order epoch member that just went): run until idle.
    while (dispatch_needed) {
      dispatch_needed = false;
      TryDispatch();
    }
    if (workers_dirty) {
      workers_dirty = false;
      RefreshWorkersSnapshot();
    }
    FlushOutgoing();
  }

  void FlushOutgoing() {
    if (outgoing.empty() || flush_retry_timer != 0) return;
    for (auto it = outgoing.begin(); it != outgoing.end();) {
      Status s = bus->AppendBatch(it->first, it->second);
      if (!s.ok()) {
        FM_LOG_WARN("bus append to {} failed ({}); retrying", it->first, s.ToString());
        flush_retry_timer = loop.PostDelayed(std::chrono::milliseconds(200), [this] {
          flush_retry_timer = 0;
          FlushOutgoing();
        });
        return;
      }
      it = outgoing.erase(it);
    }
  }

  // ---- workflows and tasks ----

  // Every task state change goes through here so per-workflow counts stay exact.
  void SetState(Task& t, TaskState to) {
    if (t.rec.status == TaskState::kPending && to != TaskState::kPending) Unqueue(t);
    if (t.wf != nullptr) {
      --t.wf->counts[static_cast<int>(t.rec.status)];
      ++t.wf->counts[static_cast<int>(to)];
      if (t.epoch >= 0 && t.epoch < static_cast<int>(t.wf->epoch_open.size()) &&
          !state::IsTerminal(t.rec.status) && state::IsTerminal(to)) {
        if (--t.wf->epoch_open[t.epoch] == 0) dispatch_needed = true;  // the next epoch may go
      }
    }
    t.rec.status = to;
    if (t.dedup_leader && state::IsTerminal(to) && to != TaskState::kDone) ReleaseFlight(t);
  }

  // Reads the "_schedule" hints of a task's stored spec.
  static void LoadHints(Task& t) {
    const json& h = JsonOr(t.spec, "_schedule", json::object());
    t.epoch = JsonOr(h, "epoch", -1);
    t.epoch_pos = JsonOr(h, "pos", 0);
    t.in_epoch_order = JsonOr(h, "in_order", false);
    t.pinned.clear();
    for (const auto& w : JsonOr(h, "workers", json::array())) {
      if (w.is_string()) t.pinned.push_back(w.get<std::string>());
    }
  }

  static void CountEpoch(Workflow& wf, const Task& t) {
    if (t.epoch < 0) return;
    if (static_cast<int>(wf.epoch_open.size()) <= t.epoch) wf.epoch_open.resize(t.epoch + 1, 0);
    if (!state::IsTerminal(t.rec.status)) ++wf.epoch_open[t.epoch];
  }

  // Whether epoch order lets the task go now.
  bool EpochAllows(const Task& t) const {
    if (t.epoch < 0 || t.wf == nullptr) return true;
    if (t.epoch > t.wf->current_epoch()) return false;
    if (!t.in_epoch_order) return true;
    // In epoch order: every task listed before it in its epoch has been dispatched.
    for (const auto& id : t.wf->rec.task_ids) {
      auto o = tasks.find(id);
      if (o == tasks.end() || &o->second == &t) continue;
      const Task& other = o->second;
      if (other.epoch == t.epoch && other.epoch_pos < t.epoch_pos &&
          other.rec.status == TaskState::kPending && other.rec.attempts == 0) {
        return false;
      }
    }
    return true;
  }

  static bool PinAllows(const Task& t, const Worker& w) {
    if (t.pinned.empty()) return true;
    for (const auto& p : t.pinned) {
      if (p == w.id || p == w.alias || p == w.name) return true;
    }
    return false;
  }

  static std::string WorkflowStatus(const std::array<int, 6>& c) {
    auto n = [&c](TaskState s) { return c[static_cast<int>(s)]; };
    if (n(TaskState::kFailed) > 0) return "FAILED";
    if (n(TaskState::kDispatched) + n(TaskState::kCancelling) > 0) return "DISPATCHED";
    if (n(TaskState::kPending) > 0) return "PENDING";
    if (n(TaskState::kCancelled) > 0) return "CANCELLED";
    return "DONE";
  }

  void RefreshWorkflow(const std::string& workflow_id) {
    auto wit = workflows.find(workflow_id);
    if (wit == workflows.end()) return;
    Workflow& wf = wit->second;
    int terminal = wf.counts[static_cast<int>(TaskState::kDone)] +
                   wf.counts[static_cast<int>(TaskState::kFailed)] +
                   wf.counts[static_cast<int>(TaskState::kCancelled)];
    std::string status = WorkflowStatus(wf.counts);
    bool all_terminal = terminal == static_cast<int>(wf.rec.task_ids.size());
    if (status != wf.rec.status || all_terminal) {
      wf.rec.status = status;
      wf.rec.updated_at = WallSeconds();
      PersistWorkflow(wf);
    }
    if (!all_terminal) return;
    EmitEvent(MakeEvent("LOG_STREAM_CLOSED", workflow_id, "", "", status, "", false,
                        json{{"workflow_status", status}}));
    // The workflow is finished and durable: drop it from memory.
    for (const auto& id : wf.rec.task_ids) tasks.erase(id);
    workflows.erase(wit);
  }

  json TaskSummary(const Task& t) const {
    json waiting = json::array();
    for (const auto& dep : t.rec.depends_on) {
      auto d = tasks.find(dep);
      if (d != tasks.end() && d->second.rec.status != TaskState::kDone) waiting.push_back(dep);
    }
    json load = 1;
    if (auto r = json::parse(t.rec.spec_json, nullptr, false); r.is_object()) {
      if (auto res = r.find("resources"); res != r.end() && res->is_object()) {
        if (auto l = res->find("estimatedLoad"); l != res->end()) load = *l;
      }
    }
    return {{"task_id", t.rec.task_id},
            {"status", state::TaskStateName(t.rec.status)},
            {"assigned_worker", t.rec.assigned_worker.empty() ? json(nullptr) : json(t.rec.assigned_worker)},
            {"topic", nullptr},
            {"waiting_on", waiting},
            {"depends_on", t.rec.depends_on},
            {"attempts", t.rec.attempts},
            {"max_attempts", t.rec.max_attempts},
            {"graph_node_name", t.rec.graph_node_name},
            {"load", load}};
  }

  void DoSubmit(SubmitRequest req, JsonCallback done) {
    Workflow wf;
    wf.rec.workflow_id = NewId("wfl");
    wf.rec.name = req.def.name;
    wf.rec.org_id = req.org_id;
    wf.rec.owner_id = req.owner_id;
    wf.rec.format = req.format;
    wf.rec.source_text = std::move(req.source_text);
    wf.rec.submitted_at = WallSeconds();
    wf.rec.updated_at = wf.rec.submitted_at;
    wf.rec.status = "PENDING";
    std::unordered_map<std::string, std::string> id_of;
    for (const auto& def : req.def.tasks) id_of[def.node_name] = NewId("tsk");
    std::vector<state::TaskRecord> recs;
    for (const auto& def : req.def.tasks) {
      json spec = def.spec;
      json hints = json::object();
      if (def.epoch >= 0) {
        const auto& members = req.def.epochs[def.epoch];
        hints["epoch"] = def.epoch;
        hints["pos"] = std::find(members.begin(), members.end(), def.node_name) - members.begin();
        hints["in_order"] = req.def.schedule_in_epoch_order;
      }
      if (!def.selected_workers.empty()) hints["workers"] = def.selected_workers;
      if (!hints.empty()) spec["_schedule"] = hints;
      state::TaskRecord r;
      r.task_id = id_of[def.node_name];
      r.workflow_id = wf.rec.workflow_id;
      r.org_id = req.org_id;
      r.owner_id = req.owner_id;
      r.task_name = def.task_name;
      r.graph_node_name = def.node_name;
      r.task_type = def.task_type;
      r.category = def.category;
      r.submitted_at = wf.rec.submitted_at;
      r.max_attempts = def.max_attempts;
      r.spec_json = spec.dump();
      r.latest_update_json = "{}";
      for (const auto& dep : def.depends_on) r.depends_on.push_back(id_of[dep]);
      wf.rec.task_ids.push_back(r.task_id);
      recs.push_back(std::move(r));
    }
    for (auto& r : recs) {
      for (const auto& dep : r.depends_on) {
        for (auto& other : recs) {
          if (other.task_id == dep) other.dependents.push_back(r.task_id);
        }
      }
    }
    std::vector<state::EventRecord> events;
    for (auto& r : recs) {
      events.push_back(MakeEvent("TASK_SUBMITTED", r.workflow_id, r.task_id, "", "PENDING", "",
                                 false, json{{"graph_node_name", r.graph_node_name}}));
      Task t;
      t.rec = r;
      t.spec = json::parse(r.spec_json);
      t.demand = DemandOf(t.spec);
      LoadHints(t);
      t.unmet = static_cast<int>(r.depends_on.size());
      tasks.emplace(r.task_id, std::move(t));
    }
    std::string wf_id = wf.rec.workflow_id;
    state::WorkflowRecord wf_rec = wf.rec;
    Workflow& stored = workflows.emplace(wf_id, std::move(wf)).first->second;
    for (const auto& id : stored.rec.task_ids) {
      Task& t = tasks.at(id);
      t.wf = &stored;
      ++stored.counts[static_cast<int>(t.rec.status)];
      CountEpoch(stored, t);
    }
    submitted_workflows++;
    submitted_tasks += recs.size();
    store->Write(
        [wf_rec, recs = std::move(recs), events](state::WriteTxn& txn) -> Status {
          FM_RETURN_IF_ERROR(txn.PutWorkflow(wf_rec));
          for (const auto& r : recs) FM_RETURN_IF_ERROR(txn.PutTask(r));
          for (const auto& e : events) FM_RETURN_IF_ERROR(txn.AppendEvent(e));
          return Status::Ok();
        },
        [this, wf_id, events, done = std::move(done)](const Status& s) {
          if (s.ok()) {
            for (const auto& e : events) hub->Publish(e);
          }
          loop.Post([this, wf_id, s, done] { OnSubmitDurable(wf_id, s, done); });
        });
  }

  void OnSubmitDurable(const std::string& wf_id, const Status& s, const JsonCallback& done) {
    auto wit = workflows.find(wf_id);
    if (wit == workflows.end()) {
      done(Internal("workflow vanished before it was stored"));
      return;
    }
    if (!s.ok()) {
      for (const auto& id : wit->second.rec.task_ids) tasks.erase(id);
      workflows.erase(wit);
      FM_LOG_ERROR("storing workflow {} failed: {}", wf_id, s.ToString());
      done(Status(StatusCode::kUnavailable, "could not store the workflow: " + s.message()));
      return;
    }
    wit->second.durable = true;
    json summaries = json::array();
    for (const auto& id : wit->second.rec.task_ids) {
      Task& t = tasks.at(id);
      summaries.push_back(TaskSummary(t));
      if (t.unmet == 0 && t.rec.status == TaskState::kPending) ready.push_back(id);
    }
    dispatch_needed = true;
    done(json{{"ok", true},
              {"workflow_id", wf_id},
              {"count", summaries.size()},
              {"tasks", std::move(summaries)}});
  }

  // ---- dispatch ----

  // The placer decides every dispatch; the loop only admits ready tasks into it (once
  // prepared and allowed by epoch order) and carries out its placements.
  static double MonoSeconds() { return static_cast<double>(MonoMicros()) / 1e6; }

  // Relative throughput the worker advertised (1 when it did not), for a task category.
  static double SpeedOf(const Worker& w, placement::Category category) {
    double speed = JsonOr(w.info, "speed", 1.0);
    if (category == placement::Category::kTraining) speed = JsonOr(w.info, "training_speed", speed);
    return speed > 0 ? speed : 1.0;
  }

  placement::WorkerSpec PlacementSpecOf(const Worker& w) const {
    placement::WorkerSpec spec;
    spec.id = w.id;
    spec.names = {w.name, w.alias};
    spec.task_types.assign(w.task_types.begin(), w.task_types.end());
    const json& gpus = JsonOr(w.info, "gpus", json::array());
    if (gpus.is_array() && !gpus.empty() && gpus[0].is_object()) {
      spec.gpu_type = JsonOr(gpus[0], "name", "");
      spec.capacity.gpu_memory_mb = JsonOr(gpus[0], "memory_mb", 0.0);
    }
    spec.gpu_type = JsonOr(w.info, "gpu_type", spec.gpu_type);
    spec.capacity.cpu = w.cpu;
    spec.capacity.memory_mb = w.memory_mb;
    spec.capacity.gpus = w.gpus;
    spec.slots = w.slots;
    spec.cost_per_hour = w.cost_per_hour;
    spec.speed = SpeedOf(w, placement::Category::kOther);
    spec.training_speed = SpeedOf(w, placement::Category::kTraining);
    spec.keys = w.loaded_models;
    spec.free_sequence_slots = w.free_sequence_slots >= 0 ? w.free_sequence_slots : JsonOr(w.info, "free_sequence_slots", -1);
    return spec;
  }

  void SyncWorker(const Worker& w) {
    if (!w.alive) {
      placer.RemoveWorker(w.id);
      return;
    }
    placer.UpsertWorker(PlacementSpecOf(w), MonoSeconds());
    placer.SetCordoned(w.id, w.cordoned);
  }

  void Enqueue(Task& t) {
    placement::TaskRequest r;
    r.handle = next_handle++;
    r.org = t.rec.org_id;
    r.priority = JsonOr(t.spec, "priority", 0);
    r.task_type = t.rec.task_type;
    r.batch_key = spec::BatchKey(t.rec.task_type, t.spec);
    r.category = placement::CategoryFromTaskType(t.rec.task_type, t.rec.category);
    r.demand = {t.demand.cpu, t.demand.memory_mb, t.demand.gpus, t.demand.gpu_memory_mb};
    r.gpu_type = t.demand.gpu_type;
    r.pinned = t.pinned;
    r.failed_on = t.rec.failed_workers;
    if (std::string model = spec::ModelKey(t.spec); !model.empty()) r.locality_keys.push_back(model);
    r.enqueue_time = MonoSeconds();
    if (auto est = run_estimates.find(r.batch_key); est != run_estimates.end()) {
      r.est_seconds = est->second;
      r.est_known = true;
    }
    if (!placer.Enqueue(r)) return;
    t.handle = r.handle;
    t.batch_key = std::move(r.batch_key);
    t.category = r.category;
    handle_task.emplace(r.handle, t.rec.task_id);
  }

  // A task recovered as running on a live worker: the placer counts it there.
  void Adopt(Task& t) {
    placement::TaskRequest r;
    r.handle = next_handle++;
    r.org = t.rec.org_id;
    r.demand = {t.demand.cpu, t.demand.memory_mb, t.demand.gpus, t.demand.gpu_memory_mb};
    if (!placer.Adopt(r, t.rec.assigned_worker)) return;
    t.handle = r.handle;
    handle_task.emplace(r.handle, t.rec.task_id);
  }

  void Unqueue(Task& t) {
    if (t.handle == 0 || !placer.Queued(t.handle)) return;
    placer.Remove(t.handle);
    handle_task.erase(t.handle);
    t.handle = 0;
  }

  void TryDispatch() {
    std::deque<std::string> waiting;
    while (!ready.empty()) {
      std::string id = std::move(ready.front());
      ready.pop_front();
      auto it = tasks.find(id);
      if (it == tasks.end() || it->second.rec.status != TaskState::kPending ||
          it->second.retry_timer != 0 || it->second.unmet > 0 || it->second.handle != 0 ||
          it->second.dedup_joined) {
        continue;
      }
      Task& t = it->second;
      if (!EpochAllows(t)) {
        waiting.push_back(std::move(id));
        continue;
      }
      if (!t.prepared) {
        if (t.preparing) {
          waiting.push_back(std::move(id));
          continue;
        }
        if (NeedsOffLoopPreparation(t)) {
          std::string task_id = id;
          StartPreparation(t);  // may end the task (condition)
          if (tasks.count(task_id) && tasks.at(task_id).preparing) waiting.push_back(std::move(id));
          continue;
        }
        if (!PrepareForDispatch(t)) continue;  // ended (skipped or failed)
      }
      Enqueue(t);
    }
    // Tasks that cannot go yet keep their place for the next pass.
    while (!waiting.empty()) {
      ready.push_front(std::move(waiting.back()));
      waiting.pop_back();
    }
    for (auto& placement : placer.Schedule(MonoSeconds())) {
      auto wit = workers.find(placement.worker_id);
      for (uint64_t h : placement.tasks) {
        auto hit = handle_task.find(h);
        auto it = hit == handle_task.end() ? tasks.end() : tasks.find(hit->second);
        if (wit == workers.end() || it == tasks.end() || it->second.rec.status != TaskState::kPending) {
          placer.Finished(h, 0, MonoSeconds());
          if (hit != handle_task.end()) handle_task.erase(hit);
          if (it != tasks.end()) {
            it->second.handle = 0;
            ready.push_back(it->first);
          }
          continue;
        }
        // One batch: its dispatch messages go to the node stream in one append.
        Assign(it->second, wit->second, it->second.demand, it->second.dispatch_spec);
      }
    }
  }

  // Fails queued tasks that no worker of the fleet could ever run, after a grace period.
  void FailUnplaceable() {
    if (config.unplaceable_grace_s <= 0) return;
    for (const auto& u : placer.FindUnplaceable(MonoSeconds(), config.unplaceable_grace_s)) {
      auto hit = handle_task.find(u.handle);
      if (hit == handle_task.end()) continue;
      auto it = tasks.find(hit->second);
      if (it == tasks.end()) continue;
      FailBeforeDispatch(it->second, u.reason);  // leaves PENDING: Unqueue drops it
    }
  }

  void Assign(Task& t, Worker& w, const Demand& d, json spec) {
    SetState(t, TaskState::kDispatched);
    t.rec.attempts += 1;
    t.rec.assigned_worker = w.id;
    if (supplier_resolver) t.rec.supplier_id = supplier_resolver(w.id, w.info.dump());
    t.rec.dispatched_ts = WallSeconds();
    t.rec.started_ts = 0;
    t.attempt_started = 0;
    t.missed_heartbeats = 0;
    if (t.in_epoch_order) dispatch_needed = true;  // the next one in its epoch may go now
    w.running.insert(t.rec.task_id);
    w.used_cpu += d.cpu;
    w.used_memory_mb += d.memory_mb;
    w.used_gpus += d.gpus;
    dispatched++;
    PersistTask(t);
    Emit("TASK_DISPATCHED", t, "", false, json{{"attempt", t.rec.attempts}});
    double timeout = 0;
    if (auto ts = spec.find("timeoutSeconds"); ts != spec.end() && ts->is_number()) {
      timeout = ts->get<double>();
    }
    Send(bus::NodeStream(w.node_id),
         json{{"kind", "dispatch"},
              {"worker_id", w.id},
              {"task_id", t.rec.task_id},
              {"workflow_id", t.rec.workflow_id},
              {"attempt", t.rec.attempts},
              {"task_type", t.rec.task_type},
              {"spec", std::move(spec)},
              {"timeout_s", timeout}});
    workers_dirty = true;
    RefreshWorkflow(t.rec.workflow_id);
  }

  void LearnRunTime(const Task& t) {
    if (t.handle == 0 || t.batch_key.empty() || t.rec.dispatched_ts == 0 || placer.Queued(t.handle)) return;
    auto w = workers.find(t.rec.assigned_worker);
    double speed = w == workers.end() ? 1.0 : SpeedOf(w->second, t.category);
    double ran = std::max(0.0, WallSeconds() - t.rec.dispatched_ts) * speed;
    auto [it, added] = run_estimates.try_emplace(t.batch_key, ran);
    if (!added) it->second = 0.8 * it->second + 0.2 * ran;
    if (run_estimates.size() > 100000) run_estimates.clear();  // bounded: batch keys are open-ended
  }

  void Release(Task& t) {
    if (t.handle != 0 && placer.Queued(t.handle)) {
      Unqueue(t);  // ended before it was placed
    } else if (t.handle != 0) {
      double ran = t.rec.dispatched_ts != 0 ? std::max(0.0, WallSeconds() - t.rec.dispatched_ts) : 0;
      placer.Finished(t.handle, ran, MonoSeconds());
      handle_task.erase(t.handle);
      t.handle = 0;
      dispatch_needed = true;
    }
    auto wit = workers.find(t.rec.assigned_worker);
    if (wit == workers.end()) return;
    Worker& w = wit->second;
    if (w.running.erase(t.rec.task_id) > 0) {
      const Demand& d = t.demand;
      w.used_cpu = std::max(0.0, w.used_cpu - d.cpu);
      w.used_memory_mb = std::max(0.0, w.used_memory_mb - d.memory_mb);
      w.used_gpus = std::max(0, w.used_gpus - d.gpus);
      dispatch_needed = true;
    }
  }

  std::function<void(const state::UsageRecord&)> usage_sink;
  std::function<std::string(const std::string&, const std::string&)> supplier_resolver;

  void RecordUsage(Task& t, const std::string& status) {
    auto wit = workers.find(t.rec.assigned_worker);
    double started = t.rec.started_ts != 0 ? t.rec.started_ts : t.rec.dispatched_ts;
    double finished = WallSeconds();
    double cost_per_hour = wit != workers.end() ? wit->second.cost_per_hour : 0;
    std::string hardware = wit != workers.end() ? wit->second.worker_type : "";
    json usages = json::parse(t.rec.usages_json, nullptr, false);
    if (!usages.is_array()) usages = json::array();
    double runtime = std::max(0.0, finished - started);
    usages.push_back({{"started_at", started},
                      {"finished_at", finished},
                      {"runtime_sec", runtime},
                      {"hardware", hardware},
                      {"cost_per_hour", cost_per_hour},
                      {"total_cost", runtime / 3600.0 * cost_per_hour},
                      {"status", status}});
    t.rec.usages_json = usages.dump();
    // One durable row per attempt, for usage queries and billing.
    state::UsageRecord row;
    row.task_id = t.rec.task_id;
    row.workflow_id = t.rec.workflow_id;
    row.org_id = t.rec.org_id;
    row.principal_id = t.rec.owner_id;
    row.supplier_id = t.rec.supplier_id;
    row.worker_id = t.rec.assigned_worker;
    row.attempt = t.rec.attempts;
    row.started_at = started;
    row.finished_at = finished;
    row.runtime_sec = runtime;
    row.hardware = hardware;
    row.cost_per_hour = cost_per_hour;
    row.cost = runtime / 3600.0 * cost_per_hour;
    row.status = status;
    store->Write([row](state::WriteTxn& txn) { return txn.AppendUsage(row); });
    if (usage_sink) usage_sink(row);
  }

  // Ends dependents of a task that cannot complete, transitively.
  void Cascade(const Task& origin, TaskState to) {
    std::vector<std::string> stack(origin.rec.dependents.begin(), origin.rec.dependents.end());
    std::string why = (to == TaskState::kFailed ? "dependency failed: " : "dependency cancelled: ") +
                      origin.rec.task_name;
    while (!stack.empty()) {
      std::string id = stack.back();
      stack.pop_back();
      auto it = tasks.find(id);
      if (it == tasks.end()) continue;
      Task& d = it->second;
      if (d.rec.status != TaskState::kPending) continue;
      if (d.retry_timer != 0) {
        loop.CancelTimer(d.retry_timer);
        d.retry_timer = 0;
      }
      SetState(d, to);
      d.rec.finished_ts = WallSeconds();
      if (to == TaskState::kFailed) {
        d.rec.error = why;
        failed++;
      } else {
        cancelled++;
      }
      PersistTask(d);
      Emit(to == TaskState::kFailed ? "TASK_FAILED" : "TASK_CANCELLED", d, d.rec.error);
      stack.insert(stack.end(), d.rec.dependents.begin(), d.rec.dependents.end());
    }
  }

  void Succeed(Task& t, json payload) {
    if (payload.contains("result")) {
      // A small result inside the event: store it in the same group commit as DONE.
      Status stored = StoreResult(t, std::move(payload["result"]), JsonOr(payload, "metadata", json::object()));
      if (!stored.ok()) {
        Fail(t, "storing the result failed: " + stored.message(), true);
        return;
      }
      payload.erase("result");
      payload["result_digest"] = t.rec.result_digest;
    }
    LearnRunTime(t);
    Release(t);
    RecordUsage(t, "DONE");
    SetState(t, TaskState::kDone);
    t.rec.finished_ts = WallSeconds();
    if (payload.contains("result_digest") && payload["result_digest"].is_string()) {
      t.rec.result_digest = payload["result_digest"].get<std::string>();
    }
    succeeded++;
    PersistTask(t);
    Emit("TASK_SUCCEEDED", t, "", false, payload);
    if (t.dedup_leader) FinishFlight(t);
    ReleaseDependents(t);
    RefreshWorkflow(t.rec.workflow_id);
  }

  void ReleaseDependents(const Task& t) {
    for (const auto& dep_id : t.rec.dependents) {
      auto d = tasks.find(dep_id);
      if (d == tasks.end()) continue;
      if (--d->second.unmet == 0 && d->second.rec.status == TaskState::kPending) {
        ready.push_back(dep_id);
        dispatch_needed = true;
      }
    }
  }

  // ---- run-time semantics: references, data, conditions (before the first dispatch) ----

  // The results of a task's dependencies by node name; a skipped one reads {"skipped": true}.
  dataflow::Upstream UpstreamOf(const Task& t) {
    dataflow::Upstream up;
    for (const auto& dep_id : t.rec.depends_on) {
      auto d = tasks.find(dep_id);
      if (d == tasks.end()) continue;
      json result = json::object();
      if (!d->second.result.is_null()) {
        result = d->second.result;
      } else if (!d->second.rec.result_digest.empty()) {
        auto blob = content->Get(d->second.rec.result_digest);
        if (blob.ok()) {
          result = json::parse(*blob, nullptr, false);
          if (result.is_discarded()) result = json::object();
        }
      }
      up[d->second.rec.graph_node_name] = std::move(result);
    }
    return up;
  }

  // Resolves the spec to dispatch, or ends the task (condition unmet: DONE and skipped;
  // unresolvable: FAILED, not retryable). Returns false when the task ended; it may then
  // have been dropped from memory with its workflow.
  bool PrepareForDispatch(Task& t) {
    dataflow::Upstream up = UpstreamOf(t);
    if (!ConditionAllows(t, up)) return false;
    dataflow::DataOptions opts;
    opts.data_dir = config.data_dir;
    auto prepared = dataflow::PrepareTaskSpec(t.spec, up, opts);
    return FinishPreparation(t, std::move(prepared));
  }

  // Datasets are read from files or fetched over the network: prepare those on the
  // preparation thread so the scheduler loop never blocks on I/O. The task keeps its place
  // in the ready queue meanwhile.
  static bool NeedsOffLoopPreparation(const Task& t) {
    return JsonOr(JsonOr(t.spec, "data", json::object()), "type", "") == "dataset";
  }

  void StartPreparation(Task& t) {
    dataflow::Upstream up = UpstreamOf(t);
    if (!ConditionAllows(t, up)) return;
    t.preparing = true;
    dataflow::DataOptions opts;
    opts.data_dir = config.data_dir;
    prepare_loop.Post([this, id = t.rec.task_id, spec = t.spec, up = std::move(up), opts] {
      auto prepared = dataflow::PrepareTaskSpec(spec, up, opts);
      loop.Post([this, id, prepared = std::move(prepared)]() mutable {
        auto it = tasks.find(id);
        if (it == tasks.end() || it->second.rec.status != TaskState::kPending) return;
        it->second.preparing = false;
        if (FinishPreparation(it->second, std::move(prepared))) dispatch_needed = true;
      });
    });
  }

  bool FinishPreparation(Task& t, Result<json> prepared) {
    if (!prepared.ok()) {
      FailBeforeDispatch(t, prepared.status().message());
      return false;
    }
    t.dispatch_spec = std::move(prepared).value();
    t.dispatch_spec.erase("_schedule");
    t.prepared = true;
    return ConsiderReuse(t);
  }

  // Evaluates the task's condition; when it is unmet (skipped) or broken (failed) the task
  // ends here and false is returned.
  bool ConditionAllows(Task& t, const dataflow::Upstream& up) {
    if (t.spec.contains("condition")) {
      auto met = dataflow::ConditionMet(t.spec["condition"], up);
      if (!met.ok()) {
        FailBeforeDispatch(t, "condition: " + met.status().message());
        return false;
      }
      if (!*met) {
        Skip(t);
        return false;
      }
    }
    return true;
  }

  // ---- de-duplication (operator fingerprints, stored results, single flight) ----
  //
  // Once a task's inputs are resolved it gets its fingerprint and lineage row. A
  // deterministic task (and dedup on) then either completes at once from a stored result
  // of the same fingerprint in its scope, joins a running twin, or runs as the leader for
  // twins that arrive while it runs. A leader that ends without a result releases its
  // joiners to run on their own. Returns false when the task is not to be dispatched now.
  bool ConsiderReuse(Task& t) {
    json inputs = UpstreamInputs(t);
    std::vector<std::string> digests;
    for (const auto& in : inputs) digests.push_back(in["digest"].get<std::string>());
    t.deterministic = spec::Deterministic(t.rec.task_type, t.spec);
    t.rec.merge_key = spec::OperatorFingerprint(t.rec.task_type, t.dispatch_spec, std::move(digests));
    WriteLineage(t, inputs, /*reused=*/false);
    // With de-duplication off, executors must not share work between tasks either (the
    // inference engine merges identical requests otherwise). `cache` is not part of the
    // fingerprint.
    if (config.dedup_scope == "off") t.dispatch_spec["cache"] = "never";
    if (config.dedup_scope == "off" || !t.deterministic || t.dedup_bypass) return true;
    t.dedup_key = DedupKey(t);
    if (auto hit = FindReusable(t.dedup_key)) {
      CompleteReused(t, *hit);
      return false;
    }
    auto flight = flights.find(t.dedup_key);
    if (flight != flights.end() && flight->second.leader != t.rec.task_id) {
      auto& joiners = flight->second.joiners;
      if (std::find(joiners.begin(), joiners.end(), t.rec.task_id) == joiners.end()) {
        joiners.push_back(t.rec.task_id);
        joined++;
        auto leader = tasks.find(flight->second.leader);
        if (leader != tasks.end() && leader->second.rec.org_id == t.rec.org_id) {
          t.rec.merged_parent_id = flight->second.leader;  // never across organisations
        }
        t.dedup_joined = true;  // TryDispatch leaves it alone until its leader ends
        PersistTask(t);
        Emit("TASK_UPDATE", t, "", false,
             json{{"waiting_for_twin", true}, {"fingerprint", t.rec.merge_key}});
      }
      return false;
    }
    flights[t.dedup_key].leader = t.rec.task_id;
    t.dedup_leader = true;
    return true;
  }

  std::string DedupKey(const Task& t) const {
    return config.dedup_scope == "global" ? t.rec.merge_key
                                          : Sha256Hex(t.rec.org_id + "\n" + t.rec.merge_key);
  }

  // After a restart, a deterministic task still running leads its flight again, so twins
  // that arrive meanwhile join it instead of running.
  void RestoreFlight(Task& t) {
    if (config.dedup_scope == "off" || t.rec.merge_key.empty() ||
        !spec::Deterministic(t.rec.task_type, t.spec)) {
      return;
    }
    t.deterministic = true;
    t.dedup_key = DedupKey(t);
    if (flights.count(t.dedup_key) > 0) return;
    flights[t.dedup_key].leader = t.rec.task_id;
    t.dedup_leader = true;
  }

  // The task's inputs for lineage: [{node, task_id, digest}] of its dependencies' results.
  json UpstreamInputs(const Task& t) const {
    json inputs = json::array();
    for (const auto& dep_id : t.rec.depends_on) {
      auto d = tasks.find(dep_id);
      if (d == tasks.end()) continue;
      inputs.push_back({{"node", d->second.rec.graph_node_name},
                        {"task_id", dep_id},
                        {"digest", d->second.rec.result_digest}});
    }
    return inputs;
  }

  void WriteLineage(const Task& t, const json& inputs, bool reused) {
    state::LineageRecord l;
    l.task_id = t.rec.task_id;
    l.workflow_id = t.rec.workflow_id;
    l.fingerprint = t.rec.merge_key;
    l.deterministic = t.deterministic;
    l.inputs_json = inputs.dump(-1, ' ', false, json::error_handler_t::replace);
    l.reused = reused;
    l.recorded_at = WallSeconds();
    store->Write([l = std::move(l)](state::WriteTxn& txn) { return txn.PutLineage(l); });
  }

  std::optional<Reusable> FindReusable(const std::string& key) {
    if (auto it = committing_results.find(key); it != committing_results.end()) return it->second;
    auto stored = store->GetOperatorResult(key);
    if (!stored.ok()) {
      if (stored.status().code() != StatusCode::kNotFound) {
        FM_LOG_WARN("operator result lookup failed: {}", stored.status().ToString());
      }
      return std::nullopt;
    }
    Reusable r;
    r.digest = stored->result_digest;
    r.source_task_id = stored->source_task_id;
    auto rec = store->GetResult(stored->source_task_id);
    if (rec.ok()) r.size = rec->size;
    return r;
  }

  // Completes a task with a result computed for its twin: its own result record (same
  // blob, files by reference), lineage marked reused, no worker involved.
  void CompleteReused(Task& t, const Reusable& r) {
    std::vector<state::ResultFileRecord> files;
    if (auto listed = store->ListResultFiles(r.source_task_id); listed.ok()) files = *listed;
    for (auto& f : files) f.task_id = t.rec.task_id;
    state::ResultRecord rr;
    rr.task_id = t.rec.task_id;
    rr.digest = r.digest;
    rr.size = r.size;
    rr.metadata_json = json{{"reused", true}, {"fingerprint", t.rec.merge_key}}.dump();
    rr.received_at = WallSeconds();
    store->Write([rr, files = std::move(files)](state::WriteTxn& txn) -> Status {
      FM_RETURN_IF_ERROR(txn.PutResult(rr));
      for (const auto& f : files) FM_RETURN_IF_ERROR(txn.PutResultFile(f));
      return Status::Ok();
    });
    t.dedup_joined = false;
    t.rec.result_digest = r.digest;
    if (!r.result.is_null()) t.result = r.result;
    SetState(t, TaskState::kDone);
    t.rec.finished_ts = WallSeconds();
    succeeded++;
    reused++;
    WriteLineage(t, UpstreamInputs(t), /*reused=*/true);
    PersistTask(t);
    Emit("TASK_SUCCEEDED", t, "", false,
         json{{"reused", true}, {"fingerprint", t.rec.merge_key}, {"result_digest", r.digest}});
    ReleaseDependents(t);
    RefreshWorkflow(t.rec.workflow_id);  // may drop t
  }

  // The leader succeeded: store its result under the key and complete its joiners.
  void FinishFlight(Task& t) {
    t.dedup_leader = false;
    Reusable r;
    r.digest = t.rec.result_digest;
    r.size = t.result_size;
    r.result = t.result;
    r.source_task_id = t.rec.task_id;
    if (r.size == 0) {
      if (auto rec = store->GetResult(t.rec.task_id); rec.ok()) r.size = rec->size;
    }
    std::string key = t.dedup_key;
    auto flight = flights.find(key);
    std::vector<std::string> joiners;
    if (flight != flights.end() && flight->second.leader == t.rec.task_id) {
      joiners = std::move(flight->second.joiners);
      flights.erase(flight);
    }
    if (r.digest.empty()) {
      ReleaseJoiners(joiners);
      return;
    }
    state::OperatorResultRecord op;
    op.scope_key = key;
    op.fingerprint = t.rec.merge_key;
    op.task_type = t.rec.task_type;
    op.result_digest = r.digest;
    op.source_task_id = t.rec.task_id;
    op.created_at = WallSeconds();
    committing_results[key] = r;
    store->Write([op](state::WriteTxn& txn) { return txn.PutOperatorResult(op); },
                 [this, key](const Status&) {
                   loop.Post([this, key] { committing_results.erase(key); });
                 });
    for (const auto& id : joiners) {
      auto it = tasks.find(id);
      if (it == tasks.end() || it->second.rec.status != TaskState::kPending) continue;
      Task& j = it->second;
      if (!j.dedup_joined) continue;
      CompleteReused(j, r);
    }
  }

  // The leader ended without a result: its joiners run on their own.
  void ReleaseFlight(Task& t) {
    t.dedup_leader = false;
    auto flight = flights.find(t.dedup_key);
    if (flight == flights.end() || flight->second.leader != t.rec.task_id) return;
    std::vector<std::string> joiners = std::move(flight->second.joiners);
    flights.erase(flight);
    ReleaseJoiners(joiners);
  }

  void ReleaseJoiners(const std::vector<std::string>& joiners) {
    for (const auto& id : joiners) {
      auto it = tasks.find(id);
      if (it == tasks.end() || it->second.rec.status != TaskState::kPending) continue;
      it->second.dedup_joined = false;
      it->second.dedup_bypass = true;
      ready.push_back(id);
      dispatch_needed = true;
    }
  }

  // Stores a task's result (content-addressed) through the group commit, keeps it for
  // dependents, and sets the task's digest.
  Status StoreResult(Task& t, json result, const json& metadata) {
    auto blob = content->Prepare(result.dump(-1, ' ', false, json::error_handler_t::replace));
    if (!blob.ok()) return blob.status();
    state::ResultRecord rr;
    rr.task_id = t.rec.task_id;
    rr.digest = blob->digest;
    rr.size = static_cast<int64_t>(blob->size);
    rr.worker_id = t.rec.assigned_worker;
    rr.metadata_json = metadata.dump();
    rr.received_at = WallSeconds();
    t.rec.result_digest = blob->digest;
    t.result_size = static_cast<int64_t>(blob->size);
    t.result = std::move(result);
    store->Write([rr, b = std::move(blob).value()](state::WriteTxn& txn) -> Status {
      FM_RETURN_IF_ERROR(cas::ContentStore::Record(b, txn));
      return txn.PutResult(rr);
    });
    return Status::Ok();
  }

  void Skip(Task& t) {
    Status stored = StoreResult(t, json{{"skipped", true}}, json{{"skipped", true}});
    if (!stored.ok()) FM_LOG_WARN("storing the skipped result of {} failed: {}", t.rec.task_id, stored.ToString());
    SetState(t, TaskState::kDone);
    t.rec.finished_ts = WallSeconds();
    t.rec.latest_update_json = json{{"skipped", true}}.dump();
    succeeded++;
    PersistTask(t);
    std::string why = "condition not met: " + JsonOr(t.spec["condition"], "node", "") + "." +
                      JsonOr(t.spec["condition"], "field", "") + " != " +
                      JsonOr(t.spec["condition"], "equals", json(nullptr)).dump();
    Emit("TASK_SUCCEEDED", t, "", false, json{{"skipped", true}, {"reason", why}, {"result_digest", t.rec.result_digest}});
    ReleaseDependents(t);
    RefreshWorkflow(t.rec.workflow_id);
  }

  void FailBeforeDispatch(Task& t, const std::string& error) {
    SetState(t, TaskState::kFailed);
    t.rec.error = error;
    t.rec.last_error = error;
    t.rec.finished_ts = WallSeconds();
    failed++;
    PersistTask(t);
    Emit("TASK_FAILED", t, error, false);
    Cascade(t, TaskState::kFailed);
    RefreshWorkflow(t.rec.workflow_id);
  }

  void Fail(Task& t, const std::string& error, bool retryable) {
    Release(t);
    if (t.rec.status == TaskState::kCancelling) {
      Cancelled(t);
      return;
    }
    RecordUsage(t, "FAILED");
    t.rec.last_error = error;
    std::string worker = t.rec.assigned_worker;
    if (!worker.empty() && std::find(t.rec.failed_workers.begin(), t.rec.failed_workers.end(),
                                     worker) == t.rec.failed_workers.end()) {
      t.rec.failed_workers.push_back(worker);
    }
    if (retryable && t.rec.attempts < t.rec.max_attempts) {
      SetState(t, TaskState::kPending);
      retried++;
      double base = config.retry_backoff_base_s * std::pow(2.0, std::max(0, t.rec.attempts - 1));
      double delay = std::min(config.retry_backoff_max_s, base);
      delay *= std::uniform_real_distribution<double>(0.5, 1.0)(rng);  // jitter
      PersistTask(t);
      Emit("TASK_FAILED", t, error, true, json{{"attempt", t.rec.attempts}, {"retry_in_s", delay}});
      t.rec.assigned_worker.clear();
      std::string id = t.rec.task_id;
      t.retry_timer = loop.PostDelayed(
          std::chrono::microseconds(static_cast<int64_t>(delay * 1e6)), [this, id] {
            auto it = tasks.find(id);
            if (it == tasks.end()) return;
            it->second.retry_timer = 0;
            if (it->second.rec.status != TaskState::kPending) return;
            ready.push_back(id);
            dispatch_needed = true;
          });
      RefreshWorkflow(t.rec.workflow_id);
      return;
    }
    SetState(t, TaskState::kFailed);
    t.rec.error = error;
    t.rec.finished_ts = WallSeconds();
    failed++;
    PersistTask(t);
    Emit("TASK_FAILED", t, error, false, json{{"attempt", t.rec.attempts}});
    Cascade(t, TaskState::kFailed);
    RefreshWorkflow(t.rec.workflow_id);
  }

  void Cancelled(Task& t) {
    Release(t);
    if (t.rec.dispatched_ts != 0 && t.rec.status == TaskState::kCancelling) RecordUsage(t, "CANCELLED");
    SetState(t, TaskState::kCancelled);
    t.rec.finished_ts = WallSeconds();
    cancelled++;
    PersistTask(t);
    Emit("TASK_CANCELLED", t);
    Cascade(t, TaskState::kCancelled);
    RefreshWorkflow(t.rec.workflow_id);
  }

  // ---- bus messages ----

  void OnTaskEvent(const json& m) {
    std::string task_id = JsonOr(m, "task_id", "");
    auto it = tasks.find(task_id);
    if (it == tasks.end()) return;  // finished and dropped, or unknown: nothing to do
    Task& t = it->second;
    int attempt = JsonOr(m, "attempt", 0);
    std::string type = JsonOr(m, "type", "");
    std::string worker_id = JsonOr(m, "worker_id", "");
    // Idempotent per attempt: anything about another attempt, or from another worker, is stale.
    if (attempt != t.rec.attempts || worker_id != t.rec.assigned_worker) return;
    if (auto w = workers.find(worker_id); w != workers.end()) {
      w->second.last_seen_mono = MonoMicros();  // an event is as good as a heartbeat
    }
    bool live = t.rec.status == TaskState::kDispatched || t.rec.status == TaskState::kCancelling;
    if (!live) return;
    json payload = m.contains("payload") && m["payload"].is_object() ? m["payload"] : json::object();
    if (type == "TASK_STARTED") {
      if (t.rec.started_ts != 0) return;
      t.rec.started_ts = JsonOr(m, "ts", WallSeconds());
      PersistTask(t);
      Emit("TASK_STARTED", t, "", false, payload);
    } else if (type == "TASK_LOG") {
      Emit("TASK_LOG", t, "", false, payload);
    } else if (type == "TASK_UPDATE") {
      KeepInternal(t.rec.task_id, &payload);
      t.rec.latest_update_json = payload.dump();
      PersistTask(t);
      Emit("TASK_UPDATE", t, "", false, payload);
    } else if (type == "TASK_SUCCEEDED") {
      ForgetInternal(t.rec.task_id);
      Succeed(t, std::move(payload));
    } else if (type == "TASK_FAILED") {
      ForgetInternal(t.rec.task_id);
      std::string error = JsonOr(m, "error", "");
      if (error.empty()) error = "task failed";
      Fail(t, error, JsonOr(m, "retryable", false));
    } else if (type == "TASK_CANCELLED") {
      ForgetInternal(t.rec.task_id);
      if (t.rec.status == TaskState::kCancelling) {
        Cancelled(t);
      } else {
        Fail(t, "cancelled by the worker", true);
      }
    }
  }

  // Moves the "_" keys of a TASK_UPDATE payload out of it (see InternalUpdate).
  void KeepInternal(const std::string& task_id, json* payload) {
    json internal = json::object();
    for (auto it = payload->begin(); it != payload->end();) {
      if (!it.key().empty() && it.key()[0] == '_') {
        internal[it.key()] = std::move(it.value());
        it = payload->erase(it);
      } else {
        ++it;
      }
    }
    if (internal.empty()) return;
    MutexLock lock(internal_mu);
    internal_updates[task_id] = std::move(internal);
  }
  void ForgetInternal(const std::string& task_id) {
    MutexLock lock(internal_mu);
    internal_updates.erase(task_id);
  }

  void WorkerUp(const json& m) {
    std::string id = JsonOr(m, "worker_id", "");
    if (id.empty()) return;
    const json& info = m.contains("info") && m["info"].is_object() ? m["info"] : json::object();
    Worker& w = workers[id];
    bool was_alive = w.alive;
    w.id = id;
    w.node_id = JsonOr(m, "node_id", "");
    w.info = info;
    w.name = JsonOr(info, "name", "");
    w.alias = JsonOr(info, "alias", w.name);
    w.worker_type = JsonOr(info, "worker_type", "cpu");
    w.task_types.clear();
    if (info.contains("task_types") && info["task_types"].is_array()) {
      for (const auto& tt : info["task_types"]) {
        if (tt.is_string()) w.task_types.insert(tt.get<std::string>());
      }
    }
    w.slots = std::max(1, JsonOr(info, "slots", 1));
    w.cpu = JsonOr(info, "cpu_cores", 0.0);
    w.memory_mb = JsonOr(info, "memory_mb", 0.0);
    w.gpus = info.contains("gpus") && info["gpus"].is_array() ? static_cast<int>(info["gpus"].size()) : 0;
    w.cost_per_hour = JsonOr(info, "cost_per_hour", 0.0);
    w.alive = true;
    if (w.registered_at == 0) w.registered_at = WallSeconds();
    w.last_seen_wall = WallSeconds();
    w.last_seen_mono = MonoMicros();
    if (!was_alive) FM_LOG_INFO("worker {} ({}) up on node {}", id, w.name, w.node_id);
    w.loaded_models.clear();
    for (const auto& m : JsonOr(info, "loaded_models", json::array())) {
      if (m.is_string()) w.loaded_models.push_back(m.get<std::string>());
    }
    SyncWorker(w);
    PersistWorker(w);
    workers_dirty = true;
    dispatch_needed = true;
  }

  void PersistWorker(const Worker& w) {
    state::WorkerRecord r;
    r.worker_id = w.id;
    r.node_id = w.node_id;
    r.name = w.name;
    r.status = !w.alive ? "DOWN" : (w.running.empty() ? "IDLE" : "BUSY");
    r.info_json = w.info.dump();
    r.registered_at = w.registered_at;
    r.last_seen = w.last_seen_wall;
    r.cordoned = w.cordoned;
    store->Write([r](state::WriteTxn& txn) { return txn.PutWorker(r); });
  }

  void WorkerDown(const std::string& id, const std::string& reason) {
    auto wit = workers.find(id);
    if (wit == workers.end() || !wit->second.alive) return;
    Worker& w = wit->second;
    w.alive = false;
    SyncWorker(w);
    workers_lost++;
    FM_LOG_WARN("worker {} ({}) down: {}", id, w.name, reason);
    std::vector<std::string> running(w.running.begin(), w.running.end());
    for (const auto& task_id : running) {
      auto t = tasks.find(task_id);
      if (t == tasks.end()) continue;
      if (t->second.rec.status == TaskState::kCancelling) {
        Cancelled(t->second);
      } else if (t->second.rec.status == TaskState::kDispatched) {
        Fail(t->second, "worker " + id + " lost: " + reason, true);
      }
    }
    w.running.clear();
    w.used_cpu = w.used_memory_mb = 0;
    w.used_gpus = 0;
    PersistWorker(w);
    workers_dirty = true;
  }

  void OnStackWorkers(const json& m) {
    std::string node_id = JsonOr(m, "node_id", "");
    auto nit = nodes.find(node_id);
    if (nit == nodes.end()) return;
    nit->second.stack_workers = JsonOr(m, "workers", json::array());
    if (node_id == local_node) {
      MutexLock lock(snap_mu);
      stack_snapshot = nit->second.stack_workers;
    }
  }

  void OnCommandResult(const json& m) {
    std::string id = JsonOr(m, "command_id", "");
    auto it = commands.find(id);
    if (it == commands.end()) return;
    PendingCommand cmd = std::move(it->second);
    commands.erase(it);
    loop.CancelTimer(cmd.timer);
    if (!JsonOr(m, "ok", false)) {
      cmd.done(Status(StatusCode::kFailedPrecondition, JsonOr(m, "detail", std::string("command failed"))));
      return;
    }
    json record = json{{"name", cmd.name}};
    auto nit = nodes.find(local_node);
    if (nit != nodes.end()) {
      for (const auto& w : nit->second.stack_workers) {
        if (JsonOr(w, "name", "") == cmd.name) record = w;
      }
    }
    if (cmd.kind == "remove_worker") record["status"] = "REMOVED";
    cmd.done(record);
  }

  void ApplyOne(const std::string& payload) {
    json m = json::parse(payload, nullptr, false);
    if (!m.is_object()) {
      FM_LOG_WARN("dropping malformed bus message ({} bytes)", payload.size());
      return;
    }
    bus_messages++;
    std::string kind = JsonOr(m, "kind", "");
    try {
      if (kind == "task_event") {
        OnTaskEvent(m);
      } else if (kind == "worker_up") {
        WorkerUp(m);
      } else if (kind == "worker_down") {
        WorkerDown(JsonOr(m, "worker_id", ""), JsonOr(m, "reason", "worker stopped"));
      } else if (kind == "stack_workers") {
        OnStackWorkers(m);
      } else if (kind == "command_result") {
        OnCommandResult(m);
      } else {
        FM_LOG_WARN("dropping bus message of unknown kind '{}'", kind);
      }
    } catch (const json::exception& e) {
      // A well-formed object with fields of the wrong types: drop it, keep serving.
      FM_LOG_WARN("dropping bus message of kind '{}': {}", kind, e.what());
    }
  }

  void OnHeartbeat(const json& m) {
    if (!m.is_object() || !m.contains("workers") || !m["workers"].is_array()) return;
    int64_t now = MonoMicros();
    double wall = WallSeconds();
    for (const auto& hw : m["workers"]) {
      if (!hw.is_object()) continue;
      auto it = workers.find(JsonOr(hw, "worker_id", ""));
      if (it == workers.end()) continue;
      Worker& w = it->second;
      w.last_seen_mono = now;
      w.last_seen_wall = wall;
      if (!w.alive) {
        // Declared dead during a gap (Redis restart, a stall) but it is still there: its
        // supervisor only announces workers when they connect, so take it back here.
        FM_LOG_INFO("worker {} ({}) is heartbeating again; back in service", w.id, w.name);
        w.alive = true;
        SyncWorker(w);
        PersistWorker(w);
        workers_dirty = true;
        dispatch_needed = true;
      }
      if (auto lm = hw.find("loaded_models"); lm != hw.end() && lm->is_array()) {
        std::vector<std::string> models;
        for (const auto& m : *lm) {
          if (m.is_string()) models.push_back(m.get<std::string>());
        }
        if (models != w.loaded_models) {
          w.loaded_models = std::move(models);
          placer.SetKeys(w.id, w.loaded_models);
          dispatch_needed = true;
          workers_dirty = true;
        }
      }
      if (int free_seq = JsonOr(hw, "free_sequence_slots", -1); free_seq != w.free_sequence_slots) {
        w.free_sequence_slots = free_seq;
        placer.SetSequenceSlots(w.id, free_seq);
        dispatch_needed = true;
        workers_dirty = true;
      }
      if (hw.contains("running") && hw["running"].is_array()) Reconcile(w, hw["running"], wall);
    }
  }

  // A dispatch or a final event lost on the bus (Redis killed before it persisted them)
  // shows as an attempt we think runs on a worker whose heartbeats do not list it. After a
  // grace period and three such heartbeats in a row, the attempt is failed (retryable).
  static constexpr int kMissedHeartbeatsToReclaim = 3;

  void Reconcile(Worker& w, const json& running, double wall) {
    std::set<std::string> listed;
    for (const auto& r : running) {
      if (r.is_object() && r.contains("task_id") && r["task_id"].is_string() && r.contains("attempt") &&
          r["attempt"].is_number_integer()) {
        listed.insert(r["task_id"].get<std::string>() + "#" + std::to_string(r["attempt"].get<int>()));
      }
    }
    std::vector<std::string> ids(w.running.begin(), w.running.end());
    for (const auto& id : ids) {
      auto it = tasks.find(id);
      if (it == tasks.end()) continue;
      Task& t = it->second;
      bool is_listed = listed.count(id + "#" + std::to_string(t.rec.attempts)) > 0;
      if (t.rec.status == TaskState::kCancelling) {
        // The interrupt or the worker's answer may have been lost: ask again while the
        // attempt runs, and settle the cancellation once the worker no longer has it.
        if (is_listed) {
          SendInterrupt(t);
        } else if (wall - t.rec.dispatched_ts >= config.worker_grace_s) {
          Cancelled(t);
        }
        continue;
      }
      if (t.rec.status != TaskState::kDispatched) continue;
      if (is_listed) {
        t.missed_heartbeats = 0;
        continue;
      }
      if (wall - t.rec.dispatched_ts < config.worker_grace_s) continue;
      if (++t.missed_heartbeats < kMissedHeartbeatsToReclaim) continue;
      FM_LOG_WARN("task {} attempt {} is unknown to worker {}; dispatching it again", id, t.rec.attempts, w.id);
      Fail(t, "worker " + w.id + " does not know attempt " + std::to_string(t.rec.attempts) +
                  " (a dispatch or its outcome was lost on the bus)",
           true);
    }
  }

  // Asks the worker running `t` to stop it: CANCELLING now, CANCELLED when the worker says so.
  // `flag` names why in the TASK_UPDATE event (cancel_requested | stop_requested).
  void RequestInterrupt(Task& t, const char* flag) {
    SetState(t, TaskState::kCancelling);
    PersistTask(t);
    Emit("TASK_UPDATE", t, "", false, json{{flag, true}});
    SendInterrupt(t);
  }

  void SendInterrupt(const Task& t) {
    auto w = workers.find(t.rec.assigned_worker);
    if (w == workers.end()) return;
    Send(bus::NodeStream(w->second.node_id),
         json{{"kind", "interrupt"}, {"worker_id", w->first}, {"task_id", t.rec.task_id},
              {"attempt", t.rec.attempts}});
  }

  // Elasticity (off unless configured): ask the local supervisor for one more native
  // worker while the queue outgrows free capacity, up to max_workers; remove workers the
  // elasticity started once they have been idle past the timeout, down to min_workers.
  void Elasticity() {
    if (!config.elasticity.enabled || local_node.empty()) return;
    placement::ElasticityAdvice advice = placer.Advise(config.elasticity, MonoSeconds());
    if (advice.start > 0 && elastic_starting == 0) {
      std::string name = NextWorkerName("elastic");
      ++elastic_starting;
      elastic_names.insert(name);
      FM_LOG_INFO("elasticity: {} task(s) queued beyond free capacity; starting worker {}", placer.queued(), name);
      SendLocalCommand("start_worker", name, json{{"worker_config", config.elastic_worker_config}},
                       [this, name](Result<json> r) {
                         loop.Post([this, name, ok = r.ok()] {
                           --elastic_starting;
                           if (!ok) elastic_names.erase(name);
                         });
                       });
    }
    for (const auto& id : advice.retire) {
      auto wit = workers.find(id);
      if (wit == workers.end() || wit->second.node_id != local_node) continue;
      const std::string name = wit->second.name;
      if (!elastic_names.count(name)) continue;  // only what elasticity started
      elastic_names.erase(name);
      FM_LOG_INFO("elasticity: worker {} ({}) idle for {} s; removing it", id, name, config.elasticity.idle_timeout_s);
      SendLocalCommand("remove_worker", name, json::object(), [](Result<json>) {});
    }
  }

  void Watchdog() {
    int64_t now = MonoMicros();
    int64_t grace = static_cast<int64_t>(config.worker_grace_s * 1e6);
    std::vector<std::string> dead;
    for (auto& [id, w] : workers) {
      if (w.alive && now - w.last_seen_mono > grace) dead.push_back(id);
    }
    for (const auto& id : dead) WorkerDown(id, "no heartbeat for " + std::to_string(config.worker_grace_s) + " s");
    FailUnplaceable();
    Elasticity();
    workers_dirty = true;
    loop.PostDelayed(std::chrono::microseconds(static_cast<int64_t>(config.watchdog_interval_s * 1e6)),
                     [this] { Watchdog(); });
  }

  void RefreshWorkersSnapshot() {
    json arr = json::array();
    double wall = WallSeconds();
    for (const auto& [id, w] : workers) {
      json rec = w.info.is_object() ? w.info : json::object();
      rec["worker_id"] = id;
      rec["node_id"] = w.node_id;
      rec["name"] = w.name;
      rec["alias"] = w.alias;
      rec["status"] = !w.alive ? "DOWN" : (w.running.empty() ? "IDLE" : "BUSY");
      rec["cordoned"] = w.cordoned;
      rec["stale"] = !w.alive || wall - w.last_seen_wall > config.worker_grace_s;
      rec["last_seen"] = w.last_seen_wall;
      rec["registered_at"] = w.registered_at;
      rec["running_tasks"] = json(std::vector<std::string>(w.running.begin(), w.running.end()));
      rec["free_slots"] = w.alive ? std::max(0, w.slots - static_cast<int>(w.running.size())) : 0;
      // What its inference engines hold and can take, as of its last heartbeat.
      rec["loaded_models"] = w.loaded_models;
      if (w.free_sequence_slots >= 0) rec["free_sequence_slots"] = w.free_sequence_slots;
      arr.push_back(std::move(rec));
    }
    MutexLock lock(snap_mu);
    workers_snapshot = std::move(arr);
  }

  // ---- commands to the local supervisor ----

  void SendLocalCommand(const std::string& kind, const std::string& name, json body,
                        JsonCallback done) {
    if (local_node.empty()) {
      waiting_for_local_node.push_back([this, kind, name, body, done] {
        SendLocalCommand(kind, name, body, done);
      });
      return;
    }
    std::string command_id = NewId("cmd");
    json msg = {{"kind", kind}, {"command_id", command_id}, {"name", name}};
    if (kind == "start_worker") msg["worker_config"] = JsonOr(body, "worker_config", json::object());
    PendingCommand cmd;
    cmd.done = std::move(done);
    cmd.kind = kind;
    cmd.name = name;
    cmd.timer = loop.PostDelayed(
        std::chrono::microseconds(static_cast<int64_t>(config.command_timeout_s * 1e6)),
        [this, command_id] {
          auto it = commands.find(command_id);
          if (it == commands.end()) return;
          auto cb = std::move(it->second.done);
          commands.erase(it);
          cb(DeadlineExceeded("the node did not answer in time"));
        });
    commands.emplace(command_id, std::move(cmd));
    Send(bus::NodeStream(local_node), std::move(msg));
  }

  std::string NextWorkerName(const std::string& type) {
    std::set<std::string> taken;
    auto nit = nodes.find(local_node);
    if (nit != nodes.end()) {
      for (const auto& w : nit->second.stack_workers) taken.insert(JsonOr(w, "name", ""));
    }
    for (const auto& [id, c] : commands) taken.insert(c.name);
    for (int i = 1;; ++i) {
      std::string n = type + "-" + std::to_string(i);
      if (!taken.count(n)) return n;
    }
  }
};

Scheduler::Scheduler(SchedulerConfig config, state::Store* store, std::shared_ptr<bus::Bus> bus,
                     EventHub* hub, cas::ContentStore* content)
    : impl_(std::make_unique<Impl>(config, store, std::move(bus), hub, content)) {
  impl_->loop.SetAfterBatch([this] { impl_->AfterBatch(); });
}

Scheduler::~Scheduler() { Stop(); }

Status Scheduler::Recover() {
  Impl& s = *impl_;
  FM_ASSIGN_OR_RETURN(s.next_cursor, s.store->MaxEventCursor());
  FM_ASSIGN_OR_RETURN(auto nodes, s.store->ListNodes());
  for (auto& n : nodes) {
    Impl::Node node;
    node.rec = n;
    json info = json::parse(n.info_json, nullptr, false);
    node.local = info.is_object() && JsonOr(info, "local", false);
    if (node.local && (s.local_node.empty() || n.registered_at >= s.nodes[s.local_node].rec.registered_at)) {
      s.local_node = n.node_id;
    }
    s.nodes[n.node_id] = std::move(node);
  }
  FM_ASSIGN_OR_RETURN(auto workers, s.store->ListWorkers());
  int64_t now = MonoMicros();
  for (auto& r : workers) {
    if (r.status == "DOWN") continue;
    Impl::Worker& w = s.workers[r.worker_id];
    json info = json::parse(r.info_json, nullptr, false);
    json up = {{"worker_id", r.worker_id}, {"node_id", r.node_id}, {"info", info.is_object() ? info : json::object()}};
    s.WorkerUp(up);
    w.cordoned = r.cordoned;
    s.placer.SetCordoned(r.worker_id, r.cordoned);
    w.registered_at = r.registered_at;
    w.last_seen_mono = now;  // the watchdog gives it a grace period to prove it is alive
  }
  FM_ASSIGN_OR_RETURN(auto active, s.store->LoadActiveWorkflows());
  size_t n_tasks = 0;
  for (auto& wr : active) {
    state::TaskFilter f;
    f.workflow_id = wr.workflow_id;
    FM_ASSIGN_OR_RETURN(auto recs, s.store->ListTasks(f));
    Impl::Workflow wf;
    wf.rec = wr;
    wf.durable = true;
    Impl::Workflow& stored = s.workflows[wr.workflow_id] = std::move(wf);
    for (auto& r : recs) {
      Impl::Task t;
      t.rec = std::move(r);
      t.spec = json::parse(t.rec.spec_json, nullptr, false);
      if (!t.spec.is_object()) t.spec = json::object();
      t.demand = DemandOf(t.spec);
      Impl::LoadHints(t);
      t.wf = &stored;
      ++stored.counts[static_cast<int>(t.rec.status)];
      Impl::CountEpoch(stored, t);
      s.tasks[t.rec.task_id] = std::move(t);
      ++n_tasks;
    }
  }
  std::vector<std::string> lost, cancelling_lost;
  for (auto& [wf_id, wf] : s.workflows) {
    for (const auto& id : wf.rec.task_ids) {
      auto it = s.tasks.find(id);
      if (it == s.tasks.end()) continue;
      Impl::Task& t = it->second;
      for (const auto& dep : t.rec.depends_on) {
        auto d = s.tasks.find(dep);
        if (d != s.tasks.end() && d->second.rec.status != TaskState::kDone) ++t.unmet;
      }
      if (t.rec.status == TaskState::kPending && t.unmet == 0) s.ready.push_back(id);
      if (t.rec.status == TaskState::kDispatched || t.rec.status == TaskState::kCancelling) {
        auto w = s.workers.find(t.rec.assigned_worker);
        if (w != s.workers.end() && w->second.alive) {
          w->second.running.insert(id);
          w->second.used_cpu += t.demand.cpu;
          w->second.used_memory_mb += t.demand.memory_mb;
          w->second.used_gpus += t.demand.gpus;
          s.Adopt(t);  // it holds its worker's capacity in the placer too
          if (t.rec.status == TaskState::kDispatched) s.RestoreFlight(t);
          if (t.rec.status == TaskState::kCancelling) s.SendInterrupt(t);  // may have been lost
        } else {
          lost.push_back(id);
        }
      }
    }
  }
  for (const auto& id : lost) {
    auto it = s.tasks.find(id);  // an earlier iteration may have finished its workflow
    if (it == s.tasks.end()) continue;
    Impl::Task& t = it->second;
    if (t.rec.status == TaskState::kCancelling) {
      s.Cancelled(t);
    } else {
      s.Fail(t, "worker " + t.rec.assigned_worker + " is gone after a server restart", true);
    }
  }
  std::vector<std::string> wf_ids;
  for (auto& [id, wf] : s.workflows) wf_ids.push_back(id);
  for (const auto& id : wf_ids) s.RefreshWorkflow(id);
  s.RefreshWorkersSnapshot();
  {
    MutexLock lock(s.snap_mu);
    s.local_node_snapshot = s.local_node;
  }
  s.dispatch_needed = true;
  FM_LOG_INFO("recovered {} active workflows, {} tasks, {} workers, next cursor {}",
              s.workflows.size(), n_tasks, s.workers.size(), s.next_cursor + 1);
  return Status::Ok();
}

void Scheduler::SetUsageSink(std::function<void(const state::UsageRecord&)> sink) {
  impl_->usage_sink = std::move(sink);
}

void Scheduler::SetSupplierResolver(
    std::function<std::string(const std::string&, const std::string&)> resolve) {
  impl_->supplier_resolver = std::move(resolve);
}

void Scheduler::Start() {
  impl_->prepare_loop.Start();
  impl_->loop.Start();
  impl_->loop.Post([this] { impl_->Watchdog(); });
}

void Scheduler::Stop() {
  impl_->prepare_loop.Stop();
  impl_->loop.Stop();
}

void Scheduler::Submit(SubmitRequest request, JsonCallback done) {
  impl_->loop.Post([this, req = std::move(request), done = std::move(done)]() mutable {
    impl_->DoSubmit(std::move(req), std::move(done));
  });
}

void Scheduler::CancelWorkflow(const std::string& workflow_id, JsonCallback done) {
  impl_->loop.Post([this, workflow_id, done = std::move(done)] {
    Impl& s = *impl_;
    auto wit = s.workflows.find(workflow_id);
    if (wit == s.workflows.end()) {
      auto rec = s.store->GetWorkflow(workflow_id);
      if (!rec.ok()) {
        done(rec.status());
        return;
      }
      done(json{{"ok", true}, {"workflow_id", workflow_id}, {"status", rec->status},
                {"cancelled", 0}, {"cancelling", 0}});
      return;
    }
    int n_cancelled = 0, n_cancelling = 0;
    std::vector<std::string> ids = wit->second.rec.task_ids;
    for (const auto& id : ids) {
      auto it = s.tasks.find(id);
      if (it == s.tasks.end()) continue;
      Impl::Task& t = it->second;
      if (t.rec.status == TaskState::kPending) {
        if (t.retry_timer != 0) {
          s.loop.CancelTimer(t.retry_timer);
          t.retry_timer = 0;
        }
        s.SetState(t, TaskState::kCancelled);
        t.rec.finished_ts = WallSeconds();
        s.cancelled++;
        s.PersistTask(t);
        s.Emit("TASK_CANCELLED", t);
        ++n_cancelled;
      } else if (t.rec.status == TaskState::kDispatched) {
        s.RequestInterrupt(t, "cancel_requested");
        ++n_cancelling;
      }
    }
    std::string status = s.workflows.count(workflow_id) ? s.workflows[workflow_id].rec.status : "";
    s.RefreshWorkflow(workflow_id);
    auto again = s.workflows.find(workflow_id);
    if (again != s.workflows.end()) status = again->second.rec.status;
    else status = "CANCELLED";
    done(json{{"ok", true}, {"workflow_id", workflow_id}, {"status", status},
              {"cancelled", n_cancelled}, {"cancelling", n_cancelling}});
  });
}

void Scheduler::StopTask(const std::string& task_id, JsonCallback done) {
  impl_->loop.Post([this, task_id, done = std::move(done)] {
    Impl& s = *impl_;
    auto it = s.tasks.find(task_id);
    if (it == s.tasks.end()) {  // its workflow has ended (the API answers for ended tasks)
      done(Status(StatusCode::kFailedPrecondition, "task " + task_id + " is not running"));
      return;
    }
    Impl::Task& t = it->second;
    if (t.rec.status == TaskState::kDispatched) {
      s.RequestInterrupt(t, "stop_requested");
      s.RefreshWorkflow(t.rec.workflow_id);
    } else if (t.rec.status != TaskState::kCancelling) {
      done(Status(StatusCode::kFailedPrecondition,
                  "task " + task_id + " is not running (" + std::string(state::TaskStateName(t.rec.status)) +
                      "); cancel its workflow to drop queued work"));
      return;
    }
    done(json{{"ok", true}, {"task_id", task_id}, {"status", state::TaskStateName(t.rec.status)}});
  });
}

void Scheduler::SetCordon(const std::string& worker_id, bool cordoned, JsonCallback done) {
  impl_->loop.Post([this, worker_id, cordoned, done = std::move(done)] {
    Impl& s = *impl_;
    auto it = s.workers.find(worker_id);
    if (it == s.workers.end()) {
      // Accept an alias as well as an id.
      for (auto w = s.workers.begin(); w != s.workers.end(); ++w) {
        if (w->second.alias == worker_id || w->second.name == worker_id) it = w;
      }
    }
    if (it == s.workers.end()) {
      done(NotFound("worker " + worker_id + " not found"));
      return;
    }
    it->second.cordoned = cordoned;
    s.placer.SetCordoned(it->first, cordoned);
    s.PersistWorker(it->second);
    s.RefreshWorkersSnapshot();
    s.dispatch_needed = true;
    done(json{{"ok", true}, {"worker_id", it->first}, {"cordoned", cordoned}});
  });
}

void Scheduler::SetOrgPolicy(const std::string& org_id, double weight, int max_running_tasks, int max_gpus) {
  impl_->loop.Post([this, org_id, weight, max_running_tasks, max_gpus] {
    impl_->placer.SetOrgPolicy(org_id, {weight > 0 ? weight : 1.0, std::max(0, max_running_tasks), std::max(0, max_gpus)});
    impl_->dispatch_needed = true;
  });
}

void Scheduler::RegisterNode(json body, JsonCallback done) {
  impl_->loop.Post([this, body = std::move(body), done = std::move(done)] {
    Impl& s = *impl_;
    std::string id = JsonOr(body, "node_id", "");
    if (id.rfind("nod-", 0) != 0) id = NewId("nod");
    Impl::Node& node = s.nodes[id];
    node.local = JsonOr(body, "local", false);
    node.rec.node_id = id;
    node.rec.alias = JsonOr(body, "alias", id);
    node.rec.info_json = body.dump();
    if (node.rec.registered_at == 0) node.rec.registered_at = WallSeconds();
    node.rec.last_seen = WallSeconds();
    state::NodeRecord rec = node.rec;
    bool local = node.local;
    s.store->Write([rec](state::WriteTxn& txn) { return txn.PutNode(rec); },
                   [this, id, local, done](const Status& st) {
                     impl_->loop.Post([this, id, local, st, done] {
                       Impl& s = *impl_;
                       if (!st.ok()) {
                         done(st);
                         return;
                       }
                       if (local) {
                         s.local_node = id;
                         {
                           MutexLock lock(s.snap_mu);
                           s.local_node_snapshot = id;
                         }
                         auto waiting = std::move(s.waiting_for_local_node);
                         s.waiting_for_local_node.clear();
                         for (auto& fn : waiting) fn();
                       }
                       FM_LOG_INFO("node {} registered{}", id, local ? " (local)" : "");
                       done(json{{"node_id", id}});
                     });
                   });
  });
}

void Scheduler::StackWorkerCommand(const std::string& kind, const std::string& name,
                                   json body, JsonCallback done) {
  impl_->loop.Post([this, kind, name, body = std::move(body), done = std::move(done)]() mutable {
    Impl& s = *impl_;
    std::string target = name;
    if (kind == "start_worker" && target.empty()) {
      std::string type = JsonOr(JsonOr(body, "worker_config", json::object()), "worker_type", "cpu");
      target = s.NextWorkerName(type);
    }
    s.SendLocalCommand(kind, target, std::move(body), std::move(done));
  });
}

void Scheduler::ApplyBusMessages(const std::vector<bus::Message>& batch) {
  std::promise<void> durable;
  ApplyBusMessagesAsync(batch, [&durable] { durable.set_value(); });
  durable.get_future().wait();
}

void Scheduler::ApplyBusMessagesAsync(const std::vector<bus::Message>& batch,
                                      std::function<void()> durable) {
  std::vector<std::string> payloads;
  payloads.reserve(batch.size());
  for (const auto& m : batch) payloads.push_back(m.payload);
  impl_->loop.Post([this, payloads = std::move(payloads), durable = std::move(durable)] {
    for (const auto& p : payloads) impl_->ApplyOne(p);
    if (impl_->workers_dirty) {  // visible before the caller hears the batch is applied
      impl_->workers_dirty = false;
      impl_->RefreshWorkersSnapshot();
    }
    // Writes commit in order: once this empty op commits, everything above has too.
    impl_->store->Write([](state::WriteTxn&) { return Status::Ok(); },
                        [durable](const Status&) { durable(); });
  });
}

void Scheduler::ApplyHeartbeat(const std::string& payload) {
  json m = json::parse(payload, nullptr, false);
  impl_->loop.Post([this, m = std::move(m)] {
    try {
      impl_->OnHeartbeat(m);
    } catch (const json::exception& e) {
      FM_LOG_WARN("dropping malformed heartbeat: {}", e.what());
    }
  });
}

json Scheduler::WorkersSnapshot() const {
  MutexLock lock(impl_->snap_mu);
  return impl_->workers_snapshot;
}

json Scheduler::InternalUpdate(const std::string& task_id) const {
  MutexLock lock(impl_->internal_mu);
  auto it = impl_->internal_updates.find(task_id);
  return it == impl_->internal_updates.end() ? json() : it->second;
}

json Scheduler::StackWorkersSnapshot() const {
  MutexLock lock(impl_->snap_mu);
  return impl_->stack_snapshot;
}

std::string Scheduler::local_node_id() const {
  MutexLock lock(impl_->snap_mu);
  return impl_->local_node_snapshot;
}

json Scheduler::Metrics() const {
  const Impl& s = *impl_;
  return {{"workflows_submitted_total", s.submitted_workflows.load()},
          {"tasks_submitted_total", s.submitted_tasks.load()},
          {"tasks_dispatched_total", s.dispatched.load()},
          {"tasks_succeeded_total", s.succeeded.load()},
          {"tasks_failed_total", s.failed.load()},
          {"tasks_cancelled_total", s.cancelled.load()},
          {"tasks_retried_total", s.retried.load()},
          {"workers_lost_total", s.workers_lost.load()},
          {"bus_messages_total", s.bus_messages.load()},
          {"tasks_reused_total", s.reused.load()},
          {"tasks_joined_total", s.joined.load()},
          {"scheduler_queue_depth", s.loop.queued()}};
}

}  // namespace flowmesh::scheduler
