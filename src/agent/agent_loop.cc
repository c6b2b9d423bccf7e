#include "agent/agent_loop.h"

#include <algorithm>

#include "agent/grammar.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

json MessagesJson(const std::vector<ChatMessage>& messages) {
  json out = json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

std::string Truncated(std::string text) {
  if (text.size() > kMaxToolResultChars) text = text.substr(0, kMaxToolResultChars) + "...";
  return text;
}

// Runs the call of `reply` (or explains why it cannot run) and fills the step's tool,
// arguments, result/error and kind. Returns the message the model gets back.
std::string Dispatch(ToolSet& tools, const ParsedReply& reply, Clock::time_point deadline,
                     json& step) {
  if (!reply.call) {
    step["kind"] = "invalid";
    step["error"] = reply.error;
    return "Invalid reply (" + reply.error + "). Reply with one JSON object as instructed.";
  }
  step["kind"] = "tool_call";
  step["tool"] = reply.call->tool;
  step["arguments"] = reply.call->arguments;
  Tool* tool = tools.Find(reply.call->tool);
  Result<json> result = tool ? tool->Call(reply.call->arguments, deadline)
                             : Result<json>(NotFound("no tool named '" + reply.call->tool + "'"));
  if (!result.ok()) {
    step["error"] = result.status().message();
    return Truncated(json{{"tool", reply.call->tool}, {"error", result.status().message()}}.dump());
  }
  step["result"] = *result;
  return Truncated(json{{"tool", reply.call->tool}, {"result", *result}}.dump());
}

}  // namespace

Result<json> RunAgent(ChatModel& model, ToolSet& tools, const std::string& system_prompt,
                      const std::string& task, const AgentLimits& limits,
                      const std::atomic<bool>& cancelled, const StepObserver& on_step) {
  const auto start = Clock::now();
  const auto deadline = start + limits.timeout;
  const std::vector<ToolInfo> infos = tools.infos();
  const int step_tokens =
      limits.max_step_tokens > 0 ? limits.max_step_tokens : MaxReplyChars(infos) + 8;
  std::vector<ChatMessage> messages = {{"system", ToolInstructions(infos, system_prompt)},
                                       {"user", task}};
  json steps = json::array();
  int prompt_tokens = 0, completion_tokens = 0, tool_calls = 0;
  std::string output, finish_reason = "max_steps";

  for (int index = 0; index < limits.max_steps; ++index) {
    if (cancelled.load()) return Cancelled("agent: cancelled");
    if (Clock::now() >= deadline) {
      finish_reason = "timeout";
      break;
    }
    int budget = limits.max_tokens - completion_tokens;
    if (budget <= 0) {
      finish_reason = "max_tokens";
      break;
    }
    bool last = index + 1 == limits.max_steps;
    bool need_tool = limits.tool_required && tool_calls == 0 && !infos.empty();
    TurnRequest request{&messages,
                        &infos,
                        /*allow_tools=*/!last || need_tool,
                        /*allow_final=*/!need_tool,
                        std::min(step_tokens, budget),
                        deadline};
    const auto step_start = Clock::now();
    Result<TurnReply> turn = model.Next(request, cancelled);
    if (!turn.ok() && turn.status().code() == StatusCode::kDeadlineExceeded) {
      finish_reason = "timeout";
      break;
    }
    FM_RETURN_IF_ERROR(turn.status());
    const auto model_done = Clock::now();
    prompt_tokens += turn->prompt_tokens;
    completion_tokens += turn->completion_tokens;
    messages.push_back({"assistant", turn->text});

    json step = {{"index", index},
                 {"reply", turn->text},
                 {"started_ms", Millis(step_start - start)},
                 {"model_ms", Millis(model_done - step_start)},
                 {"prompt_tokens", turn->prompt_tokens},
                 {"completion_tokens", turn->completion_tokens}};
    ParsedReply reply = ParseReply(turn->text);
    if (reply.final_answer && !request.allow_final) {
      reply.final_answer.reset();
      reply.error = "a tool must be called before the final answer";
    }
    if (reply.call && !request.allow_tools) {
      reply.call.reset();
      reply.error = "no tool calls are left: give the final answer";
    }
    bool done = reply.final_answer.has_value();
    if (done) {
      step["kind"] = "final";
      output = *reply.final_answer;
      finish_reason = "final";
    } else {
      if (!reply.call && turn->finish_reason == "length") reply.error += " (cut at max_tokens)";
      messages.push_back({"tool", Dispatch(tools, reply, deadline, step)});
      if (step["kind"] == "tool_call") ++tool_calls;
    }
    const auto step_end = Clock::now();
    step["tool_ms"] = Millis(step_end - model_done);
    step["duration_ms"] = Millis(step_end - step_start);
    if (on_step) on_step(step);
    steps.push_back(std::move(step));
    if (done) break;
  }
  if (finish_reason == "max_steps" && limits.max_tokens - completion_tokens <= 0)
    finish_reason = "max_tokens";
  const int step_count = static_cast<int>(steps.size());
  return json{{"task", task},
              {"output", output},
              {"finish_reason", finish_reason},
              {"messages", MessagesJson(messages)},
              {"steps", std::move(steps)},
              {"usage",
               {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"steps", step_count},
                {"tool_calls", tool_calls}}},
              {"elapsed_ms", Millis(Clock::now() - start)}};
}

}  // namespace flowmesh::agent
