#include "scheduler/worker_registry.h"

#include <algorithm>

#include "common/json_util.h"
#include "common/log.h"

namespace flowmesh::scheduler {

using nlohmann::json;

double SpeedOf(const Worker& w, placement::Category category) {
  double speed = JsonOr(w.info, "speed", 1.0);
  if (category == placement::Category::kTraining) speed = JsonOr(w.info, "training_speed", speed);
  return speed > 0 ? speed : 1.0;
}

Worker* WorkerRegistry::Find(const std::string& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

Worker* WorkerRegistry::FindByIdOrName(const std::string& id_or_name) {
  if (Worker* w = Find(id_or_name)) return w;
  Worker* found = nullptr;
  for (auto& [id, w] : workers_) {
    if (w.alias == id_or_name || w.name == id_or_name) found = &w;
  }
  return found;
}

Worker* WorkerRegistry::Up(const json& m) {
  std::string id = JsonOr(m, "worker_id", "");
  if (id.empty()) return nullptr;
  const json& info = m.contains("info") && m["info"].is_object() ? m["info"] : json::object();
  Worker& w = workers_[id];
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
  if (w.registered_at == 0) w.registered_at = time_->WallSeconds();
  w.last_seen_wall = time_->WallSeconds();
  w.last_seen_mono = time_->MonoMicros();
  if (!was_alive) FM_LOG_INFO("worker {} ({}) up on node {}", id, w.name, w.node_id);
  w.loaded_models.clear();
  for (const auto& model : JsonOr(info, "loaded_models", json::array())) {
    if (model.is_string()) w.loaded_models.push_back(model.get<std::string>());
  }
  Sync(w);
  Persist(w);
  dirty_ = true;
  return &w;
}

std::vector<std::string> WorkerRegistry::MarkDown(Worker& w) {
  w.alive = false;
  Sync(w);
  std::vector<std::string> running(w.running.begin(), w.running.end());
  return running;
}

void WorkerRegistry::ClearRunning(Worker& w) {
  w.running.clear();
  w.used_cpu = w.used_memory_mb = 0;
  w.used_gpus = 0;
  Persist(w);
  dirty_ = true;
}

void WorkerRegistry::Revive(Worker& w) {
  w.alive = true;
  Sync(w);
  Persist(w);
  dirty_ = true;
}

void WorkerRegistry::SetCordoned(Worker& w, bool cordoned) {
  w.cordoned = cordoned;
  placer_->SetCordoned(w.id, cordoned);
  Persist(w);
  dirty_ = true;
}

void WorkerRegistry::SetLoadedModels(Worker& w, std::vector<std::string> models) {
  w.loaded_models = std::move(models);
  placer_->SetKeys(w.id, w.loaded_models);
  dirty_ = true;
}

void WorkerRegistry::SetFreeSequenceSlots(Worker& w, int free_sequence_slots) {
  w.free_sequence_slots = free_sequence_slots;
  placer_->SetSequenceSlots(w.id, free_sequence_slots);
  dirty_ = true;
}

void WorkerRegistry::Hold(Worker& w, const std::string& task_id, const spec::Demand& d) {
  w.running.insert(task_id);
  w.used_cpu += d.cpu;
  w.used_memory_mb += d.memory_mb;
  w.used_gpus += d.gpus;
  dirty_ = true;
}

bool WorkerRegistry::Free(Worker& w, const std::string& task_id, const spec::Demand& d) {
  if (w.running.erase(task_id) == 0) return false;
  w.used_cpu = std::max(0.0, w.used_cpu - d.cpu);
  w.used_memory_mb = std::max(0.0, w.used_memory_mb - d.memory_mb);
  w.used_gpus = std::max(0, w.used_gpus - d.gpus);
  dirty_ = true;
  return true;
}

void WorkerRegistry::Persist(const Worker& w) {
  state::WorkerRecord r;
  r.worker_id = w.id;
  r.node_id = w.node_id;
  r.name = w.name;
  r.status = !w.alive ? "DOWN" : (w.running.empty() ? "IDLE" : "BUSY");
  r.info_json = w.info.dump();
  r.registered_at = w.registered_at;
  r.last_seen = w.last_seen_wall;
  r.cordoned = w.cordoned;
  store_->Write([r](state::WriteTxn& txn) { return txn.PutWorker(r); });
}

placement::WorkerSpec WorkerRegistry::PlacementSpecOf(const Worker& w) const {
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
  spec.free_sequence_slots = w.free_sequence_slots >= 0
                                 ? w.free_sequence_slots
                                 : JsonOr(w.info, "free_sequence_slots", -1);
  return spec;
}

void WorkerRegistry::Sync(const Worker& w) {
  if (!w.alive) {
    placer_->RemoveWorker(w.id);
    return;
  }
  placer_->UpsertWorker(PlacementSpecOf(w), time_->MonoSeconds());
  placer_->SetCordoned(w.id, w.cordoned);
}

void WorkerRegistry::RefreshSnapshotIfDirty() {
  if (!dirty_) return;
  dirty_ = false;
  RefreshSnapshot();
}

void WorkerRegistry::RefreshSnapshot() {
  json arr = json::array();
  std::map<std::string, NodeLoad> load;
  double wall = time_->WallSeconds();
  for (const auto& [id, w] : workers_) {
    NodeLoad& l = load[w.node_id];
    if (!w.alive) {
      ++l.down;
    } else {
      ++(w.running.empty() ? l.idle : l.busy);
      l.slots += w.slots;
      l.busy_slots += std::min(w.slots, static_cast<int>(w.running.size()));
    }
    json rec = w.info.is_object() ? w.info : json::object();
    rec["worker_id"] = id;
    rec["node_id"] = w.node_id;
    rec["name"] = w.name;
    rec["alias"] = w.alias;
    rec["status"] = !w.alive ? "DOWN" : (w.running.empty() ? "IDLE" : "BUSY");
    rec["cordoned"] = w.cordoned;
    rec["stale"] = !w.alive || wall - w.last_seen_wall > worker_grace_s_;
    rec["last_seen"] = w.last_seen_wall;
    rec["registered_at"] = w.registered_at;
    rec["running_tasks"] = json(std::vector<std::string>(w.running.begin(), w.running.end()));
    rec["free_slots"] = w.alive ? std::max(0, w.slots - static_cast<int>(w.running.size())) : 0;
    // What its inference engines hold and can take, as of its last heartbeat.
    rec["loaded_models"] = w.loaded_models;
    if (w.free_sequence_slots >= 0) rec["free_sequence_slots"] = w.free_sequence_slots;
    arr.push_back(std::move(rec));
  }
  MutexLock lock(snap_mu_);
  snapshot_ = std::move(arr);
  load_ = std::move(load);
}

std::map<std::string, WorkerRegistry::NodeLoad> WorkerRegistry::Load() const {
  MutexLock lock(snap_mu_);
  return load_;
}

json WorkerRegistry::Snapshot() const {
  MutexLock lock(snap_mu_);
  return snapshot_;
}

}  // namespace flowmesh::scheduler
