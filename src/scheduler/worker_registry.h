// The worker registry: the live view of every worker the scheduler knows (what it
// advertised, whether it is alive, what runs on it and what that holds of its capacity),
// kept in step with the placer's view, persisted to the store, and published to the API as
// a snapshot. Liveness decisions (heartbeats, the watchdog) are made by Liveness; this
// room only records them. Loop-owned, except the snapshots (thread-safe copies).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "placement/placement.h"
#include "scheduler/task_graph.h"
#include "state/store.h"

namespace flowmesh::scheduler {

struct Worker {
  std::string id, node_id, name, alias, worker_type;
  nlohmann::json info;
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

// Relative throughput the worker advertised (1 when it did not), for a task category.
double SpeedOf(const Worker& w, placement::Category category);

class WorkerRegistry {
 public:
  WorkerRegistry(state::Store* store, placement::Placer* placer, const TimeSource* time,
                 double worker_grace_s)
      : store_(store), placer_(placer), time_(time), worker_grace_s_(worker_grace_s) {}

  Worker* Find(const std::string& id);
  // By id, else by alias or name.
  Worker* FindByIdOrName(const std::string& id_or_name);
  std::map<std::string, Worker>& all() { return workers_; }

  // A worker_up message (or a recovered record): registers or refreshes the worker from
  // what it advertised. Returns it, or null when the message names no worker.
  Worker* Up(const nlohmann::json& message);
  // Marks it dead and returns the tasks that were running on it; once the caller has
  // ended them, ClearRunning() frees whatever they still hold and persists it as DOWN.
  std::vector<std::string> MarkDown(Worker& w);
  void ClearRunning(Worker& w);
  // A heartbeat from a worker declared dead: back in service.
  void Revive(Worker& w);
  void SetCordoned(Worker& w, bool cordoned);
  void SetLoadedModels(Worker& w, std::vector<std::string> models);
  void SetFreeSequenceSlots(Worker& w, int free_sequence_slots);

  // Capacity held by a task running on the worker.
  void Hold(Worker& w, const std::string& task_id, const spec::Demand& d);
  // Frees it; false when the task was not running there.
  bool Free(Worker& w, const std::string& task_id, const spec::Demand& d);

  void Persist(const Worker& w);
  // The API's worker snapshot is rebuilt once per loop batch when something changed.
  void MarkDirty() { dirty_ = true; }
  void RefreshSnapshotIfDirty();
  void RefreshSnapshot();
  nlohmann::json Snapshot() const;

  // Workers and slots of one node, as of the last snapshot (thread-safe copy).
  struct NodeLoad {
    int idle = 0, busy = 0, down = 0;  // workers by status
    int slots = 0;                     // slots of live workers
    int busy_slots = 0;                // of those, held by running tasks
  };
  std::map<std::string, NodeLoad> Load() const;

 private:
  placement::WorkerSpec PlacementSpecOf(const Worker& w) const;
  void Sync(const Worker& w);

  state::Store* store_;
  placement::Placer* placer_;
  const TimeSource* time_;
  double worker_grace_s_;
  std::map<std::string, Worker> workers_;
  bool dirty_ = false;
  mutable Mutex snap_mu_;
  nlohmann::json snapshot_ FM_GUARDED_BY(snap_mu_) = nlohmann::json::array();
  std::map<std::string, NodeLoad> load_ FM_GUARDED_BY(snap_mu_);
};

}  // namespace flowmesh::scheduler
