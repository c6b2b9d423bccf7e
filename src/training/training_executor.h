// The executors of the training bridge (sft, lora_sft, dpo, ppo, image_classification, and
// the generative diffusion and omni_* ones): each attempt runs `python -m flowmesh_train`
// from the pinned ML venv (scripts/install-ml) through a BridgeProcess and speaks the
// bridge protocol with it (bridge_protocol.h):
//   - before any compute the spec's `training` and `lora` sections are checked against the
//     option tables (spec/executor_options.cc); a refused value is InvalidArgument;
//   - the trainer's log and stderr lines become task logs, its progress messages the
//     task's TASK_UPDATE {progress: {step, loss, tokens_per_second, eta_seconds, ...}};
//   - every file the trainer leaves in its output folder (the final model or LoRA adapter,
//     checkpoints) is listed in the result's `files` (name, size, sha256) and kept in the
//     server's content store (ctx.put_files);
//   - cancellation and timeout (ctx.cancelled) kill the trainer's process group; a trainer
//     that crashes or reports an internal error is Unavailable (retried elsewhere) with the
//     last lines of its stderr; a spec error it finds is InvalidArgument (not retried).
// One executor per attempt; Run blocks its worker thread.
#pragma once

#include <string>

#include "executors/executor.h"

namespace flowmesh::training {

struct TrainingConfig {
  std::string python;              // the ML venv's interpreter
  std::string package_dir;         // the folder that holds the flowmesh_train package
  std::string work_root;           // per-attempt folders; "" = the system temp dir
  size_t max_log_bytes = 8 << 20;  // trainer output forwarded as logs per attempt
};

// Every task type the bridge can run (sorted); a worker offers those its venv's probe lists.
const std::vector<std::string>& TrainingTaskTypes();

// Checks `spec`'s training (and, for lora_sft, lora) section against the option tables
// and resolves their aliases in place. InvalidArgument saying which value is refused.
Status CheckTrainingSpec(const std::string& task_type, nlohmann::json* spec);

class TrainingExecutor : public executors::Executor {
 public:
  TrainingExecutor(std::string task_type, TrainingConfig config)
      : task_type_(std::move(task_type)), config_(std::move(config)) {}
  Result<nlohmann::json> Run(executors::TaskContext& ctx) override;

 private:
  std::string task_type_;
  TrainingConfig config_;
};

// The task types of TrainingTaskTypes() that `python -m flowmesh_train --probe` lists (a
// venv without diffusers lists no diffusion), when the interpreter runs the probe and the
// core training packages are installed; FailedPrecondition saying what is missing otherwise.
Result<std::vector<std::string>> ProbeTrainingTaskTypes(const TrainingConfig& config);
Status ProbeTraining(const TrainingConfig& config);

// Registers the probed task types; returns the probe's status (a worker without the venv
// simply does not offer training or generation, so the scheduler never places them there).
Status RegisterTrainingExecutors(executors::ExecutorRegistry& registry,
                                 const TrainingConfig& config);

}  // namespace flowmesh::training
