#include "agent/openai_chat_model.h"

#include "executors/api_client.h"

namespace flowmesh::agent {

using json = nlohmann::json;
namespace api = executors::api;

Result<std::unique_ptr<OpenAiChatModel>> OpenAiChatModel::Create(OpenAiModelConfig config) {
  if (config.url.rfind("http://", 0) != 0 && config.url.rfind("https://", 0) != 0) {
    return InvalidArgument("must start with http:// or https://");
  }
  while (config.url.size() > 8 && config.url.back() == '/') config.url.pop_back();
  config.http.method = "POST";
  return std::unique_ptr<OpenAiChatModel>(new OpenAiChatModel(std::move(config)));
}

Result<TurnReply> OpenAiChatModel::Next(const TurnRequest& request,
                                        const std::atomic<bool>& cancelled) {
  if (cancelled.load()) return Cancelled("agent: cancelled");
  if (std::chrono::steady_clock::now() >= request.deadline) {
    return DeadlineExceeded("no time left for the model");
  }
  json messages = json::array();
  for (const auto& m : *request.messages) {
    bool tool = m.role == "tool";
    messages.push_back({{"role", tool ? "user" : m.role},
                        {"content", tool ? "Tool result: " + m.content : m.content}});
  }
  json body = {{"model", config_.model},
               {"messages", std::move(messages)},
               {"max_tokens", request.max_tokens},
               {"temperature", config_.temperature}};
  api::PreparedRequest prepared{config_.url + "/chat/completions", config_.http.headers,
                                body.dump()};
  if (!prepared.headers.count("Content-Type")) prepared.headers["Content-Type"] = "application/json";
  FM_ASSIGN_OR_RETURN(executors::HttpExchange exchange,
                      api::ResolveExchange(config_.http, prepared, config_.grant,
                                           config_.default_authorization));
  // Errors name the url as written: resolved credentials never reach a message.
  const std::string where = "POST " + prepared.url;
  auto reply = api::SendWithRetries(config_.http, exchange, where, cancelled, {}, request.deadline);
  if (!reply.ok()) {
    if (std::chrono::steady_clock::now() >= request.deadline ||
        reply.status().code() == StatusCode::kDeadlineExceeded) {
      return DeadlineExceeded("the model's reply did not come before the deadline");
    }
    return reply.status();
  }
  if (reply->status != 200) {
    std::string msg = where + " answered HTTP " + std::to_string(reply->status) + ": " +
                      reply->body.substr(0, 200);
    return api::IsRetryableStatus(reply->status) ? Unavailable(msg) : FailedPrecondition(msg);
  }
  json parsed = json::parse(reply->body, nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("choices") || !parsed["choices"].is_array() ||
      parsed["choices"].empty()) {
    return Internal(where + ": a response without choices");
  }
  const json& choice = parsed["choices"][0];
  const json& message = choice.value("message", json::object());
  TurnReply out;
  out.finish_reason = choice.value("finish_reason", "stop") == "length" ? "length" : "stop";
  if (message.contains("tool_calls") && message["tool_calls"].is_array() &&
      !message["tool_calls"].empty()) {
    const json& fn = message["tool_calls"][0].value("function", json::object());
    json arguments = json::parse(fn.value("arguments", "{}"), nullptr, false);
    out.text = json{{"tool", fn.value("name", "")},
                    {"arguments", arguments.is_discarded() ? json::object() : arguments}}
                   .dump();
  } else {
    const json& content = message.value("content", json(""));
    out.text = content.is_string() ? content.get<std::string>() : content.dump();
  }
  const json& usage = parsed.value("usage", json::object());
  out.prompt_tokens = usage.value("prompt_tokens", 0);
  out.completion_tokens = usage.value("completion_tokens", 0);
  return out;
}

}  // namespace flowmesh::agent
