// A ChatModel over an OpenAI-compatible chat endpoint (`POST {url}/chat/completions`),
// through the project's plain-HTTP client: the stand-in until the api executor's client
// (TLS, credentials by name, retries with backoff) can be plugged in behind ChatModel.
// Replies are not grammar-constrained; the tool protocol is in the system message, and a
// reply that uses the endpoint's native `tool_calls` is read as the same call.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent/chat_model.h"

namespace flowmesh::agent {

struct OpenAiModelConfig {
  std::string url;    // http://host:port/v1 (the part before /chat/completions)
  std::string model;  // the request's "model"
  float temperature = 0.0f;
};

class OpenAiChatModel : public ChatModel {
 public:
  // InvalidArgument when the url is not http://.
  static Result<std::unique_ptr<OpenAiChatModel>> Create(OpenAiModelConfig config);
  Result<TurnReply> Next(const TurnRequest& request, const std::atomic<bool>& cancelled) override;
  std::string name() const override { return "api:" + config_.model; }

 private:
  OpenAiChatModel(OpenAiModelConfig config, std::string base, std::string path)
      : config_(std::move(config)), base_(std::move(base)), path_(std::move(path)) {}
  OpenAiModelConfig config_;
  std::string base_;  // http://host:port
  std::string path_;  // /v1/chat/completions
};

}  // namespace flowmesh::agent
