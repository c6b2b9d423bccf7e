// The bounded agent loop: the model proposes a tool call, the loop runs it and hands the
// result back, until the model gives a final answer or a bound is reached (steps,
// completion tokens over the run, wall time). Runs on the caller's thread.
//
// The result is the full transcript:
//   {task, output, finish_reason: final | max_steps | max_tokens | timeout,
//    messages: [{role, content}], steps: [{index, kind: tool_call | final | invalid, reply,
//    tool?, arguments?, result? | error?, started_ms, model_ms, tool_ms, duration_ms,
//    prompt_tokens, completion_tokens}], usage: {prompt_tokens, completion_tokens, steps,
//    tool_calls}, elapsed_ms}
// A bound ends the run with the transcript so far (not an error); cancellation and model
// failures are errors.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/chat_model.h"
#include "agent/tool.h"

namespace flowmesh::agent {

constexpr size_t kMaxToolResultChars = 2000;  // of a tool result, as the model sees it

struct AgentLimits {
  int max_steps = 8;        // model turns
  int max_tokens = 4096;    // completion tokens over all turns
  int max_step_tokens = 0;  // per turn; 0: enough for the longest constrained reply
  std::chrono::milliseconds timeout{600'000};
  bool tool_required = false;  // no final answer before at least one tool call
};

// Called after each step with that step's entry of `steps` (plus `item` set by the caller).
using StepObserver = std::function<void(const nlohmann::json& step)>;

Result<nlohmann::json> RunAgent(ChatModel& model, ToolSet& tools, const std::string& system_prompt,
                                const std::string& task, const AgentLimits& limits,
                                const std::atomic<bool>& cancelled, const StepObserver& on_step);

}  // namespace flowmesh::agent
