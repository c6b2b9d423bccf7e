// Private to src/sim/: the workload model flowmesh-sim runs (GPU types, workflow templates,
// the inference curve, fleet policy, arrivals), parsed and validated from the workload JSON
// (see bench/workloads/ and simulator.h). Arrivals and variants are drawn here, from the
// workload's seed, so a model is deterministic for a given document.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "placement/placement.h"

namespace flowmesh::sim {

struct GpuType {
  std::string name;
  double cost = 0, infer_speed = 1, train_speed = 1, memory_gb = 0;
  double idle_watts = 0, busy_watts = 0;  // power while up and idle / while running a task
  int max_count = 0;  // in the fleet
};

struct TaskDef {
  // kind: inference (rows through the curve), training (holds the whole worker for
  // train_h100_s at training speed 1), cpu (one slot for `seconds`, on any worker).
  std::string name, kind;
  std::string task_type;   // the batch key's task type (the server's taskType); default kind
  double rows = 0, tokens_per_row = 256, train_h100_s = 0, seconds = 0, memory_gb = 0;
  std::string model;       // locality key it needs loaded ("" none)
  std::string produces;    // key it leaves on its worker (adapter / weights), "" none
  int producer = -1;       // the task of this workflow whose `produces` is `model`, -1 none
  std::vector<int> deps, dependents;
};

// A parameter tenants may set when they submit a template (--submissions varied): one of
// `choices`, drawn by weight; "unique" stands for a value no other submission shares.
struct ParameterDef {
  std::string name;
  std::vector<int> affects;  // tasks whose operator it is an input of
  std::vector<std::pair<std::string, double>> choices;  // value, weight
};

struct WorkflowDef {
  std::string name;
  double mix = 1;
  std::vector<TaskDef> tasks;
  int static_gpu = 0;      // cheapest GPU type that holds every task
  // How many distinct parameterisations (data, seed, hyperparameters) the instances of this
  // template are drawn from; 0: every instance is different. Instances of one variant
  // compute the same operators, which the fabric de-duplicates.
  int variants = 0;
  std::vector<ParameterDef> parameters;
};

struct Model {
  std::vector<GpuType> gpus;
  std::vector<WorkflowDef> wfs;
  std::vector<std::pair<double, double>> curve;  // (sequences, tokens/s) on the reference GPU
  // max_sequences: what one engine decodes at once; per_task_sequences: of those, how many
  // rows of one task (default: all of them); slots: tasks a worker runs at once.
  int max_sequences = 64, per_task_sequences = 64, slots = 8;
  double model_load_s = 10, adapter_load_s = 3, startup_s = 60, tick_s = 5;
  double idle_timeout_s = 60;
  double heartbeat_s = 1;  // how often a worker reports its engine's free sequence slots (0: never)
  int min_workers = 0, max_workers = 0;
  bool elastic = true;
  std::vector<std::pair<std::string, double>> orgs;  // name, weight
  std::vector<double> arrivals;
  std::vector<int> arrival_wf;
  std::vector<int> arrival_org;      // index into orgs
  std::vector<int> arrival_variant;  // -1: an instance of its own
  // Per arrival, per task: what the task's own inputs are ("published" submissions: its
  // variant; "varied": the parameter values drawn). Equal strings, equal upstream: equal work.
  std::vector<std::vector<std::string>> arrival_inputs;
  std::string submissions = "published";  // published | varied
  std::string dedup_scope = "off";   // off | tenant | global, as the server's --dedup-scope
  double preempt_at = 0, preempt_fraction = 0;
  uint64_t seed = 1;
  placement::PlacementConfig placement;
};

// Tokens per second on the reference GPU at `s` concurrent sequences (piecewise linear).
double Curve(const Model& m, double s);

bool KnownScope(const std::string& scope);

// Parses and validates a workload document into a Model; errors name the offending field.
Result<Model> BuildModel(const nlohmann::json& w);

}  // namespace flowmesh::sim
