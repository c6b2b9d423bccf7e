// The agent's `python` tool: runs a snippet of Python the model wrote in the same
// bubblewrap sandbox as python tasks (executors/sandbox.h): the worker's python3 in
// isolated mode, a private empty home that is removed afterwards, no network, and tight
// limits (CPU seconds, memory, processes, file size, wall time capped by the run's
// deadline). The result is {exit_code, stdout, stderr} (each at most kMaxToolOutput bytes);
// a timeout, a signal or a sandbox that cannot start is an error the model sees.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent/tool.h"
#include "executors/sandbox.h"

namespace flowmesh::agent {

struct PythonToolConfig {
  std::string python = "/usr/bin/python3";  // under /usr: the sandbox's view of the system
  executors::SandboxRuntime sandbox;
  std::chrono::milliseconds timeout{10000};  // per call, further capped by the deadline
  uint64_t cpu_seconds = 10;
  uint64_t memory_bytes = uint64_t{1} << 30;
  uint64_t processes = 64;
  uint64_t file_size = uint64_t{1} << 20;
};

inline constexpr size_t kMaxToolOutput = 8 * 1024;

std::unique_ptr<Tool> MakePythonTool(PythonToolConfig config = {});

}  // namespace flowmesh::agent
