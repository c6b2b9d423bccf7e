// The scheduler: owns the in-memory task graph of every active workflow, the live view
// of workers, and the ready queue. All of that state lives on one EventLoop thread; the
// API and the bus consumer talk to it by posting closures. Inside, it is a set of rooms on
// that loop, each a class with one idea (see docs/internals/scheduler.md):
//
//   TaskGraph       workflows, tasks, states and transitions, the ready queue
//   Submission      a workflow in: records committed, then the typed reply
//   Dispatcher      ready -> prepared (data, conditions) -> placer -> DISPATCHED
//   PlacementQueue  the bridge to the scheduling core (placement/placement.h)
//   Dedup           operator fingerprints, stored results, single flight
//   TaskEnds        success, skip, failure and retries, cancellation, cascades
//   WorkerRegistry  the workers, their capacity and the API's snapshot
//   Liveness        heartbeats, the watchdog, lost attempts
//   NodeCommands    nodes, supervisor commands and their timeouts, elasticity
//   BusIntake       the events stream, parsed and routed
//   Outbox          store writes, events, bus messages out
//   Deadlines       every timer, kept against the injectable TimeSource
//
// Durability: a submission is committed to the store before its reply is sent and
// before any of its tasks is dispatched; later transitions are written behind through
// the store's group commit, and each event is published to subscribers only once it is
// committed. Bus messages are acknowledged only after the writes they caused commit.
//
// Time: every deadline (watchdog period, worker grace, retry backoff, command timeouts,
// unplaceable grace) is read from config.time. With a clock that advances by itself the
// loop arms real timers for them; with a ManualTimeSource nothing fires until the test
// advances it and calls Tick().
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "cas/content_store.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "placement/placement.h"
#include "scheduler/event_hub.h"
#include "scheduler/node_commands.h"
#include "scheduler/submission.h"
#include "state/store.h"

namespace flowmesh::scheduler {

struct SchedulerConfig {
  double worker_grace_s = 5.0;        // silence after which a worker is declared dead
  double watchdog_interval_s = 1.0;
  double retry_backoff_base_s = 0.1;  // first retry delay; doubles per attempt, with jitter
  double retry_backoff_max_s = 30.0;
  double command_timeout_s = 15.0;    // supervisor commands (start/stop worker)
  std::string data_dir;               // base of relative dataset paths
  // De-duplication of deterministic operators: "off", "tenant" (within an organisation)
  // or "global" (across organisations; a reused result never says whose it was).
  std::string dedup_scope = "tenant";
  placement::PlacementConfig placement;  // utility weights and candidate bounds
  // A queued task no worker of the fleet could ever run fails after this long (0: never).
  double unplaceable_grace_s = 60.0;
  // Elasticity of native workers on the local node (off by default).
  placement::ElasticityConfig elasticity;
  nlohmann::json elastic_worker_config = nlohmann::json::object();  // worker_config of new ones
  // Where time comes from (null: the system clocks). Must outlive the scheduler.
  const TimeSource* time = nullptr;
  // Where the scheduler's metrics go (null: a registry of its own). Must outlive it.
  metrics::Registry* metrics = nullptr;
};

class Scheduler {
 public:
  // `content` stores results that arrive inside TASK_SUCCEEDED events (small ones).
  Scheduler(SchedulerConfig config, state::Store* store, std::shared_ptr<bus::Bus> bus,
            EventHub* hub, cas::ContentStore* content);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Loads active workflows and known workers from the store. Call before Start().
  Status Recover();
  void Start();
  void Stop();

  // Replies (on some thread) once the workflow is durable; the API renders the reply.
  void Submit(SubmitRequest request, SubmitCallback done);
  void CancelWorkflow(const std::string& workflow_id, JsonCallback done);
  // Interrupts one running (DISPATCHED) task: it becomes CANCELLING, then CANCELLED with
  // its dependents. FailedPrecondition (409) when the task is not running.
  void StopTask(const std::string& task_id, JsonCallback done);
  void SetCordon(const std::string& worker_id, bool cordoned, JsonCallback done);
  // Fair-share weight and quotas of an organisation (0: unlimited). Applies to queued work.
  void SetOrgPolicy(const std::string& org_id, double weight, int max_running_tasks, int max_gpus);
  void RegisterNode(nlohmann::json body, JsonCallback done);
  // kind: start_worker (body: a worker init config) | start | stop | remove, on the local node.
  void StackWorkerCommand(const std::string& kind, const std::string& name,
                          nlohmann::json body, JsonCallback done);

  // Applies a batch from the events stream; returns once its effects are durable, so the
  // caller may acknowledge it. Called from the bus consumer thread.
  void ApplyBusMessages(const std::vector<bus::Message>& batch);
  // Applies a batch and calls `durable` (on the store's writer thread) once its effects are
  // committed; returns at once, so the consumer can read on while the commit happens.
  void ApplyBusMessagesAsync(const std::vector<bus::Message>& batch, std::function<void()> durable);
  void ApplyHeartbeat(const std::string& payload);

  // Runs every deadline that is due by config.time (watchdog, retries, timeouts) on the
  // loop, and returns once it (and the dispatch pass after it) ran. Not from the loop.
  void Tick();

  // Tenancy hooks; set before Start(). The usage sink gets one row per ended task attempt
  // (after it is queued for the store's `usage` table) on the scheduler thread: it must
  // not block. The supplier resolver names the supplier of a worker at dispatch ("" none).
  void SetUsageSink(std::function<void(const state::UsageRecord&)> sink);
  void SetSupplierResolver(
      std::function<std::string(const std::string& worker_id, const std::string& info_json)> resolve);

  // Snapshots for the API (thread-safe copies, refreshed on each change).
  nlohmann::json WorkersSnapshot() const;       // array of worker records
  nlohmann::json StackWorkersSnapshot() const;  // local node's worker processes
  std::string local_node_id() const;
  nlohmann::json Metrics() const;
  // The registry holding the scheduler's metrics (config.metrics, or its own).
  metrics::Registry* metrics_registry() const;
  // Liveness of every registered node: {node_id: {alias, status, last_seen, address}}.
  nlohmann::json NodesSnapshot() const;
  // kind: start_worker | stop_worker, for the worker named `name` on any registered node.
  void NodeWorkerCommand(const std::string& node_id, const std::string& kind,
                         const std::string& name, JsonCallback done);
  // What a running task's worker reported for the fabric only: the TASK_UPDATE keys that
  // start with "_" (a serve endpoint's key). Kept in memory, never stored in the task's
  // latest_update nor sent in events; null once the task ended or when there is none.
  nlohmann::json InternalUpdate(const std::string& task_id) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh::scheduler
