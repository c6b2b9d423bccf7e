// Worker liveness: workers coming up, going down, heartbeating, and the watchdog that
// declares a silent worker dead after its grace period. A dead worker's running attempts
// are failed (retryable) or, when being cancelled, cancelled. Heartbeats also reconcile
// what a worker says it runs with what the scheduler thinks it runs: an attempt its worker
// does not list for three heartbeats in a row (past the grace period) was lost on the bus
// and is dispatched again. Loop-owned.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "common/clock.h"
#include "scheduler/counters.h"
#include "scheduler/task_ends.h"
#include "scheduler/task_graph.h"
#include "scheduler/worker_registry.h"

namespace flowmesh::scheduler {

class Liveness {
 public:
  Liveness(TaskGraph* graph, WorkerRegistry* workers, TaskEnds* ends, Counters* counters,
           const TimeSource* time, double worker_grace_s)
      : graph_(graph), workers_(workers), ends_(ends), counters_(counters), time_(time),
        grace_s_(worker_grace_s) {}

  // A worker_up message.
  void Up(const nlohmann::json& m);
  void Down(const std::string& worker_id, const std::string& reason);
  // Any sign of life besides a heartbeat (a task event from it).
  void Seen(const std::string& worker_id);
  // A heartbeat message of a node: {"workers": [{worker_id, running, loaded_models, ...}]}.
  void OnHeartbeat(const nlohmann::json& m);
  // Declares dead every live worker silent for longer than the grace period.
  void CheckSilent();

  static constexpr int kMissedHeartbeatsToReclaim = 3;

 private:
  void Reconcile(Worker& w, const nlohmann::json& running, double wall);

  TaskGraph* graph_;
  WorkerRegistry* workers_;
  TaskEnds* ends_;
  Counters* counters_;
  const TimeSource* time_;
  double grace_s_;
};

}  // namespace flowmesh::scheduler
