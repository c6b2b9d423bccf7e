#include "inference/inference_executor.h"

#include <chrono>
#include <set>

#include "spec/operator.h"

namespace flowmesh::inference {
namespace {

using json = nlohmann::json;
constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr auto kStreamEvery = std::chrono::milliseconds(250);

const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

Status BadType(const std::string& key, const char* what) {
  return InvalidArgument("inference." + key + " must be " + what);
}

// Data items: spec.data.items, else a single inference.prompt / spec.prompt.
Result<json> Items(const json& spec) {
  const json& items = Field(Field(spec, "data"), "items");
  if (items.is_array()) return items;
  for (const json* p : {&Field(Field(spec, "inference"), "prompt"), &Field(spec, "prompt")}) {
    if (!p->is_null()) return json::array({*p});
  }
  return InvalidArgument("the task has no input: set data.items (a list of prompts or chats)");
}

using Messages = std::vector<std::pair<std::string, std::string>>;

Result<Messages> ParseChat(const json& list) {
  Messages out;
  for (const auto& m : list) {
    if (!m.is_object() || !Field(m, "role").is_string()) {
      return InvalidArgument("a chat message must be an object with a string role and content");
    }
    const json& content = Field(m, "content");
    out.emplace_back(m["role"].get<std::string>(),
                     content.is_string() ? content.get<std::string>() : content.is_null() ? "" : content.dump());
  }
  return out;
}

// The prompt text of one item: chats and system prompts through the chat template.
Result<std::string> PromptOf(Engine& engine, const json& item, const std::string& system_prompt) {
  const json* chat = nullptr;
  std::string raw;
  if (item.is_array()) {
    chat = &item;
  } else if (item.is_object() && Field(item, "messages").is_array()) {
    chat = &item["messages"];
  } else if (item.is_object() && Field(item, "prompt").is_string()) {
    raw = item["prompt"].get<std::string>();
  } else if (item.is_string()) {
    raw = item.get<std::string>();
  } else {
    raw = item.dump();
  }
  if (!chat && system_prompt.empty()) return raw;
  Messages messages;
  if (chat) {
    FM_ASSIGN_OR_RETURN(messages, ParseChat(*chat));
  } else {
    messages.emplace_back("user", raw);
  }
  bool has_system = !messages.empty() && messages.front().first == "system";
  if (!system_prompt.empty() && !has_system) messages.insert(messages.begin(), {"system", system_prompt});
  return engine.ApplyChatTemplate(messages);
}

}  // namespace

Result<SamplingParams> SamplingFromSpec(const json& task_spec) {
  SamplingParams p;
  const json& inf = Field(task_spec, "inference");
  if (inf.is_null()) return p;
  if (!inf.is_object()) return InvalidArgument("inference must be an object");
  static const std::set<std::string> kKnown = {
      "max_tokens", "min_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "n",
      "repetition_penalty", "presence_penalty", "frequency_penalty", "stop", "stop_token_ids",
      "system_prompt", "logprobs", "stream", "prompt"};
  // Options of the published format's other engines (vLLM, transformers, diffusers) that
  // llama.cpp has no use for are passed over: the parser has already said which keys it did
  // not know. Two have a meaning here: max_new_tokens (transformers' max_tokens) and
  // do_sample: false (greedy decoding).
  bool has_max_tokens = Field(inf, "max_tokens").is_number();
  for (const auto& item : inf.items()) {
    const std::string& key = item.key();  // named, not a structured binding: the lambdas
    const json& value = item.value();     // below capture them (clang 14 cannot)
    if (value.is_null()) continue;
    if (key == "max_new_tokens" && !has_max_tokens) {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
          value.get<int64_t>() > (1 << 20)) {
        return BadType(key, "an integer >= 1");
      }
      p.max_tokens = value.get<int>();
      continue;
    }
    if (key == "do_sample") continue;  // applied below, over any temperature
    if (!kKnown.count(key)) continue;
    auto number = [&](float& out, float lo, float hi) -> Status {
      if (!value.is_number()) return BadType(key, "a number");
      double v = value.get<double>();
      if (!(v >= lo && v <= hi)) {
        return InvalidArgument("inference." + key + " must be between " + std::to_string(lo) + " and " +
                               std::to_string(hi));
      }
      out = static_cast<float>(v);
      return Status::Ok();
    };
    auto integer = [&](int& out, int lo, int hi) -> Status {
      if (!value.is_number_integer() || value.get<int64_t>() < lo || value.get<int64_t>() > hi) {
        return InvalidArgument("inference." + key + " must be an integer between " + std::to_string(lo) +
                               " and " + std::to_string(hi));
      }
      out = value.get<int>();
      return Status::Ok();
    };
    if (key == "max_tokens") FM_RETURN_IF_ERROR(integer(p.max_tokens, 1, 1 << 20));
    else if (key == "min_tokens") FM_RETURN_IF_ERROR(integer(p.min_tokens, 0, 1 << 20));
    else if (key == "temperature") FM_RETURN_IF_ERROR(number(p.temperature, 0, 100));
    else if (key == "top_p") FM_RETURN_IF_ERROR(number(p.top_p, 0, 1));
    else if (key == "top_k" && value == -1) p.top_k = 0;  // vLLM's "all tokens"
    else if (key == "top_k") FM_RETURN_IF_ERROR(integer(p.top_k, 0, 1 << 24));
    else if (key == "min_p") FM_RETURN_IF_ERROR(number(p.min_p, 0, 1));
    else if (key == "repetition_penalty") FM_RETURN_IF_ERROR(number(p.repetition_penalty, 0.01f, 100));
    else if (key == "presence_penalty") FM_RETURN_IF_ERROR(number(p.presence_penalty, -100, 100));
    else if (key == "frequency_penalty") FM_RETURN_IF_ERROR(number(p.frequency_penalty, -100, 100));
    else if (key == "seed") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 0xFFFFFFFFLL) {
        return BadType(key, "an integer between 0 and 2^32-1");
      }
      p.seed = static_cast<uint32_t>(value.get<int64_t>());
    } else if (key == "stop") {
      if (value.is_string()) {
        p.stop = {value.get<std::string>()};
      } else if (value.is_array()) {
        for (const auto& s : value) {
          if (!s.is_string()) return BadType(key, "a string or a list of strings");
          if (!s.get<std::string>().empty()) p.stop.push_back(s.get<std::string>());
        }
      } else {
        return BadType(key, "a string or a list of strings");
      }
    } else if (key == "stop_token_ids") {
      if (!value.is_array()) return BadType(key, "a list of token ids");
      for (const auto& t : value) {
        if (!t.is_number_integer()) return BadType(key, "a list of token ids");
        p.stop_token_ids.push_back(t.get<int32_t>());
      }
    } else if (key == "logprobs") {
      if (value.is_boolean()) p.logprobs = value.get<bool>();
      else if (value.is_number_integer()) p.logprobs = value.get<int>() > 0;
      else return BadType(key, "a boolean");
    } else if (key == "n") {
      if (!value.is_number_integer() || value.get<int>() < 1 || value.get<int>() > 64) {
        return BadType(key, "an integer between 1 and 64");
      }
    } else if (key == "system_prompt" || key == "prompt") {
      if (key == "system_prompt" && !value.is_string()) return BadType(key, "a string");
    } else if (key == "stream") {
      if (!value.is_boolean()) return BadType(key, "a boolean");
    }
  }
  if (Field(inf, "do_sample").is_boolean() && !inf["do_sample"].get<bool>()) p.temperature = 0;
  if (p.min_tokens > p.max_tokens) return InvalidArgument("inference.min_tokens must not exceed max_tokens");
  return p;
}

Result<json> InferenceExecutor::Run(executors::TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(SamplingParams params, SamplingFromSpec(ctx.spec));
  params.share = !(Field(ctx.spec, "cache").is_string() && ctx.spec["cache"] == "never");
  FM_ASSIGN_OR_RETURN(json items, Items(ctx.spec));
  const json& inf = Field(ctx.spec, "inference");
  int n = Field(inf, "n").is_number_integer() ? inf["n"].get<int>() : 1;
  std::string system_prompt = Field(inf, "system_prompt").is_string() ? inf["system_prompt"].get<std::string>() : "";
  bool stream = !Field(inf, "stream").is_boolean() || inf["stream"].get<bool>();
  if (ctx.cancelled.load()) return Cancelled("inference: cancelled");
  FM_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, models_->Acquire(ctx.spec));

  struct Pending {
    size_t item;
    std::shared_ptr<Generation> gen;
  };
  std::vector<Pending> pending;
  auto cancel_all = [&] {
    for (auto& p : pending) engine->Cancel(p.gen);
    for (auto& p : pending) p.gen->WaitFor(std::chrono::seconds(10));
  };
  for (size_t i = 0; i < items.size(); ++i) {
    auto prompt = PromptOf(*engine, items[i], system_prompt);
    if (!prompt.ok()) {
      cancel_all();
      return InvalidArgument("item " + std::to_string(i) + ": " + prompt.status().message());
    }
    for (int c = 0; c < n; ++c) {
      SamplingParams choice = params;
      if (params.seed != 0xFFFFFFFF) choice.seed = params.seed + static_cast<uint32_t>(c);
      auto gen = engine->Submit(*prompt, choice);
      if (!gen.ok()) {
        cancel_all();
        Status s = gen.status();
        if (s.code() == StatusCode::kInvalidArgument) {
          return InvalidArgument("item " + std::to_string(i) + ": " + s.message());
        }
        return s;
      }
      pending.push_back({i, *gen});
    }
  }

  auto next_stream = std::chrono::steady_clock::now() + kStreamEvery;
  auto flush = [&] {
    if (!stream || !ctx.log) return;
    for (auto& p : pending) {
      std::string delta = p.gen->TakeDelta();
      if (delta.empty()) continue;
      std::string prefix = "[" + std::to_string(p.item) + "] ";
      size_t start = 0;
      while (start <= delta.size()) {
        size_t nl = delta.find('\n', start);
        std::string line = delta.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (!line.empty()) ctx.log(prefix + line);
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
    }
  };
  for (auto& p : pending) {
    while (!p.gen->WaitFor(kPoll)) {
      if (ctx.cancelled.load()) {
        cancel_all();
        return Cancelled("inference: cancelled");
      }
      if (std::chrono::steady_clock::now() >= next_stream) {
        flush();
        next_stream = std::chrono::steady_clock::now() + kStreamEvery;
      }
    }
  }
  flush();

  json out_items = json::array();
  int prompt_total = 0, completion_total = 0, cached_total = 0;
  for (size_t i = 0, k = 0; i < items.size(); ++i) {
    json choices = json::array();
    json item = {{"input", items[i]}};
    int item_prompt = 0, item_completion = 0;
    for (int c = 0; c < n; ++c, ++k) {
      Completion comp = pending[k].gen->completion();
      if (comp.finish_reason == "error") return Internal("inference: " + comp.error);
      if (comp.finish_reason == "cancelled") return Cancelled("inference: cancelled");
      item_prompt = comp.prompt_tokens;
      item_completion += comp.completion_tokens;
      prompt_total += comp.prompt_tokens;
      cached_total += comp.cached_prompt_tokens;
      json choice = {{"output", comp.text}, {"finish_reason", comp.finish_reason},
                     {"completion_tokens", comp.completion_tokens}};
      if (params.logprobs) {
        json lp = json::array();
        for (size_t t = 0; t < comp.tokens.size() && t < comp.logprobs.size(); ++t) {
          lp.push_back({{"token_id", comp.tokens[t]}, {"logprob", comp.logprobs[t]}});
        }
        choice["logprobs"] = lp;
      }
      if (c == 0) {
        item["output"] = comp.text;
        item["finish_reason"] = comp.finish_reason;
        if (params.logprobs) item["logprobs"] = choice["logprobs"];
      }
      choices.push_back(std::move(choice));
    }
    completion_total += item_completion;
    item["usage"] = {{"prompt_tokens", item_prompt}, {"completion_tokens", item_completion}};
    if (n > 1) item["choices"] = std::move(choices);
    out_items.push_back(std::move(item));
  }
  // How much of the prompts came from the KV cache depends on what ran before on this
  // worker, not on the task: it goes to the log, so equal work gives equal results.
  if (ctx.log && prompt_total > 0) {
    ctx.log("inference: " + std::to_string(cached_total) + " of " + std::to_string(prompt_total) +
            " prompt tokens reused from the KV cache");
  }
  return json{{"items", std::move(out_items)},
              {"model", spec::ModelKey(ctx.spec)},
              {"usage",
               {{"prompt_tokens", prompt_total},
                {"completion_tokens", completion_total},
                {"total_tokens", prompt_total + completion_total}}}};
}

Result<json> EmbeddingExecutor::Run(executors::TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(json items, Items(ctx.spec));
  FM_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, models_->Acquire(ctx.spec));
  std::vector<std::string> texts;
  for (const auto& item : items) texts.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  if (ctx.cancelled.load()) return Cancelled("embedding: cancelled");
  FM_ASSIGN_OR_RETURN(auto vectors, engine->Embed(texts));
  json out = json::array();
  for (size_t i = 0; i < items.size(); ++i) out.push_back({{"input", items[i]}, {"embedding", vectors[i]}});
  return json{{"items", std::move(out)}, {"model", spec::ModelKey(ctx.spec)}};
}

void RegisterInferenceExecutors(executors::ExecutorRegistry& registry, std::shared_ptr<ModelCache> models) {
  registry.Register("inference", [models] { return std::make_unique<InferenceExecutor>(models); });
  registry.Register("embedding", [models] { return std::make_unique<EmbeddingExecutor>(models); });
}

}  // namespace flowmesh::inference
