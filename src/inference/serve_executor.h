// The `serve` executor: a model as a long-running OpenAI-compatible endpoint. It loads the
// model through the worker's shared ModelCache (so the endpoint's requests are decoded in
// the same batch as inference tasks on that engine), starts a ServeEndpoint, reports where
// it listens in a TASK_UPDATE, and serves until ttlSeconds, idleTimeoutSeconds or cancel.
//
// The update is {serve: {mode, host, port, model}, _internal: {serve_key}}: the per-task
// key the server's proxy presents travels in `_internal`, which the scheduler keeps to
// itself (never stored, never shown). Result: {model, port, mode, requests, stopped:
// ttl | idle}.
#pragma once

#include <memory>
#include <string>

#include "executors/executor.h"
#include "inference/model_cache.h"

namespace flowmesh::inference {

struct ServeSettings {
  std::string listen_address = "127.0.0.1";  // what forward/proxy-mode endpoints bind
  std::string advertise_host;  // how the server reaches them ("": the listen address)
  int max_concurrent = 64;     // requests worked on at once per endpoint
  double default_ttl_s = 3600;
  double max_ttl_s = 86400;
};

class ServeExecutor : public executors::Executor {
 public:
  ServeExecutor(std::shared_ptr<ModelCache> models, ServeSettings settings)
      : models_(std::move(models)), settings_(std::move(settings)) {}
  Result<nlohmann::json> Run(executors::TaskContext& ctx) override;

 private:
  std::shared_ptr<ModelCache> models_;
  ServeSettings settings_;
};

// Registers `serve` on `registry`, sharing `models` with the inference executors.
void RegisterServeExecutor(executors::ExecutorRegistry& registry, std::shared_ptr<ModelCache> models,
                           ServeSettings settings);

}  // namespace flowmesh::inference
