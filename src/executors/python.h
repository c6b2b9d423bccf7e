// The python executor: runs the task's `code` (its `entrypoint` function, default main)
// in a bubblewrap sandbox (executors/sandbox.h) with the worker's own python3, as the
// published `python` task does in its container:
//   - inputs: each upstream stage (python.inputs, or every direct dependency) is mounted
//     read-only at /mnt/flowmesh/inputs/<stage> (or its mountPath) holding results.json
//     ({result, metadata}); the entrypoint's parameters are bound to stages by name;
//   - output: /mnt/flowmesh/output ($FLOWMESH_OUTPUT); the return value becomes the
//     result's `value`, `metrics` (returned or written to metrics.json) its `metrics`,
//     and every other file written there is listed in `files` (name, size, sha256) and
//     kept in the server's content store with the result (`stored`; GET
//     /results/{id}/files/{name}) when the worker has a server (ctx.put_files);
//   - no network unless `network: bridge` (which `requirements` need: pip installs them
//     into the sandbox's /tmp); rlimits from resources.hardware and pythonOutput.maxBytes;
//   - stdout and stderr lines stream as task logs (stderr lines prefixed "[stderr] ").
// Every failure of the code (exception, crash, limit, timeout) is permanent and names
// the cause with the last lines of stderr. One executor per attempt; Run blocks.
#pragma once

#include <cstdint>
#include <string>

#include "executors/executor.h"
#include "executors/sandbox.h"

namespace flowmesh::executors {

struct PythonExecutorConfig {
  std::string python = "/usr/bin/python3";  // must live under /usr (the sandbox's view)
  std::string work_root;                    // per-attempt folders; empty: the system temp dir
  SandboxRuntime sandbox;
  uint64_t default_memory_bytes = uint64_t{4} << 30;  // RLIMIT_AS without resources.memory
  uint64_t max_processes = 256;                       // RLIMIT_NPROC
  uint64_t default_output_bytes = uint64_t{1} << 30;  // RLIMIT_FSIZE and /tmp size
  double default_timeout_s = 600;                     // as the published default
  double max_timeout_s = 3600;
  size_t max_log_bytes = 8 << 20;
  size_t max_result_bytes = 16 << 20;  // result.json / metrics.json
};

class PythonExecutor : public Executor {
 public:
  explicit PythonExecutor(PythonExecutorConfig config = {}) : config_(std::move(config)) {}

  // OK when python3 exists and a sandbox starts here; else FailedPrecondition saying why.
  static Status Available(const PythonExecutorConfig& config);

  Result<nlohmann::json> Run(TaskContext& ctx) override;

 private:
  PythonExecutorConfig config_;
};

}  // namespace flowmesh::executors
