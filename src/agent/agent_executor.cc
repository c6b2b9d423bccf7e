#include "agent/agent_executor.h"

#include "agent/builtin_tools.h"
#include "agent/engine_chat_model.h"
#include "agent/openai_chat_model.h"
#include "executors/api_client.h"
#include "inference/inference_executor.h"
#include "spec/operator.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;

const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

Result<int> PositiveInt(const json& agent, const char* key, int fallback) {
  const json& v = Field(agent, key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1'000'000) {
    return InvalidArgument(std::string("agent.") + key + " must be a positive integer");
  }
  return static_cast<int>(v.get<int64_t>());
}

std::string ItemText(const json& item) {
  return item.is_string() ? item.get<std::string>() : item.dump();
}

json StepSpan(size_t item, const json& step) {
  json span = {{"name", "agent.step"},
               {"item", item},
               {"step", step["index"]},
               {"kind", step["kind"]},
               {"started_ms", step["started_ms"]},
               {"duration_ms", step["duration_ms"]},
               {"model_ms", step["model_ms"]},
               {"tool_ms", step["tool_ms"]},
               {"completion_tokens", step["completion_tokens"]},
               {"ok", !step.contains("error")}};
  if (step.contains("tool")) span["tool"] = step["tool"];
  return span;
}

std::string StepLine(size_t item, const json& step) {
  std::string line = "agent[" + std::to_string(item) + "] step " + step["index"].dump() + ": ";
  if (step["kind"] == "final") return line + "final answer";
  if (step["kind"] == "invalid") return line + "invalid reply: " + step["error"].get<std::string>();
  line += step["tool"].get<std::string>() + " " + step["arguments"].dump();
  return line +
         (step.contains("error") ? " -> error: " + step["error"].get<std::string>() : " -> ok");
}

// agent.model: an OpenAI-compatible endpoint through the api executor's client.
//   {url: http(s)://host:port/v1, name, headers, timeout, retries, ...}  (spec.api's keys)
//   {endpoint: default, name}  the server's default endpoint, with its Authorization
// `{{credential:NAME}}` placeholders in url and headers are fetched from the server now and
// resolved at each request.
Result<std::unique_ptr<ChatModel>> ApiModel(executors::TaskContext& ctx, const json& agent_model) {
  namespace api = executors::api;
  const json& endpoint = Field(agent_model, "endpoint");
  if (!endpoint.is_null() && endpoint != "default") {
    return InvalidArgument("agent.model.endpoint: only \"default\" (the server's default "
                           "endpoint) is known; give agent.model.url for any other");
  }
  const bool use_default = !endpoint.is_null() && !agent_model.contains("url");
  if (!use_default && !Field(agent_model, "url").is_string()) {
    return InvalidArgument("agent.model.url must be a string");
  }
  json http = agent_model;
  for (const char* ours : {"name", "endpoint", "url"}) http.erase(ours);
  OpenAiModelConfig config;
  FM_ASSIGN_OR_RETURN(config.http, api::ParseApiSection(http, "agent.model"));
  const json& name = Field(agent_model, "name");
  config.model = name.is_string() ? name.get<std::string>() : "default";
  const json& temperature = Field(Field(ctx.spec, "inference"), "temperature");
  if (temperature.is_number()) config.temperature = temperature.get<float>();
  FM_ASSIGN_OR_RETURN(config.grant, api::FetchGrant(ctx, agent_model, use_default, "agent.model"));
  if (use_default) {
    config.url = config.grant.default_url;
    while (!config.url.empty() && config.url.back() == '/') config.url.pop_back();
    config.url += "/v1";
    config.default_authorization = config.grant.default_authorization;
  } else {
    config.url = agent_model["url"].get<std::string>();
  }
  auto model = OpenAiChatModel::Create(std::move(config));
  if (!model.ok()) return InvalidArgument("agent.model.url " + model.status().message());
  return std::unique_ptr<ChatModel>(std::move(model).value());
}

}  // namespace

Result<AgentLimits> LimitsFromSpec(const json& spec) {
  const json& agent = Field(spec, "agent");
  if (!agent.is_null() && !agent.is_object()) return InvalidArgument("agent must be a mapping");
  AgentLimits limits;
  FM_ASSIGN_OR_RETURN(limits.max_steps, PositiveInt(agent, "max_steps", limits.max_steps));
  FM_ASSIGN_OR_RETURN(limits.max_tokens, PositiveInt(agent, "max_tokens", limits.max_tokens));
  FM_ASSIGN_OR_RETURN(limits.max_step_tokens, PositiveInt(agent, "max_step_tokens", 0));
  FM_ASSIGN_OR_RETURN(int timeout_s, PositiveInt(agent, "timeout", 600));
  limits.timeout = std::chrono::seconds(timeout_s);
  const json& choice = Field(agent, "tool_choice");
  if (!choice.is_null() && choice != "auto" && choice != "required") {
    return InvalidArgument("agent.tool_choice must be auto or required");
  }
  limits.tool_required = choice == "required";
  return limits;
}

Result<std::vector<std::string>> TasksFromSpec(const json& spec) {
  const json& data = Field(spec, "data");
  const json& type = Field(data, "type");
  std::vector<std::string> tasks;
  if (type == "static") {
    if (!Field(data, "task").is_string())
      return InvalidArgument("data.task is required for data.type static");
    tasks.push_back(data["task"].get<std::string>());
  } else if (Field(data, "items").is_array() && (type.is_null() || type == "list")) {
    for (const auto& item : data["items"]) tasks.push_back(ItemText(item));
  } else if (!type.is_null() && type != "list") {
    return InvalidArgument("agent: data.type " + type.dump() + " is not supported (static, list)");
  }
  if (tasks.empty()) {
    const json& task =
        Field(spec, "task").is_null() ? Field(Field(spec, "agent"), "task") : Field(spec, "task");
    if (task.is_string() && !task.get<std::string>().empty())
      tasks.push_back(task.get<std::string>());
  }
  if (tasks.empty()) return InvalidArgument("agent: no task: set task, data.task or data.items");
  return tasks;
}

Result<json> AgentExecutor::Run(executors::TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(AgentLimits limits, LimitsFromSpec(ctx.spec));
  FM_ASSIGN_OR_RETURN(std::vector<std::string> tasks, TasksFromSpec(ctx.spec));
  FM_ASSIGN_OR_RETURN(ToolSet tools, ToolsFromSpec(ctx.spec));
  const json& system_prompt = Field(Field(ctx.spec, "agent"), "system_prompt");
  const json& config = Field(ctx.spec, "configName");
  if (ctx.cancelled.load()) return Cancelled("agent: cancelled");
  FM_ASSIGN_OR_RETURN(std::unique_ptr<ChatModel> model, models_(ctx));

  const auto start = std::chrono::steady_clock::now();
  json items = json::array();
  int prompt_tokens = 0, completion_tokens = 0, steps = 0, tool_calls = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    auto on_step = [&ctx, i](const json& step) {
      if (ctx.update) ctx.update(json{{"span", StepSpan(i, step)}});
      if (ctx.log) ctx.log(StepLine(i, step));
    };
    FM_ASSIGN_OR_RETURN(
        json transcript,
        RunAgent(*model, tools, system_prompt.is_string() ? system_prompt.get<std::string>() : "",
                 tasks[i], limits, ctx.cancelled, on_step));
    prompt_tokens += transcript["usage"]["prompt_tokens"].get<int>();
    completion_tokens += transcript["usage"]["completion_tokens"].get<int>();
    steps += transcript["usage"]["steps"].get<int>();
    tool_calls += transcript["usage"]["tool_calls"].get<int>();
    items.push_back({{"index", i},
                     {"input", tasks[i]},
                     {"output", transcript["output"]},
                     {"finish_reason", transcript["finish_reason"]},
                     {"transcript", std::move(transcript)}});
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return json{{"items", std::move(items)},
              {"model", model->name()},
              {"usage",
               {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens},
                {"steps", steps},
                {"tool_calls", tool_calls},
                {"execution_time_sec", seconds},
                {"num_requests", tasks.size()},
                {"agent_config", config.is_string() ? config.get<std::string>() : "default"}}}};
}

ChatModelFactory CachedEngineModels(std::shared_ptr<inference::ModelCache> models) {
  return [models](executors::TaskContext& ctx) -> Result<std::unique_ptr<ChatModel>> {
    const json& spec = ctx.spec;
    json local = spec;
    const json& agent_model = Field(Field(spec, "agent"), "model");
    if (agent_model.is_object() && (agent_model.contains("url") || agent_model.contains("endpoint"))) {
      return ApiModel(ctx, agent_model);
    }
    if (Field(spec, "model").is_null()) {
      if (agent_model.is_null()) {
        return FailedPrecondition("agent: no model: set model (a GGUF model the worker can load)");
      }
      local["model"] = agent_model;
    }
    FM_ASSIGN_OR_RETURN(inference::SamplingParams sampling, inference::SamplingFromSpec(local));
    sampling.share = !(Field(spec, "cache").is_string() && spec["cache"] == "never");
    FM_ASSIGN_OR_RETURN(std::shared_ptr<inference::Engine> engine, models->Acquire(local));
    return std::unique_ptr<ChatModel>(
        std::make_unique<EngineChatModel>(engine, sampling, spec::ModelKey(local)));
  };
}

void RegisterAgentExecutor(executors::ExecutorRegistry& registry,
                           std::shared_ptr<inference::ModelCache> models) {
  ChatModelFactory factory = CachedEngineModels(std::move(models));
  registry.Register("agent", [factory] { return std::make_unique<AgentExecutor>(factory); });
}

}  // namespace flowmesh::agent
