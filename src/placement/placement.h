// The scheduling core: one ready pool across all tenants and the choice of (batch, worker).
//
// Pure: no I/O, no threads, no clock of its own (every call that needs the time takes
// `now`), so the same code runs in the server's scheduler loop and in flowmesh-sim. Not
// thread-safe: its owner calls it from one thread.
//
// Model
//   - Tasks are queued in *groups*: same organisation, batch key, priority, resource
//     request, GPU type and pin. A group is a FIFO; a task that has failed somewhere gets
//     a group of its own (it must avoid those workers).
//   - Organisations are ordered by weighted virtual time (worker-seconds charged / weight,
//     start-time fair queueing): the org furthest below its share goes first. An org that
//     comes back from idle starts at the current minimum, so saving up is not possible.
//     Quotas (max running tasks, max GPUs) take an org out of the running until a task ends.
//   - Inside an org, groups are ordered by priority (higher first), then by the age of
//     their oldest task.
//   - Workers are indexed per (task type, GPU type) class in two ordered sets of those with
//     a free slot: by cost per unit of work and by speed; and per locality key (model,
//     adapter, dataset, upstream output) the set of free workers holding it.
//   - One decision: the head groups of the `candidate_batches` orgs with the lowest
//     virtual time are the candidate batches; for each, a bounded set of candidate
//     workers (the first few that fit in each index, the holders of its keys, its pinned
//     workers). Every (batch, worker) pair gets
//       U = λ·throughput − (1−λ)·cost + α·locality + β·age + φ·fairness
//     with each term normalised over the candidates (divided by the largest value; the
//     fairness term is 0 for the org with the lowest virtual time and −1 for the highest
//     among the candidates). The best pair is placed: up to the worker's free slots and
//     free resources of the group's tasks go to it together (one batch).
//   - Unless the head task (with a known estimate) would finish sooner on a busy worker
//     that is faster and no dearer per unit of work, counting that worker's expected free
//     time and what other waiting tasks reserved on it: then the task waits for it in a
//     group of its own (earliest finish time with reservations; PlacementConfig::defer_gain).
//
// Complexity, with W workers, G non-empty groups, O orgs, C classes per task type (GPU
// types, a handful), K = candidates_per_index, S = scan_limit:
//   Schedule: per placement O(B·(C·S + log W) + log O + log G) — independent of the number
//   of queued tasks and, with bounded scans, logarithmic in the number of workers.
//   Enqueue O(log G + log O) amortised; Finished O(T·C·log W) for a worker serving T types.
//   A group with no candidate worker now is parked until a worker of its task type frees
//   capacity, so an unrunnable group costs nothing per decision.
// The bounded scan is a heuristic: when the first S free workers of a class all lack the
// resources a task asks for, the task waits for the next change rather than scanning all.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace flowmesh::placement {

struct Resources {
  double cpu = 0;            // cores; 0: not asked / not limited
  double memory_mb = 0;      // 0: not asked / not limited
  int gpus = 0;
  double gpu_memory_mb = 0;  // per GPU; 0: not asked / not known
};

enum class Category : uint8_t { kInference = 0, kTraining = 1, kOther = 2 };
Category CategoryFromTaskType(const std::string& task_type, const std::string& category);

struct PlacementConfig {
  double lambda_inference = 0.4;
  double lambda_training = 0.8;
  double lambda_other = 0.5;
  double alpha_locality = 0.5;
  double beta_age = 0.1;
  double fairness_weight = 1.0;
  int candidate_batches = 3;      // head groups of this many orgs compete per decision
  int candidates_per_index = 4;   // fitting workers taken from each index
  int scan_limit = 64;            // free workers looked at per index before giving up
  // Wait for a busy worker that is faster and no dearer per unit of work when it would
  // finish the task in under defer_gain × the time on the free slower one (0: never).
  double defer_gain = 0.8;
};

// Sets one PlacementConfig field by name (lambda_inference, lambda_training, lambda_other,
// alpha_locality, beta_age, fairness_weight, defer_gain, candidate_batches,
// candidates_per_index, scan_limit). Returns "" or what is wrong, naming the key.
std::string SetPlacementOption(PlacementConfig& config, const std::string& key, double value);
// Applies "key=value,key=value" (the server's --utility). Returns "" or what is wrong.
std::string ParsePlacementOptions(PlacementConfig& config, const std::string& text);

struct OrgPolicy {
  double weight = 1.0;
  int max_running_tasks = 0;  // 0: unlimited
  int max_gpus = 0;           // 0: unlimited
};

struct WorkerSpec {
  std::string id;
  std::vector<std::string> names;  // aliases a pin may use besides the id
  std::vector<std::string> task_types;
  std::string gpu_type;            // "" for a CPU worker
  Resources capacity;
  int slots = 1;
  double cost_per_hour = 0;
  double speed = 1.0;              // relative throughput (1: reference)
  double training_speed = 0;       // relative throughput on training tasks; 0: `speed`
  std::vector<std::string> keys;   // locality: loaded models, adapters, datasets, outputs
  // Decode sequences its inference engines can start now (-1: not known). Inference tasks
  // placed on it count against this until the next report.
  int free_sequence_slots = -1;
};

struct TaskRequest {
  uint64_t handle = 0;             // the caller's id for the task; unique while queued/running
  std::string org;
  int priority = 0;
  std::string batch_key;
  std::string task_type;
  Category category = Category::kOther;
  Resources demand;
  std::string gpu_type;            // required GPU type; "" any
  std::vector<std::string> pinned; // worker ids or names; empty: any
  std::vector<std::string> failed_on;     // worker ids that failed it
  std::vector<std::string> locality_keys; // what a warm worker would hold
  double enqueue_time = 0;
  double est_seconds = 1.0;        // estimated run time at speed 1, for fair-share charging
  // est_seconds comes from a model of the task (the simulator's durations, the server's
  // run-time history); only then may the task wait for a busy faster worker.
  bool est_known = false;
};

struct Placement {
  std::string worker_id;
  std::vector<uint64_t> tasks;     // one batch, in queue order
  double utility = 0;
};

struct Unplaceable {
  uint64_t handle;
  std::string reason;  // what was asked for and what the fleet offers
};

struct ElasticityConfig {
  bool enabled = false;
  int min_workers = 0;
  int max_workers = 0;         // 0: no limit
  double idle_timeout_s = 60;  // retire a worker idle this long
  int queued_per_new_worker = 1;  // queued slot-units beyond free slots that justify one more worker
  // Shape of a new worker: a queued task asking for more cpu than new_worker_cpu /
  // new_worker_slots counts as that many slot-units (a training job that takes a whole
  // worker counts as all its slots). 0: every task is one unit.
  double new_worker_cpu = 0;
  int new_worker_slots = 0;
};

struct ElasticityAdvice {
  int start = 0;                       // workers to ask for
  std::vector<std::string> retire;     // idle worker ids to stop
};

class Placer {
 public:
  explicit Placer(PlacementConfig config = {});
  ~Placer();
  Placer(const Placer&) = delete;
  Placer& operator=(const Placer&) = delete;

  void SetOrgPolicy(const std::string& org, OrgPolicy policy);

  // Registers or updates a worker (capacity, types, keys); it becomes available.
  void UpsertWorker(const WorkerSpec& spec, double now = 0);
  // The worker is gone: its running tasks no longer count against it (the caller decides
  // what happens to them and calls Finished for each).
  void RemoveWorker(const std::string& id);
  void SetCordoned(const std::string& id, bool cordoned);
  void SetKeys(const std::string& id, const std::vector<std::string>& keys);
  void AddKey(const std::string& id, const std::string& key);  // stage stickiness
  // A fresh report of the worker's free decode sequences (-1: not known).
  void SetSequenceSlots(const std::string& id, int free_sequence_slots);
  bool HasWorker(const std::string& id) const;

  // Queues a ready task. False when the handle is already queued or running.
  bool Enqueue(const TaskRequest& task);
  // Takes a queued task out (cancelled, ended before dispatch). False when not queued.
  bool Remove(uint64_t handle);
  bool Queued(uint64_t handle) const;

  // Counts a task already running on a worker (recovered after a restart) against it.
  bool Adopt(const TaskRequest& task, const std::string& worker_id);

  // Places as many batches as free capacity allows (at most max_placements); the tasks of
  // each placement are reserved on its worker until Finished.
  std::vector<Placement> Schedule(double now, int max_placements = std::numeric_limits<int>::max());

  // A placed task ended. worker_seconds >= 0 corrects the fair-share charge to the real
  // run time; < 0 keeps the estimate.
  void Finished(uint64_t handle, double worker_seconds, double now = 0);

  // Queued tasks no worker of the fleet could ever run (type, resources, GPU type, pin),
  // queued for longer than grace_s. They stay queued; the caller fails and Removes them.
  std::vector<Unplaceable> FindUnplaceable(double now, double grace_s);

  // Tasks waiting for a busy faster worker (Defer) do not count towards new workers.
  ElasticityAdvice Advise(const ElasticityConfig& config, double now) const;

  // Whether a queued task is waiting for a busy faster worker rather than a free slower one.
  bool Deferred(uint64_t handle) const;
  uint64_t deferrals() const;  // times a group chose to wait, so far

  size_t queued() const;
  size_t running() const;
  size_t workers() const;
  // Worker-seconds charged per org so far (estimate, corrected on Finished).
  std::map<std::string, double> OrgUsage() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh::placement
