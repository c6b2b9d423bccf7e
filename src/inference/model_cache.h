// The models a worker holds loaded: one Engine per (model, engine options), kept within a
// memory budget, least recently used first out (only engines with no sequence running
// are evicted). Thread-safe; loading happens on the caller's thread, one load at a time.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "inference/engine.h"
#include "inference/model_source.h"

namespace flowmesh::inference {

struct ModelCacheConfig {
  uint64_t memory_budget_bytes = 0;  // 0: no limit
  int default_slots = 16;            // sequence slots per engine unless model.llamacpp.n_seq says
  int default_threads = 0;           // 0: hardware threads
  int default_gpu_layers = 0;        // -1 (all) on GPU workers built with FLOWMESH_CUDA
  ModelSourceConfig sources;
};

class ModelCache {
 public:
  explicit ModelCache(ModelCacheConfig config);
  ~ModelCache();

  // The engine for a task spec's model and model.llamacpp options, loading it if needed.
  // Errors: InvalidArgument / FailedPrecondition (bad options, model not found, corrupt
  // file) are permanent.
  Result<std::shared_ptr<Engine>> Acquire(const nlohmann::json& task_spec);

  // spec::ModelKey of every loaded model (sorted, unique).
  std::vector<std::string> LoadedModels() const;
  // Free sequence slots over all loaded engines; default_slots when none is loaded.
  int FreeSequenceSlots() const;

 private:
  struct Entry {
    std::string key;        // model key + engine options
    std::string model_key;  // spec::ModelKey
    std::shared_ptr<Engine> engine;
  };
  ModelCacheConfig config_;
  mutable Mutex mu_;
  std::list<Entry> entries_ FM_GUARDED_BY(mu_);  // most recently used first
  Mutex load_mu_;                                // one load at a time
};

}  // namespace flowmesh::inference
