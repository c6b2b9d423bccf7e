// The OpenAI wire format of a serve endpoint: request bodies of /v1/chat/completions,
// /v1/completions and /v1/embeddings read into engine inputs, and the response, stream
// chunk, model list and error bodies built from engine outputs. Pure functions (no I/O,
// no engine): the endpoint supplies the prompt formatting and the clock.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "inference/engine.h"

namespace flowmesh::inference::openai {

using Messages = std::vector<std::pair<std::string, std::string>>;

enum class Endpoint { kChat, kCompletion };

// One generation request, read from a chat or completion body.
struct GenerationRequest {
  Endpoint endpoint = Endpoint::kCompletion;
  Messages messages;   // chat
  std::string prompt;  // completion
  SamplingParams params;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completion: the prompt is part of the text
};

// Defaults a served model applies where a request says nothing.
inline constexpr int kDefaultMaxTokens = 256;

// InvalidArgument (400, message naming the field) for bodies the endpoint cannot honour:
// not an object, missing messages/prompt, a value of the wrong type or range, n != 1.
Result<GenerationRequest> ParseChatRequest(const nlohmann::json& body);
Result<GenerationRequest> ParseCompletionRequest(const nlohmann::json& body);
// The texts of an embeddings body (`input`: a string or a list of strings).
Result<std::vector<std::string>> ParseEmbeddingInput(const nlohmann::json& body);

// What a response names: the id (chatcmpl-… / cmpl-…), created time and model name.
struct ResponseMeta {
  std::string id;
  int64_t created = 0;
  std::string model;
};

nlohmann::json UsageJson(const Completion& c);
// A whole (non-streaming) response.
nlohmann::json ChatResponse(const ResponseMeta& meta, const Completion& c);
nlohmann::json CompletionResponse(const ResponseMeta& meta, const Completion& c,
                                  const std::string& echoed_prompt);
// One stream chunk. Chat: `first` adds the assistant role to the delta; an empty
// `finish_reason` is null. The usage chunk (stream_options.include_usage) has no choices.
nlohmann::json ChatChunk(const ResponseMeta& meta, const std::string& text, bool first,
                         const std::string& finish_reason);
nlohmann::json CompletionChunk(const ResponseMeta& meta, const std::string& text,
                               const std::string& finish_reason);
nlohmann::json UsageChunk(const ResponseMeta& meta, Endpoint endpoint, const Completion& c);

nlohmann::json EmbeddingResponse(const std::string& model,
                                 const std::vector<std::vector<float>>& vectors,
                                 int prompt_tokens);
nlohmann::json ModelsResponse(const std::string& model, int64_t created);
// {"error": {"message", "type", "param": null, "code"}} as OpenAI servers send it.
nlohmann::json ErrorBody(const std::string& message, const std::string& type,
                         const std::string& code = "");

// The engine's finish reasons in OpenAI terms (stop | length).
std::string FinishReason(const std::string& engine_reason);

}  // namespace flowmesh::inference::openai
