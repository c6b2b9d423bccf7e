#include "inference/serve_openai.h"

#include "spec/executor_options.h"
#include "spec/options.h"

namespace flowmesh::inference::openai {

using json = nlohmann::json;

namespace {

const json* Find(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

Status Bad(const std::string& field, const std::string& what) {
  return InvalidArgument("'" + field + "': " + what);
}

Status ReadInt(const json& body, const char* key, int64_t lo, int64_t hi, int* out) {
  const json* v = Find(body, key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number_integer()) return Bad(key, "must be an integer");
  int64_t i = v->get<int64_t>();
  if (i < lo || i > hi) return Bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  *out = static_cast<int>(i);
  return Status::Ok();
}

// A sampling field read by the inference section's own declaration (spec/executor_options.cc,
// the one rule site): a served request gets the types, ranges and words an inference task
// gets. `option` is the declaration's name when the OpenAI name differs.
template <typename T>
Status ReadDeclared(const json& body, const char* key, T* out, const char* option = nullptr) {
  const json* v = Find(body, key);
  if (v == nullptr) return Status::Ok();
  const spec::Option* declared = spec::FindInferenceOption(option != nullptr ? option : key);
  json value = *v;
  if (auto problem = spec::CheckOption(*declared, &value, std::string("'") + key + "'")) {
    return InvalidArgument(problem->message);
  }
  *out = value.get<T>();
  return Status::Ok();
}

// The sampling fields both generation endpoints share (OpenAI names, plus the top_k,
// min_p and repetition_penalty that llama.cpp's and vLLM's servers accept).
Result<SamplingParams> ReadSampling(const json& body) {
  SamplingParams p;
  p.max_tokens = kDefaultMaxTokens;
  FM_RETURN_IF_ERROR(ReadDeclared(body, "temperature", &p.temperature));
  FM_RETURN_IF_ERROR(ReadDeclared(body, "top_p", &p.top_p));
  FM_RETURN_IF_ERROR(ReadDeclared(body, "min_p", &p.min_p));
  FM_RETURN_IF_ERROR(ReadDeclared(body, "presence_penalty", &p.presence_penalty));
  FM_RETURN_IF_ERROR(ReadDeclared(body, "frequency_penalty", &p.frequency_penalty));
  FM_RETURN_IF_ERROR(ReadDeclared(body, "repetition_penalty", &p.repetition_penalty));
  FM_RETURN_IF_ERROR(ReadDeclared(body, "top_k", &p.top_k));
  if (p.top_k < 0) p.top_k = 0;
  FM_RETURN_IF_ERROR(ReadDeclared(body, "max_tokens", &p.max_tokens));
  FM_RETURN_IF_ERROR(ReadDeclared(body, "max_completion_tokens", &p.max_tokens, "max_tokens"));
  // vLLM's extra: tokens generated before the end of text or a stop string may end it.
  FM_RETURN_IF_ERROR(ReadDeclared(body, "min_tokens", &p.min_tokens));
  if (p.min_tokens > p.max_tokens) return Bad("min_tokens", "must be at most max_tokens");
  int n = 1;
  FM_RETURN_IF_ERROR(ReadInt(body, "n", 1, 128, &n));
  if (n != 1) return Bad("n", "only n=1 is served; send one request per choice");
  if (const json* seed = Find(body, "seed")) {
    if (!seed->is_number_integer()) return Bad("seed", "must be an integer");
    p.seed = static_cast<uint32_t>(seed->get<int64_t>());
  }
  if (const json* stop = Find(body, "stop")) {
    if (stop->is_string()) {
      if (!stop->get_ref<const std::string&>().empty()) p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 16) {
      for (const auto& s : *stop) {
        if (!s.is_string()) return Bad("stop", "must be a string or a list of strings");
        if (!s.get_ref<const std::string&>().empty()) p.stop.push_back(s.get<std::string>());
      }
    } else {
      return Bad("stop", "must be a string or a list of at most 16 strings");
    }
  }
  return p;
}

Status ReadStreamFlags(const json& body, GenerationRequest* r) {
  if (const json* s = Find(body, "stream")) {
    if (!s->is_boolean()) return Bad("stream", "must be a boolean");
    r->stream = s->get<bool>();
  }
  if (const json* o = Find(body, "stream_options")) {
    if (!o->is_object()) return Bad("stream_options", "must be an object");
    if (const json* u = Find(*o, "include_usage")) r->include_usage = u->is_boolean() && u->get<bool>();
  }
  return Status::Ok();
}

// A message's content: a string, or a list of parts of which the text parts count.
Result<std::string> ContentText(const json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return std::string();
  if (!content.is_array()) return Bad("messages[" + std::to_string(index) + "].content", "must be a string or a list of parts");
  std::string text;
  for (const auto& part : content) {
    if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string()) {
      text += part["text"].get<std::string>();
    } else {
      return Bad("messages[" + std::to_string(index) + "].content", "only text parts are served");
    }
  }
  return text;
}

json Usage(int prompt, int completion) {
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

json NullableReason(const std::string& reason) { return reason.empty() ? json(nullptr) : json(reason); }

}  // namespace

Result<GenerationRequest> ParseChatRequest(const json& body) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  GenerationRequest r;
  r.endpoint = Endpoint::kChat;
  const json* messages = Find(body, "messages");
  if (messages == nullptr || !messages->is_array() || messages->empty()) {
    return Bad("messages", "a non-empty list of messages is required");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Bad("messages[" + std::to_string(i) + "]", "must be an object with a string role");
    }
    FM_ASSIGN_OR_RETURN(std::string text, ContentText(m.contains("content") ? m["content"] : json(), i));
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    r.messages.emplace_back(std::move(role), std::move(text));
  }
  FM_ASSIGN_OR_RETURN(r.params, ReadSampling(body));
  FM_RETURN_IF_ERROR(ReadStreamFlags(body, &r));
  return r;
}

Result<GenerationRequest> ParseCompletionRequest(const json& body) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  GenerationRequest r;
  r.endpoint = Endpoint::kCompletion;
  const json* prompt = Find(body, "prompt");
  if (prompt != nullptr && prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    prompt = &(*prompt)[0];
  }
  if (prompt == nullptr || !prompt->is_string()) {
    return Bad("prompt", "a string (or a list of one string) is required");
  }
  r.prompt = prompt->get<std::string>();
  if (const json* echo = Find(body, "echo")) r.echo = echo->is_boolean() && echo->get<bool>();
  FM_ASSIGN_OR_RETURN(r.params, ReadSampling(body));
  FM_RETURN_IF_ERROR(ReadStreamFlags(body, &r));
  return r;
}

Result<std::vector<std::string>> ParseEmbeddingInput(const json& body) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  const json* input = Find(body, "input");
  if (input == nullptr) return Bad("input", "a string or a list of strings is required");
  if (input->is_string()) return std::vector<std::string>{input->get<std::string>()};
  if (!input->is_array() || input->empty() || input->size() > 2048) {
    return Bad("input", "must be a string or a list of 1 to 2048 strings");
  }
  std::vector<std::string> out;
  for (const auto& s : *input) {
    if (!s.is_string()) return Bad("input", "token arrays are not served; send strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::string FinishReason(const std::string& engine_reason) {
  return engine_reason == "length" ? "length" : "stop";
}

json UsageJson(const Completion& c) { return Usage(c.prompt_tokens, c.completion_tokens); }

json ChatResponse(const ResponseMeta& meta, const Completion& c) {
  return {{"id", meta.id},
          {"object", "chat.completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices",
           json::array({{{"index", 0},
                         {"message", {{"role", "assistant"}, {"content", c.text}}},
                         {"logprobs", nullptr},
                         {"finish_reason", FinishReason(c.finish_reason)}}})},
          {"usage", UsageJson(c)}};
}

json CompletionResponse(const ResponseMeta& meta, const Completion& c, const std::string& echoed_prompt) {
  return {{"id", meta.id},
          {"object", "text_completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices",
           json::array({{{"index", 0},
                         {"text", echoed_prompt + c.text},
                         {"logprobs", nullptr},
                         {"finish_reason", FinishReason(c.finish_reason)}}})},
          {"usage", UsageJson(c)}};
}

json ChatChunk(const ResponseMeta& meta, const std::string& text, bool first, const std::string& finish_reason) {
  json delta = json::object();
  if (first) delta["role"] = "assistant";
  if (!text.empty() || finish_reason.empty()) delta["content"] = text;
  return {{"id", meta.id},
          {"object", "chat.completion.chunk"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", json::array({{{"index", 0},
                                    {"delta", std::move(delta)},
                                    {"logprobs", nullptr},
                                    {"finish_reason", NullableReason(finish_reason)}}})}};
}

json CompletionChunk(const ResponseMeta& meta, const std::string& text, const std::string& finish_reason) {
  return {{"id", meta.id},
          {"object", "text_completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", json::array({{{"index", 0},
                                    {"text", text},
                                    {"logprobs", nullptr},
                                    {"finish_reason", NullableReason(finish_reason)}}})}};
}

json UsageChunk(const ResponseMeta& meta, Endpoint endpoint, const Completion& c) {
  return {{"id", meta.id},
          {"object", endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", json::array()},
          {"usage", UsageJson(c)}};
}

json EmbeddingResponse(const std::string& model, const std::vector<std::vector<float>>& vectors, int prompt_tokens) {
  json data = json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", vectors[i]}});
  }
  return {{"object", "list"},
          {"data", std::move(data)},
          {"model", model},
          {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
}

json ModelsResponse(const std::string& model, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "flowmesh"}}})}};
}

json ErrorBody(const std::string& message, const std::string& type, const std::string& code) {
  return {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

}  // namespace flowmesh::inference::openai
