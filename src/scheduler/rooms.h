// The scheduler's rooms, built and wired together (private to src/scheduler). Each room
// gets only the rooms it calls; the two calls that go "up" (a task leaving PENDING leaves
// the placer's queue; a de-duplication leader ending without a result releases its
// joiners) are hooks the graph calls, set here.
#pragma once

#include <memory>

#include "common/event_loop.h"
#include "placement/placement.h"
#include "scheduler/bus_intake.h"
#include "scheduler/counters.h"
#include "scheduler/deadlines.h"
#include "scheduler/dedup.h"
#include "scheduler/dispatcher.h"
#include "scheduler/liveness.h"
#include "scheduler/node_commands.h"
#include "scheduler/outbox.h"
#include "scheduler/placement_queue.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/submission.h"
#include "scheduler/task_ends.h"
#include "scheduler/task_graph.h"
#include "scheduler/worker_registry.h"

namespace flowmesh::scheduler {

struct Scheduler::Impl {
  Impl(SchedulerConfig c, state::Store* s, std::shared_ptr<bus::Bus> b, EventHub* h,
       cas::ContentStore* cs);

  // Runs after each batch of loop closures: dispatch until idle, refresh the worker
  // snapshot, flush outgoing messages, and arm a real timer for the next deadline.
  void AfterBatch();
  // Sets the gauges that follow the loop's state (queue depth, tasks in flight).
  void UpdateGauges();
  // Registers the fleet's collectors (workers, slots, nodes) in the registry.
  void AddFleetCollectors();
  static constexpr const char* kFleetCollectors[] = {
      "flowmesh_workers", "flowmesh_worker_slots", "flowmesh_worker_slots_busy",
      "flowmesh_worker_utilization", "flowmesh_node_up"};
  // The periodic check: silent workers, unplaceable tasks, elasticity.
  void Watchdog();
  void ArmWakeup();
  void CancelWorkflow(const std::string& workflow_id, const JsonCallback& done);
  void StopTask(const std::string& task_id, const JsonCallback& done);
  // Recovery of the tasks of the active workflows (recovery.cc).
  Status RecoverWorkflows();
  void ResumeRunning(std::vector<std::string>* lost);

  SchedulerConfig config;
  const TimeSource* time;
  state::Store* store;
  cas::ContentStore* content;
  EventLoop loop{"scheduler"};
  EventLoop prepare_loop{"prepare"};  // dataset reads and fetches, off the scheduler loop
  Counters counters;
  std::unique_ptr<metrics::Registry> own_registry;  // when config.metrics is null
  metrics::Registry* registry;
  SchedulerMetrics metrics;
  placement::Placer placer;  // the scheduling core: every dispatch decision is its
  Deadlines deadlines;
  Outbox outbox;
  TaskGraph graph;
  WorkerRegistry workers;
  PlacementQueue queue;
  Dedup dedup;
  TaskEnds ends;
  Dispatcher dispatcher;
  NodeCommands nodes;
  Liveness liveness;
  InternalUpdates internal;  // before intake, which writes it
  BusIntake intake;
  Submission submission;
  EventLoop::TimerId wakeup = 0;  // the real timer armed for the next deadline
  double wakeup_due = 0;          // its deadline (monotonic seconds of `time`)
};

}  // namespace flowmesh::scheduler
