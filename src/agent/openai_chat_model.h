// A ChatModel over an OpenAI-compatible chat endpoint (`POST {url}/chat/completions`),
// through the api executor's client (api_client.h): http and https, headers with
// `{{credential:NAME}}` placeholders resolved from the attempt's grant at each request,
// the per-endpoint concurrency gate, retries with backoff and jitter honouring
// Retry-After, all bounded by the turn's deadline. Replies are not grammar-constrained;
// the tool protocol is in the system message, and a reply that uses the endpoint's native
// `tool_calls` is read as the same call.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent/chat_model.h"
#include "executors/api_request.h"
#include "executors/executor.h"

namespace flowmesh::agent {

struct OpenAiModelConfig {
  std::string url;    // http(s)://host:port/v1 (the part before /chat/completions), as written
  std::string model;  // the request's "model"
  float temperature = 0.0f;
  executors::api::ApiOptions http;   // headers, timeout, retries, backoff, concurrency, TLS
  executors::CredentialGrant grant;  // values of the placeholders in url and headers
  std::string default_authorization;  // the server's, when url is its default endpoint
};

class OpenAiChatModel : public ChatModel {
 public:
  // InvalidArgument when the url is not http:// or https://.
  static Result<std::unique_ptr<OpenAiChatModel>> Create(OpenAiModelConfig config);
  Result<TurnReply> Next(const TurnRequest& request, const std::atomic<bool>& cancelled) override;
  std::string name() const override { return "api:" + config_.model; }

 private:
  explicit OpenAiChatModel(OpenAiModelConfig config) : config_(std::move(config)) {}
  OpenAiModelConfig config_;
};

}  // namespace flowmesh::agent
