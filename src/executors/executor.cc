#include "executors/executor.h"

#include "executors/api.h"
#include "executors/data_profiling.h"
#include "executors/data_retrieval.h"
#include "executors/echo.h"
#include "executors/python.h"

namespace flowmesh::executors {

Status StoreResultFiles(TaskContext& ctx, const std::string& dir, nlohmann::json& files,
                        const std::string& what) {
  if (!ctx.put_files || files.empty()) return Status::Ok();
  std::vector<OutputFile> outputs;
  for (const auto& f : files) {
    std::string name = f["name"].get<std::string>();
    outputs.push_back({name, dir + "/" + name});
  }
  auto stored = ctx.put_files(outputs);
  if (!stored.ok()) {
    return Unavailable(what + " could not be stored: " + stored.status().message());
  }
  for (size_t i = 0; i < files.size() && i < stored->size(); ++i) {
    const StoredFile& s = (*stored)[i];
    files[i]["stored"] = s.stored && s.digest == files[i]["sha256"];
    if (!s.stored) {
      files[i]["why_not"] = s.why_not;
      if (ctx.log) ctx.log("[flowmesh] result file " + s.name + " not stored: " + s.why_not);
    } else if (s.digest != files[i]["sha256"]) {
      files[i]["why_not"] = "it changed while it was read";
    }
  }
  return Status::Ok();
}

bool IsRetryable(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnimplemented:
    case StatusCode::kCancelled:
      return false;
    default:
      return true;
  }
}

void ExecutorRegistry::Register(const std::string& task_type, ExecutorFactory factory) {
  factories_[task_type] = std::move(factory);
}

Result<std::unique_ptr<Executor>> ExecutorRegistry::Create(const std::string& task_type) const {
  auto it = factories_.find(task_type);
  if (it == factories_.end()) {
    return NotFound("no executor for task type '" + task_type + "' on this worker");
  }
  return it->second();
}

std::vector<std::string> ExecutorRegistry::RegisteredTaskTypes() const {
  std::vector<std::string> types;
  for (const auto& [type, factory] : factories_) types.push_back(type);
  return types;
}

ExecutorRegistry BuiltinExecutors() {
  ExecutorRegistry registry;
  registry.Register("echo", [] { return std::make_unique<EchoExecutor>(); });
  registry.Register("data_profiling", [] { return std::make_unique<DataProfilingExecutor>(); });
  registry.Register("api", [] { return std::make_unique<ApiExecutor>(); });
  // Without data directories (the worker's main gives them): SQL over TCP and HTTP only.
  RegisterDataRetrievalExecutor(registry, DataRetrievalConfig{});
  // Probed once (it starts one sandbox): python is offered only where bwrap and python3 work.
  static const bool kPython = PythonExecutor::Available(PythonExecutorConfig{}).ok();
  if (kPython) registry.Register("python", [] { return std::make_unique<PythonExecutor>(); });
  return registry;
}

std::vector<std::string> RegisteredTaskTypes() { return BuiltinExecutors().RegisteredTaskTypes(); }

}  // namespace flowmesh::executors
