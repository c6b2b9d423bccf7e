// flowmesh-sim: a discrete-event simulator of the fabric's scheduling, driven by the same
// placement core (placement/placement.h) as the server, with a virtual clock and fleet.
//
// A workload file (JSON; see bench/workloads/) gives the arrival process, the workflow
// mix (DAGs of inference and training tasks over dataset slices), GPU types with cost and
// relative speed, the inference throughput curve against batch size, the fleet, elasticity
// and failures. Every assumption lives in that file.
//
// Policies:
//   flowmesh        the placement core: fair share, utility, batching up to free slots,
//                   elastic fleet (workers started on demand, retired when idle).
//   static_worker   one dedicated worker per workflow for its life (the cheapest GPU type
//                   that holds all its tasks), its tasks run in dependency order.
//   round_robin     the fixed fleet, each task to the next worker in turn that can take it.
//   fcfs_first_fit  the fixed fleet, tasks in arrival order to the first worker that fits.
// Inference on a worker is processor sharing: the tasks on it share the throughput of the
// curve at the total number of concurrent sequences. Training holds its worker's GPU.
//
// Single-threaded and deterministic for a given workload and seed.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::sim {

struct PolicyResult {
  std::string policy;
  int workflows = 0, completed = 0, failed_tasks = 0;
  double cost = 0;             // Σ worker uptime × cost per hour
  double p50_s = 0, p95_s = 0, mean_s = 0;  // workflow latency (arrival → last task done)
  double utilisation = 0;      // busy worker-seconds / up worker-seconds
  double makespan_s = 0;
  int peak_workers = 0, preempted = 0, retries = 0;
  // Tasks of all workflows; those run on a worker to the end, those completed from a
  // stored result, and those that waited for a running twin (de-duplication).
  int total_tasks = 0, executed_tasks = 0, reused_tasks = 0, joined_tasks = 0;
  std::map<std::string, double> cost_by_type;  // per GPU type: uptime × cost per hour
  std::map<std::string, double> busy_by_type;  // per GPU type: worker-seconds with a task
  std::map<std::string, double> org_share;  // share of worker-seconds per org
  std::map<std::string, std::vector<double>> by_workflow;  // latencies per workflow kind (-1: unfinished)
};

struct SimOptions {
  bool preempt = false;           // apply the workload's failure section
  double horizon_s = 0;           // stop at this time (0: run until every workflow ends)
  std::string dedup_scope;        // off | tenant | global; "" the workload's dedup_scope
};

// Parses and validates a workload document; errors name the offending field.
Result<nlohmann::json> LoadWorkload(const std::string& path);

Result<PolicyResult> Simulate(const nlohmann::json& workload, const std::string& policy,
                              const SimOptions& options);

}  // namespace flowmesh::sim
