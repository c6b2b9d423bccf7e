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
  int max_count = 0;  // in the fleet
};

struct TaskDef {
  std::string name, kind;  // kind: inference | training
  double rows = 0, tokens_per_row = 256, train_h100_s = 0, memory_gb = 0;
  std::string model;       // locality key it needs loaded ("" none)
  std::string produces;    // key it leaves on its worker (adapter / weights), "" none
  std::vector<int> deps, dependents;
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
};

struct Model {
  std::vector<GpuType> gpus;
  std::vector<WorkflowDef> wfs;
  std::vector<std::pair<double, double>> curve;  // (sequences, tokens/s) on the reference GPU
  int max_sequences = 64, per_task_sequences = 8, slots = 8;
  double model_load_s = 10, adapter_load_s = 3, startup_s = 60, tick_s = 5;
  double idle_timeout_s = 60;
  int min_workers = 0, max_workers = 0;
  bool elastic = true;
  std::vector<std::pair<std::string, double>> orgs;  // name, weight
  std::vector<double> arrivals;
  std::vector<int> arrival_wf;
  std::vector<int> arrival_variant;  // -1: an instance of its own
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
