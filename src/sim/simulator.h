// flowmesh-sim: a discrete-event simulator of the fabric's scheduling, driven by the same
// placement core (placement/placement.h) as the server, with a virtual clock and fleet.
//
// A workload file (JSON; see bench/workloads/) gives the arrival process, the workflow
// mix (DAGs of inference and training tasks over dataset slices), GPU types with cost and
// relative speed, the inference throughput curve against batch size, the fleet, elasticity
// and failures. Every assumption lives in that file.
//
// Policies (the baselines are what a competent operator would run, each stated in the
// workload's assumptions):
//   flowmesh                the placement core: fair share, utility, batching up to free
//                           slots, de-duplication (the server's scopes), run times learned
//                           from each batch key's history as the server does, elastic fleet
//                           (workers started on demand, retired when idle).
//   static_tenant_pool      a dedicated pool per tenant: each task on a warm worker of its
//                           tenant (the model already loaded preferred) of its template's
//                           cheapest GPU type; workers started when the tenant's queue needs
//                           them, kept warm across the tenant's workflows, retired after the
//                           workload's idle_timeout_s. Runs every task it is given.
//   shared_fcfs_autoscaled  one shared pool, tasks first come first served, each on the first
//                           free worker of the cheapest GPU type for its kind of work; the
//                           same scale-up on queue and scale-down when idle.
//   naive_static_worker     (naive, for comparison) a fresh worker per workflow for its life.
//   naive_round_robin       (naive) the whole fleet up for the whole run, tasks in turn.
//   naive_fcfs_first_fit    (naive) the whole fleet up, tasks in order to the first that fits.
// Inference on a worker is processor sharing: the tasks on it share the throughput of the
// curve at the total number of concurrent sequences (every row of a task at once, up to the
// engine's max_sequences). Training holds its worker's GPU. A cpu task holds one slot for
// its stated seconds.
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
  double energy_kwh = 0;       // Σ idle watts × idle uptime + busy watts × busy time
  double task_seconds = 0;     // Σ attempts' run time, dispatch → end (the server's usages)
  double worker_seconds = 0;   // Σ worker uptime, start-up included
  int workers_started = 0;     // the fixed fleet counts once
  std::map<std::string, double> learned_s;  // flowmesh: batch key -> learned run time at speed 1
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
  std::string submissions;        // published | varied; "" the workload's submissions
};

// Every policy Simulate knows, the fair ones first.
const std::vector<std::string>& PolicyNames();

// Parses and validates a workload document; errors name the offending field.
Result<nlohmann::json> LoadWorkload(const std::string& path);

Result<PolicyResult> Simulate(const nlohmann::json& workload, const std::string& policy,
                              const SimOptions& options);

}  // namespace flowmesh::sim
