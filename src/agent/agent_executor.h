// The `agent` executor: for each task of the spec (`task`, or data items), one bounded
// agent loop (agent_loop.h) over the task's model with the tools of its configName /
// agent.tools (builtin_tools.h). Each step is a task progress update
// ({span: {name: "agent.step", ...}}) and a log line; the result holds every transcript.
//
// Spec (published keys, plus ours under `agent`):
//   configName            published tool-set name (default: "default")
//   task | data.task (type static) | data.items (type list, or no type)   the tasks
//   model                 the local model (as for inference tasks; agent.model as a fallback)
//   agent.model           {url, name, headers, timeout, retries, ...}: an OpenAI-compatible
//                         endpoint ({{credential:NAME}} in url/headers); {endpoint: default}:
//                         the server's default endpoint
//   inference             sampling options (temperature, seed, ...) for the model's turns
//   agent.timeout         wall seconds per task item (default 600)
//   agent.max_steps (8), agent.max_tokens (4096), agent.max_step_tokens (0: fit the grammar)
//   agent.tool_choice     auto | required (a tool call before the final answer)
//   agent.tools, agent.http.allow, agent.endpoints, agent.system_prompt
//
// Result: {items: [{index, input, output, finish_reason, transcript}], model,
//          usage: {prompt_tokens, completion_tokens, total_tokens, steps, tool_calls,
//                  execution_time_sec, num_requests, agent_config}}
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_loop.h"
#include "agent/chat_model.h"
#include "executors/executor.h"
#include "inference/model_cache.h"

namespace flowmesh::agent {

// Makes the model of one task attempt from its spec (and, for remote models, the
// credentials the server grants the attempt).
using ChatModelFactory =
    std::function<Result<std::unique_ptr<ChatModel>>(executors::TaskContext& ctx)>;

Result<AgentLimits> LimitsFromSpec(const nlohmann::json& spec);
Result<std::vector<std::string>> TasksFromSpec(const nlohmann::json& spec);

class AgentExecutor : public executors::Executor {
 public:
  explicit AgentExecutor(ChatModelFactory models) : models_(std::move(models)) {}
  Result<nlohmann::json> Run(executors::TaskContext& ctx) override;

 private:
  ChatModelFactory models_;
};

// Local models from the worker's cache; agent.model {url, name, headers, ...} is an
// OpenAI-compatible endpoint (OpenAiChatModel over the api executor's client, credentials
// by name), and agent.model {endpoint: default} the server's default endpoint.
ChatModelFactory CachedEngineModels(std::shared_ptr<inference::ModelCache> models);

// Registers `agent` on `registry` over `models`.
void RegisterAgentExecutor(executors::ExecutorRegistry& registry,
                           std::shared_ptr<inference::ModelCache> models);

}  // namespace flowmesh::agent
