#include "inference/inference_executor.h"

#include <chrono>
#include <algorithm>

#include "spec/operator.h"
#include "spec/executor_options.h"

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

// The inference section as the executor reads it: each option checked, aliased and
// defaulted by spec/executor_options.cc, the table the submit-time validator uses. A value
// accepted there is accepted here, and a refused one gets the same message. Keys the table does not
// know are left alone (the parser warned); options of other engines (vLLM, transformers,
// diffusers) are checked and passed over.
Result<json> ResolvedInference(const json& task_spec) {
  const json& given = Field(task_spec, "inference");
  json inf = given.is_null() ? json::object() : given;
  if (auto problem = spec::ResolveInferenceSection(&inf)) return InvalidArgument(*problem);
  return inf;
}

}  // namespace

Result<SamplingParams> SamplingFromSpec(const json& task_spec) {
  FM_ASSIGN_OR_RETURN(json inf, ResolvedInference(task_spec));
  SamplingParams p;
  p.max_tokens = inf["max_tokens"].get<int>();
  p.min_tokens = inf["min_tokens"].get<int>();
  p.temperature = inf["temperature"].get<float>();
  p.top_p = inf["top_p"].get<float>();
  p.top_k = std::max(inf["top_k"].get<int>(), 0);  // vLLM's -1 and llama.cpp's 0: all tokens
  p.min_p = inf["min_p"].get<float>();
  p.repetition_penalty = inf["repetition_penalty"].get<float>();
  p.presence_penalty = inf["presence_penalty"].get<float>();
  p.frequency_penalty = inf["frequency_penalty"].get<float>();
  if (Field(inf, "seed").is_number()) p.seed = static_cast<uint32_t>(inf["seed"].get<int64_t>());
  const json& stop = Field(inf, "stop");
  if (stop.is_string()) p.stop = {stop.get<std::string>()};
  if (stop.is_array()) {
    for (const auto& s : stop) {
      if (!s.get_ref<const std::string&>().empty()) p.stop.push_back(s.get<std::string>());
    }
  }
  if (Field(inf, "stop_token_ids").is_array()) {
    for (const auto& t : inf["stop_token_ids"]) p.stop_token_ids.push_back(t.get<int32_t>());
  }
  const json& logprobs = inf["logprobs"];
  p.logprobs = logprobs.is_boolean() ? logprobs.get<bool>() : logprobs.get<int64_t>() > 0;
  if (Field(inf, "do_sample").is_boolean() && !inf["do_sample"].get<bool>()) {
    p.temperature = 0;  // greedy, over any temperature
  }
  FM_ASSIGN_OR_RETURN(p.adapters, AdaptersFromSpec(task_spec));
  return p;
}

Result<std::vector<LoraAdapter>> AdaptersFromSpec(const json& task_spec) {
  std::vector<LoraAdapter> out;
  const json& adapters = Field(Field(task_spec, "model"), "adapters");
  if (!adapters.is_array()) return out;
  for (size_t i = 0; i < adapters.size(); ++i) {
    const json& a = adapters[i];
    const std::string where = "model.adapters[" + std::to_string(i) + "]";
    const json& path = Field(a, "path");
    std::string file = path.is_string() ? path.get<std::string>() : "";
    if (file.size() < 5 || file.compare(file.size() - 5, 5, ".gguf") != 0) {
      // peft folders are converted first where the worker has the training venv
      // (training/lora_inference.h); task_id and url are not fetched.
      return FailedPrecondition(where +
                                ": this worker applies LoRA adapters given as llama.cpp GGUF files "
                                "(path: …/adapter.gguf); a peft adapter folder needs a worker with "
                                "the training venv to convert it");
    }
    LoraAdapter adapter{file, 1.0f};
    const json& scale = Field(Field(a, "kwargs"), "scale");
    if (!scale.is_null()) {
      if (!scale.is_number()) return InvalidArgument(where + ".kwargs.scale must be a number");
      adapter.scale = scale.get<float>();
    }
    out.push_back(std::move(adapter));
  }
  return out;
}

Result<json> InferenceExecutor::Run(executors::TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(SamplingParams params, SamplingFromSpec(ctx.spec));
  params.share = !(Field(ctx.spec, "cache").is_string() && ctx.spec["cache"] == "never");
  FM_ASSIGN_OR_RETURN(json items, Items(ctx.spec));
  FM_ASSIGN_OR_RETURN(json inf, ResolvedInference(ctx.spec));
  int n = inf["n"].get<int>();
  std::string system_prompt = Field(inf, "system_prompt").is_string() ? inf["system_prompt"].get<std::string>() : "";
  bool stream = inf["stream"].get<bool>();
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
