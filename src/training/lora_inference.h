// LoRA adapters for the embedded engine: an `inference` task whose model.adapters names a
// peft LoRA adapter (type lora, `path`: a folder on the worker, as a lora_sft task's
// final_lora/ files are laid out; optional kwargs.scale, default 1) over a transformers base
// model (model.source, type local: the folder the adapter was trained on) gets the base and
// the adapter converted to GGUF once each, by llama.cpp's convert_hf_to_gguf.py and
// convert_lora_to_gguf.py from the pinned tree (through `python -m flowmesh_train.gguf` in
// the training venv). The files are kept in a cache named by the digests of the files of the
// base (and the adapter), so later tasks naming the same files use them at once. The task
// then runs on the ordinary inference executor with model.source the base's GGUF and the
// adapter's GGUF in model.adapters: the engine applies it per request, so tasks with other
// adapters of the same base (or none) share one loaded model.
//
// The same executor converts a `model.source: {type: huggingface}` model that the local
// Hugging Face cache holds as a transformers snapshot (config.json and safetensors, no
// .gguf): once per snapshot (its commit names the cached GGUF), then the task loads that.
//
// Adapters named by task_id or url are refused (FailedPrecondition) for now: the worker
// would have to fetch another task's result files, which needs the server to check that the
// task may read them.
//
// GgufAdapterCache is thread-safe: conversions run one at a time.
#pragma once

#include <atomic>
#include <filesystem>
#include <vector>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "executors/executor.h"
#include "training/training_executor.h"

namespace flowmesh::training {

// The llama.cpp source tree the build used (CMake's FLOWMESH_LLAMA_SOURCE_DIR).
const char* BuiltLlamaSourceDir();

struct LoraInferenceConfig {
  TrainingConfig training;    // the venv and the flowmesh_train package
  std::string llama_cpp_dir;  // holds convert_hf_to_gguf.py and gguf-py
  std::string cache_dir;      // converted GGUFs (<digest>.gguf)
  std::string hf_hub_dir;     // the Hugging Face cache (hub/); "" = no snapshot conversion
};

struct LoraGguf {
  std::string base;     // the base model's GGUF
  std::string adapter;  // the adapter's llama.cpp LoRA GGUF
  float scale = 1.0f;
};

class GgufAdapterCache {
 public:
  explicit GgufAdapterCache(LoraInferenceConfig config) : config_(std::move(config)) {}

  // The GGUFs of `model` (a task spec's model section): its base and its adapter, converting
  // what the cache lacks. InvalidArgument / FailedPrecondition for adapters it cannot use
  // (not retried); Unavailable when a conversion crashed; Cancelled.
  Result<LoraGguf> Prepare(const nlohmann::json& model, const std::atomic<bool>& cancelled,
                           const std::function<void(std::string)>& log);

  // The GGUF of a huggingface `model` whose cached snapshot has safetensors and no GGUF,
  // converting it when the cache lacks it; "" when the model is not such a snapshot (the
  // engine resolves it as before). Unavailable when the conversion crashed; Cancelled.
  Result<std::string> PrepareSnapshot(const nlohmann::json& model,
                                      const std::atomic<bool>& cancelled,
                                      const std::function<void(std::string)>& log);

 private:
  // Runs `python -m flowmesh_train.gguf out <args>` unless `out` exists (one at a time).
  Result<std::string> Convert(const std::filesystem::path& out, std::vector<std::string> args,
                              const std::string& what, const std::atomic<bool>& cancelled,
                              const std::function<void(std::string)>& log);

  LoraInferenceConfig config_;
  Mutex convert_mu_;
};

// Replaces the `inference` executor of `registry` by one that first prepares the GGUF of a
// task naming LoRA adapters (tasks without adapters run as before). OK when the venv's probe
// passes and the llama.cpp tree has its converter; otherwise nothing changes and the status
// says why.
Status RegisterLoraInference(executors::ExecutorRegistry& registry,
                             const LoraInferenceConfig& config);

}  // namespace flowmesh::training
