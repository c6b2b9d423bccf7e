// The bridge between the task graph and the scheduling core (placement/placement.h): it
// admits tasks into the placer's queue (with their demand, batch key, locality keys and
// learnt run-time estimate), keeps the placer handle of each, asks for placements, and
// tells the placer when a placed task ends (so fair share and capacity stay right).
// Every dispatch decision is the placer's; this room only translates. Loop-owned.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "placement/placement.h"
#include "scheduler/task_graph.h"
#include "scheduler/worker_registry.h"

namespace flowmesh::scheduler {

class PlacementQueue {
 public:
  PlacementQueue(placement::Placer* placer, TaskGraph* graph, WorkerRegistry* workers,
                 const TimeSource* time)
      : placer_(placer), graph_(graph), workers_(workers), time_(time) {}

  // Queues a ready, prepared task. False when the placer refused it.
  bool Enqueue(Task& t);
  // A task recovered as running on a live worker: the placer counts it there.
  void Adopt(Task& t);
  // Takes a queued (not yet placed) task out of the queue.
  void Unqueue(Task& t);
  // A task ends or leaves its worker: it no longer holds the worker's capacity (in the
  // placer and in the registry). Requests a dispatch pass when capacity was freed.
  void Release(Task& t);
  // A placed task succeeded: its run time feeds the estimate for its batch key.
  void LearnRunTime(const Task& t);

  struct Decision {
    Worker* worker;  // null when the worker is gone
    std::vector<Task*> tasks;
  };
  // The placer's placements; placed tasks that can no longer go (their worker or the task
  // vanished, or it left PENDING) are handed back to the ready queue or dropped.
  std::vector<Decision> Schedule();
  // Queued tasks no worker could ever run, past the grace period, with the reason.
  // (Ids, not pointers: failing one may drop its workflow, and the others with it.)
  std::vector<std::pair<std::string, std::string>> FindUnplaceable(double grace_s);

 private:
  placement::Placer* placer_;
  TaskGraph* graph_;
  WorkerRegistry* workers_;
  const TimeSource* time_;
  std::unordered_map<uint64_t, std::string> handle_task_;  // placer handle -> task id
  // Run time at speed 1 per batch key, a moving average of completed runs: the placer's
  // estimate (fair-share charge; waiting for a busy faster worker needs one).
  std::unordered_map<std::string, double> run_estimates_;
  uint64_t next_handle_ = 1;
};

}  // namespace flowmesh::scheduler
