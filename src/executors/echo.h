// The echo executor: returns its input items unchanged ({items: [{input, output}]}).
// Test hooks under spec.echo: sleep_seconds (cancellable), fail_attempts (retryable
// failure for attempts <= N), fail (permanent failure with that message).
#pragma once

#include "executors/executor.h"

namespace flowmesh::executors {

class EchoExecutor : public Executor {
 public:
  Result<nlohmann::json> Run(TaskContext& ctx) override;
};

}  // namespace flowmesh::executors
