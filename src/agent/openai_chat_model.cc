#include "agent/openai_chat_model.h"

#include <algorithm>

#include "agent/builtin_tools.h"
#include "http/http.h"

namespace flowmesh::agent {

using json = nlohmann::json;

Result<std::unique_ptr<OpenAiChatModel>> OpenAiChatModel::Create(OpenAiModelConfig config) {
  FM_ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(config.url));
  std::string path = url.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  path = (path == "/" ? "" : path) + "/chat/completions";
  return std::unique_ptr<OpenAiChatModel>(
      new OpenAiChatModel(std::move(config), std::move(url.base), std::move(path)));
}

Result<TurnReply> OpenAiChatModel::Next(const TurnRequest& request,
                                        const std::atomic<bool>& cancelled) {
  if (cancelled.load()) return Cancelled("agent: cancelled");
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      request.deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return DeadlineExceeded("no time left for the model");
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
  http::Client client(base_, left);
  auto response = client.PostJson(path_, body.dump());
  if (!response.ok()) {
    if (std::chrono::steady_clock::now() >= request.deadline) {
      return DeadlineExceeded("the model's reply did not come before the deadline");
    }
    return response.status();
  }
  if (response->status != 200) {
    return Unavailable("chat endpoint answered " + std::to_string(response->status) + ": " +
                       response->body.substr(0, 200));
  }
  json reply = json::parse(response->body, nullptr, false);
  if (reply.is_discarded() || !reply.contains("choices") || !reply["choices"].is_array() ||
      reply["choices"].empty()) {
    return Internal("chat endpoint: a response without choices");
  }
  const json& choice = reply["choices"][0];
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
  const json& usage = reply.value("usage", json::object());
  out.prompt_tokens = usage.value("prompt_tokens", 0);
  out.completion_tokens = usage.value("completion_tokens", 0);
  return out;
}

}  // namespace flowmesh::agent
