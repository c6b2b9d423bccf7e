// The `inference` and `embedding` executors: they turn a task's data items into
// sequences on the shared per-model Engine (from a ModelCache) and wait for them, so
// tasks running on different worker slots are decoded together.
//
// Result (inference): {items: [{input, output, finish_reason, usage: {prompt_tokens,
// completion_tokens}, [choices], [logprobs]}], model, usage: {prompt_tokens,
// completion_tokens, total_tokens, cached_prompt_tokens}}. Generated text streams as
// task log lines ("[i] text") unless inference.stream is false.
#pragma once

#include <memory>

#include "executors/executor.h"
#include "inference/engine.h"
#include "inference/model_cache.h"

namespace flowmesh::inference {

// Parses a task spec's `inference` object (unknown keys and bad values are errors).
Result<SamplingParams> SamplingFromSpec(const nlohmann::json& task_spec);
// model.adapters as the engine applies them: llama.cpp LoRA GGUF files (`path` ending in
// .gguf, kwargs.scale default 1). FailedPrecondition for other adapters (peft folders are
// converted first by training/lora_inference.h where the worker has the training venv).
Result<std::vector<LoraAdapter>> AdaptersFromSpec(const nlohmann::json& task_spec);

class InferenceExecutor : public executors::Executor {
 public:
  explicit InferenceExecutor(std::shared_ptr<ModelCache> models) : models_(std::move(models)) {}
  Result<nlohmann::json> Run(executors::TaskContext& ctx) override;

 private:
  std::shared_ptr<ModelCache> models_;
};

class EmbeddingExecutor : public executors::Executor {
 public:
  explicit EmbeddingExecutor(std::shared_ptr<ModelCache> models) : models_(std::move(models)) {}
  Result<nlohmann::json> Run(executors::TaskContext& ctx) override;

 private:
  std::shared_ptr<ModelCache> models_;
};

// Registers `inference` and `embedding` on `registry`, sharing `models`.
void RegisterInferenceExecutors(executors::ExecutorRegistry& registry, std::shared_ptr<ModelCache> models);

}  // namespace flowmesh::inference
