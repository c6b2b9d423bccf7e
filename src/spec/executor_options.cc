#include "spec/executor_options.h"

#include <cstdint>

namespace flowmesh::spec {

using nlohmann::json;

namespace {

// Bounds of the inference options, chosen once for submit and worker alike:
// - temperature 0..2 and presence/frequency penalties -2..2: the OpenAI API's ranges, which
//   vLLM documents too; published workflows stay inside them, and llama.cpp's samplers are
//   well-defined there (beyond 2 the distribution is close to uniform noise).
// - repetition_penalty > 0 (vLLM, transformers: strictly positive; 1 = off), at most 100 as
//   a sanity cap: llama.cpp divides positive logits by it, and beyond 100 every seen token
//   is banned anyway.
// - top_p, min_p 0..1: probabilities. top_k -1..2^24: -1 is vLLM's "all tokens", 0 is
//   llama.cpp's and transformers'; 2^24 is above any vocabulary.
// - max_tokens, max_new_tokens, min_tokens up to 2^20: above any context llama.cpp loads.
// - seed 0..2^32-1: llama.cpp's seed is a uint32 (absent: random). n 1..64: the choices of
//   one prompt run as parallel sequences of one engine.
constexpr double kMaxTokens = 1 << 20;

// Fields left out of a designated initializer take their defaults (that is the point of the
// tables' layout); GCC before 12 still warns about them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
using T = OptionType;

OptionSection BuildInference() {
  OptionSection s{.name = "inference",
                  .readers = "inference, embedding",
                  .doc = "Sampling of the llama.cpp engine."};
  s.options = {
      {.name = "max_tokens", .type = T::kInt, .min = 1, .max = kMaxTokens,
       .default_json = "256", .doc = "Most tokens generated per choice."},
      {.name = "max_new_tokens", .type = T::kInt, .min = 1, .max = kMaxTokens,
       .doc = "transformers' spelling of max_tokens.", .alias_of = "max_tokens"},
      {.name = "min_tokens", .type = T::kInt, .min = 0, .max = kMaxTokens, .default_json = "0",
       .doc = "Tokens generated before a stop string or end of text may end a choice; "
              "at most max_tokens."},
      {.name = "temperature", .type = T::kNumber, .min = 0, .max = 2, .default_json = "1",
       .doc = "Sampling temperature; 0 decodes greedily."},
      {.name = "do_sample", .type = T::kBool,
       .doc = "transformers' switch: false decodes greedily (temperature 0)."},
      {.name = "top_p", .type = T::kNumber, .min = 0, .max = 1, .default_json = "1",
       .doc = "Nucleus sampling: the smallest set of tokens with this probability mass."},
      {.name = "top_k", .type = T::kInt, .min = -1, .max = 1 << 24, .default_json = "0",
       .doc = "Sample from the k most likely tokens; 0 or -1: all."},
      {.name = "min_p", .type = T::kNumber, .min = 0, .max = 1, .default_json = "0",
       .doc = "Drop tokens less likely than min_p times the most likely one."},
      {.name = "seed", .type = T::kInt, .min = 0, .max = 4294967295.0,
       .doc = "Seed of the sampler (choice c uses seed + c); absent: random."},
      {.name = "n", .type = T::kInt, .min = 1, .max = 64, .default_json = "1",
       .doc = "Choices generated per prompt."},
      {.name = "repetition_penalty", .type = T::kNumber, .min = 0, .max = 100,
       .min_exclusive = true, .default_json = "1",
       .doc = "Penalty on tokens already seen (1: none)."},
      {.name = "presence_penalty", .type = T::kNumber, .min = -2, .max = 2, .default_json = "0",
       .doc = "Subtracted from the logit of every token already seen."},
      {.name = "frequency_penalty", .type = T::kNumber, .min = -2, .max = 2,
       .default_json = "0", .doc = "Subtracted once per earlier occurrence of a token."},
      {.name = "stop", .type = T::kStringOrList,
       .doc = "Strings that end a choice (not included in the output)."},
      {.name = "stop_token_ids", .type = T::kIntList, .min = 0, .max = 2147483647.0,
       .doc = "Token ids that end a choice."},
      {.name = "system_prompt", .type = T::kString,
       .doc = "System message put before each prompt through the chat template."},
      {.name = "prompt", .type = T::kAny, .doc = "The single input when data.items is absent."},
      {.name = "logprobs", .type = T::kBoolOrInt, .min = 0, .default_json = "false",
       .doc = "Return the log-probability of each generated token (an integer > 0: on)."},
      {.name = "stream", .type = T::kBool, .default_json = "true",
       .doc = "Send generated text as task log lines while it runs."},
      // Options of the published format's other engines (vLLM, transformers, diffusers):
      // type-checked at submit, passed over by llama.cpp.
      {.name = "best_of", .type = T::kInt, .min = 1, .doc = "vLLM.", .used = false},
      {.name = "num_beams", .type = T::kInt, .min = 1, .doc = "transformers.", .used = false},
      {.name = "length_penalty", .type = T::kNumber, .doc = "transformers.", .used = false},
      {.name = "no_repeat_ngram_size", .type = T::kInt, .min = 0, .doc = "transformers.",
       .used = false},
      {.name = "bad_words", .type = T::kStringList, .doc = "vLLM.", .used = false},
      {.name = "ignore_eos", .type = T::kBool, .doc = "vLLM.", .used = false},
      {.name = "skip_special_tokens", .type = T::kBool, .doc = "vLLM.", .used = false},
      {.name = "prompt_logprobs", .type = T::kInt, .min = 0, .doc = "vLLM.", .used = false},
      {.name = "templates", .type = T::kAny,
       .doc = "Structured output: named fields or a JSON schema.", .used = false},
      {.name = "response_format", .type = T::kAny, .doc = "Structured output.", .used = false},
      {.name = "guided_json", .type = T::kAny, .doc = "vLLM structured output.", .used = false},
      {.name = "chat_template_kwargs", .type = T::kMapping, .doc = "vLLM.", .used = false},
      {.name = "batch_size", .type = T::kInt, .min = 1, .doc = "transformers.", .used = false},
      {.name = "prompts", .type = T::kAny, .doc = "Published inputs list.", .used = false},
      {.name = "num_inference_steps", .type = T::kInt, .min = 1, .doc = "diffusers.",
       .used = false},
      {.name = "guidance_scale", .type = T::kNumber, .min = 0, .doc = "diffusers.",
       .used = false},
      {.name = "height", .type = T::kInt, .min = 1, .doc = "diffusers.", .used = false},
      {.name = "width", .type = T::kInt, .min = 1, .doc = "diffusers.", .used = false},
      {.name = "negative_prompt", .type = T::kStringOrList, .doc = "diffusers.", .used = false},
      {.name = "num_images_per_prompt", .type = T::kInt, .min = 1, .doc = "diffusers.",
       .used = false},
      {.name = "output_type", .type = T::kString, .doc = "diffusers.", .used = false},
  };
  s.rule = &CheckInferenceSection;
  return s;
}

OptionSection BuildEcho() {
  OptionSection s{.name = "echo", .readers = "echo", .doc = "Returns its inputs.", .closed = true};
  s.options = {
      {.name = "message", .type = T::kAny, .doc = "The single input when data.items is absent."},
      {.name = "sleep_seconds", .type = T::kNumber, .min = 0, .default_json = "0",
       .doc = "Seconds to wait (cancellable) before answering."},
      {.name = "fail", .type = T::kString, .doc = "Fail at once with this message (tests)."},
      {.name = "fail_attempts", .type = T::kInt, .min = 0, .default_json = "0",
       .doc = "Fail attempts up to this number, then succeed (retry tests)."},
  };
  return s;
}

const std::vector<std::string_view> kAccessModes = {"direct", "proxy", "forward"};

OptionSection BuildApiResponse() {
  OptionSection s{.name = "api.response", .doc = "How the response is read."};
  s.options = {
      {.name = "parse_json", .type = T::kBool, .doc = "Parse the body as JSON."},
      {.name = "return_body", .type = T::kBool, .doc = "Put the body in the result."},
      {.name = "raise_for_status", .type = T::kBool, .doc = "Fail on a 4xx or 5xx status."},
      {.name = "include_headers", .type = T::kBool, .doc = "Put the response headers in the result."},
      {.name = "max_body_bytes", .type = T::kInt, .min = 1, .doc = "Longest body read."},
  };
  return s;
}

OptionSection BuildApi(const OptionSection* response) {
  OptionSection s{.name = "api", .readers = "api", .doc = "An HTTP call."};
  s.options = {
      {.name = "url", .type = T::kString,
       .doc = "Endpoint; absent: the executor's configured default."},
      {.name = "method", .type = T::kEnum, .doc = "HTTP method.",
       .values = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}},
      {.name = "headers", .type = T::kStringMap, .doc = "Request headers.",
       .what = "a mapping of header names to strings"},
      {.name = "body", .type = T::kAny, .doc = "Request body."},
      {.name = "params", .type = T::kMapping, .doc = "Query parameters."},
      {.name = "timeout", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Seconds per request."},
      {.name = "retries", .type = T::kInt, .min = 0, .doc = "Retries of a failed request."},
      {.name = "concurrency", .type = T::kInt, .min = 1, .doc = "Requests in flight."},
      {.name = "cache", .type = T::kBool, .doc = "Reuse responses of identical requests."},
      {.name = "json", .type = T::kAny, .doc = "Request body, sent as JSON."},
      {.name = "data", .type = T::kAny, .doc = "Request body, sent as is (form or text)."},
      {.name = "timeout_sec", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Seconds per request (the published spelling).", .alias_of = "timeout"},
      {.name = "verify_tls", .type = T::kBool, .doc = "Check the server's certificate."},
      {.name = "follow_redirects", .type = T::kBool, .doc = "Follow 3xx redirects."},
      {.name = "stream", .type = T::kBool, .doc = "Stream (SSE) tokens into the task log."},
      {.name = "backoff_sec", .type = T::kNumber, .min = 0, .doc = "First retry delay."},
      {.name = "max_backoff_sec", .type = T::kNumber, .min = 0, .doc = "Longest retry delay."},
      {.name = "response", .type = T::kSection, .doc = "How the response is read.",
       .section = response},
  };
  return s;
}

OptionSection BuildRagPart(std::string_view name, std::string_view doc) {
  OptionSection s{.name = name, .doc = doc};
  if (name == "rag.embedding") {
    s.options = {
        {.name = "model", .type = T::kString, .doc = "Embedding model."},
        {.name = "dimension", .type = T::kInt, .min = 1, .doc = "Vector size."},
        {.name = "device", .type = T::kString, .doc = "Device of the embedding model."},
    };
  } else if (name == "rag.search") {
    s.options = {
        {.name = "top_k", .type = T::kInt, .min = 1, .doc = "Passages retrieved."},
        {.name = "score_threshold", .type = T::kNumber, .doc = "Lowest score kept."},
        {.name = "filter", .type = T::kAny,
         .doc = "Metadata filter: {field: value | {$in|$ne|$gt|$gte|$lt|$lte: ...}} or "
                "Qdrant's {must: [{key, match | range}]}.",
         .what = "a mapping"},
    };
  } else if (name == "rag.generate") {
    s.options = {
        {.name = "prompt_template", .type = T::kString,
         .default_json = "\"Answer the question from the context.\\nContext:\\n{context}\\n"
                         "Question: {query}\\nAnswer:\"",
         .doc = "The prompt; {context} is the passages, one a line, {query} the query."},
        {.name = "max_tokens", .type = T::kInt, .min = 1, .max = kMaxTokens,
         .default_json = "256", .doc = "Most tokens of an answer."},
        {.name = "temperature", .type = T::kNumber, .min = 0, .max = 2, .default_json = "0",
         .doc = "Sampling temperature of the answer; 0 decodes greedily."},
        {.name = "seed", .type = T::kInt, .min = 0, .max = 4294967295.0,
         .doc = "Seed of the sampler; absent: random."},
    };
  } else {
    s.options = {
        {.name = "url", .type = T::kString, .doc = "Qdrant URL."},
        {.name = "host", .type = T::kString, .doc = "Qdrant host (without url)."},
        {.name = "port", .type = T::kInt, .min = 1, .max = 65535, .doc = "Qdrant port."},
        {.name = "collection", .type = T::kString, .doc = "Collection searched."},
        {.name = "api_key", .type = T::kString, .doc = "Qdrant API key."},
    };
  }
  return s;
}

OptionSection BuildRag(const OptionSection* embedding, const OptionSection* search,
                       const OptionSection* qdrant, const OptionSection* generate) {
  OptionSection s{.name = "rag", .readers = "rag", .doc = "Retrieval-augmented generation."};
  s.options = {
      {.name = "qdrant", .type = T::kSection,
       .doc = "The vector store.", .section = qdrant, .flat = true},
      {.name = "embedding", .type = T::kSection, .doc = "The embedding model.",
       .section = embedding, .flat = true},
      {.name = "search", .type = T::kSection,
       .doc = "The search.", .section = search, .flat = true},
      {.name = "index", .type = T::kString, .doc = "Index searched."},
      {.name = "collection", .type = T::kString,
       .doc = "An embedded collection searched (docs/internals/collections.md)."},
      {.name = "version", .type = T::kInt, .min = 1,
       .doc = "The collection's version searched; absent: its newest ready one."},
      {.name = "query", .type = T::kString, .doc = "The query.", .flat = true},
      {.name = "generate", .type = T::kSection,
       .doc = "Answers each query from its passages with the task's model.",
       .section = generate},
  };
  s.exclusive = {{"index", "collection"}};
  return s;
}

OptionSection BuildCollectionChunking() {
  OptionSection s{.name = "collection.chunking", .doc = "Chunks, in tokens of the embedding model.",
                  .closed = true};
  s.options = {
      {.name = "max_tokens", .type = T::kInt, .min = 1, .max = 8192, .default_json = "256",
       .doc = "Most tokens of a chunk."},
      {.name = "overlap", .type = T::kInt, .min = 0, .max = 8191, .default_json = "32",
       .doc = "Tokens a chunk shares with the one before it; less than max_tokens."},
  };
  s.rule = [](const json& section) -> std::optional<SectionProblem> {
    auto max = section.find("max_tokens"), overlap = section.find("overlap");
    int64_t m = max != section.end() && max->is_number_integer() ? max->get<int64_t>() : 256;
    if (overlap == section.end() || !overlap->is_number_integer()) {
      return std::nullopt;
    }
    if (overlap->get<int64_t>() < m) return std::nullopt;
    return SectionProblem{"overlap", "collection.chunking.overlap must be smaller than max_tokens (" +
                                         std::to_string(m) + ")"};
  };
  return s;
}

OptionSection BuildCollection(const OptionSection* chunking) {
  OptionSection s{.name = "collection", .readers = "collection",
                  .doc = "Builds an embedded vector collection (docs/executors/collection.md).",
                  .closed = true};
  s.options = {
      {.name = "name", .type = T::kString, .doc = "The collection's name, [A-Za-z0-9._-]{1,64}."},
      {.name = "text_field", .type = T::kString, .default_json = "\"text\"",
       .doc = "The field of a row holding its text."},
      {.name = "id_field", .type = T::kString,
       .doc = "The field naming a row's document; absent: the row's id field, else its index."},
      {.name = "metadata_fields", .type = T::kList,
       .doc = "Fields kept as metadata; absent: every other field.",
       .what = "a list of field names"},
      {.name = "chunking", .type = T::kSection, .doc = "Chunks, in tokens of the model.",
       .section = chunking},
      {.name = "metric", .type = T::kEnum, .default_json = "\"cosine\"",
       .doc = "Similarity of the index.", .values = {"cosine", "ip", "l2"}},
      {.name = "batch_size", .type = T::kInt, .min = 1, .max = 4096, .default_json = "32",
       .doc = "Texts per embedding call."},
  };
  return s;
}

std::vector<Option> AgentLoopOptions() {
  return {
      {.name = "tools", .type = T::kList, .doc = "Tools the agent may call.",
       .what = "a list of tools"},
      {.name = "max_steps", .type = T::kInt, .min = 1, .doc = "Most steps of the loop."},
      {.name = "max_tokens", .type = T::kInt, .min = 1,
       .doc = "Most generated tokens over the whole loop."},
      {.name = "max_step_tokens", .type = T::kInt, .min = 1,
       .doc = "Most generated tokens in one step."},
      {.name = "tool_choice", .type = T::kEnum, .doc = "required: no final answer before a tool call.",
       .values = {"auto", "required"}},
      {.name = "system_prompt", .type = T::kString, .doc = "Replaces the default system prompt."},
      {.name = "endpoints", .type = T::kList, .doc = "Declared HTTP endpoints, each a tool.",
       .what = "a list of endpoints"},
      {.name = "timeout", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Seconds for the whole loop."},
  };
}

OptionSection BuildAgentHttp() {
  OptionSection s{.name = "agent.http", .doc = "The http_fetch tool."};
  s.options = {{.name = "allow", .type = T::kList, .doc = "Hosts http_fetch may reach.",
                .what = "a list of hosts"}};
  return s;
}

OptionSection BuildAgentInner(const OptionSection* http) {
  OptionSection s{.name = "agent.agent", .doc = "The published nesting of the loop's options."};
  s.options = AgentLoopOptions();
  s.options.push_back(
      {.name = "http", .type = T::kSection, .doc = "The http_fetch tool.", .section = http});
  s.options.push_back({.name = "type", .type = T::kString, .doc = "Kind of agent."});
  s.options.push_back({.name = "model", .type = T::kAny, .doc = "Model of the agent."});
  return s;
}

OptionSection BuildAgent(const OptionSection* inner, const OptionSection* http) {
  OptionSection s{.name = "agent", .readers = "agent", .doc = "A tool-calling loop."};
  s.options = {{.name = "task", .type = T::kString, .doc = "What the agent is asked to do."}};
  for (Option& o : AgentLoopOptions()) s.options.push_back(o);
  s.options.push_back(
      {.name = "http", .type = T::kSection, .doc = "The http_fetch tool.", .section = http});
  s.options.push_back({.name = "model", .type = T::kAny, .doc = "Model of the agent."});
  s.options.push_back(
      {.name = "agent", .type = T::kSection, .doc = "Loop options, nested.", .section = inner});
  return s;
}

OptionSection BuildTraining() {
  OptionSection s{.name = "training",
                  .readers = "sft, lora_sft, dpo, ppo, image_classification_training",
                  .doc = "The published trainers' arguments (transformers, trl)."};
  s.options = {
      {.name = "num_train_epochs", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Passes over the data."},
      {.name = "epochs", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Spelling of num_train_epochs."},
      {.name = "max_steps", .type = T::kInt, .min = -1,
       .doc = "Most optimiser steps; -1: by epochs."},
      {.name = "batch_size", .type = T::kInt, .min = 1, .doc = "Examples per step."},
      {.name = "per_device_train_batch_size", .type = T::kInt, .min = 1,
       .doc = "Training examples per device and step."},
      {.name = "per_device_eval_batch_size", .type = T::kInt, .min = 1,
       .doc = "Evaluation examples per device and step."},
      {.name = "gradient_accumulation_steps", .type = T::kInt, .min = 1,
       .doc = "Steps whose gradients are summed."},
      {.name = "learning_rate", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Learning rate."},
      {.name = "lr_scheduler_type", .type = T::kString, .doc = "Learning-rate schedule."},
      {.name = "warmup_ratio", .type = T::kNumber, .min = 0, .max = 1,
       .doc = "Share of steps warming up."},
      {.name = "warmup_steps", .type = T::kInt, .min = 0, .doc = "Steps warming up."},
      {.name = "weight_decay", .type = T::kNumber, .min = 0, .doc = "Weight decay."},
      {.name = "max_seq_length", .type = T::kInt, .min = 1, .doc = "Longest sequence."},
      {.name = "max_length", .type = T::kInt, .min = 1, .doc = "Longest sequence (dpo)."},
      {.name = "max_prompt_length", .type = T::kInt, .min = 1, .doc = "Longest prompt (dpo)."},
      {.name = "logging_steps", .type = T::kInt, .min = 1, .doc = "Steps between log lines."},
      {.name = "save_steps", .type = T::kInt, .min = 1, .doc = "Steps between checkpoints."},
      {.name = "eval_steps", .type = T::kInt, .min = 1, .doc = "Steps between evaluations."},
      {.name = "save_strategy", .type = T::kString, .doc = "When checkpoints are saved."},
      {.name = "evaluation_strategy", .type = T::kString, .doc = "When evaluations run."},
      {.name = "seed", .type = T::kInt, .doc = "Random seed."},
      {.name = "bf16", .type = T::kBool, .doc = "Train in bfloat16."},
      {.name = "fp16", .type = T::kBool, .doc = "Train in float16."},
      {.name = "gradient_checkpointing", .type = T::kBool,
       .doc = "Recompute activations to save memory."},
      {.name = "optim", .type = T::kString, .doc = "Optimiser."},
      {.name = "beta", .type = T::kNumber, .doc = "DPO beta."},
      {.name = "loss_type", .type = T::kString, .doc = "DPO loss."},
      {.name = "packing", .type = T::kBool, .doc = "Pack short examples together."},
      {.name = "output_dir", .type = T::kString, .doc = "Where checkpoints go."},
      {.name = "save_model", .type = T::kBool, .doc = "Keep the trained model."},
      {.name = "save_freq", .type = T::kInt, .min = 1, .doc = "Steps between saves (ppo)."},
      {.name = "save_total_limit", .type = T::kInt, .min = 1, .doc = "Checkpoints kept."},
      {.name = "steps", .type = T::kInt, .min = 1, .doc = "Steps (ppo)."},
      {.name = "padding_side", .type = T::kString, .doc = "Side padded."},
      {.name = "early_stopping", .type = T::kBool, .doc = "Stop early (ppo)."},
      {.name = "project", .type = T::kString, .doc = "Tracker project."},
      {.name = "log_with", .type = T::kAny, .doc = "Trackers (ppo; becomes report_to)."},
      {.name = "tracker_project_name", .type = T::kString,
       .doc = "Tracker project (ppo; becomes project)."},
      {.name = "num_mini_batches", .type = T::kInt, .min = 1,
       .doc = "Mini-batches per batch (ppo)."},
      {.name = "save_only_model", .type = T::kBool, .doc = "Save weights without optimiser state."},
      {.name = "save_safetensors", .type = T::kBool, .doc = "Save as safetensors."},
      {.name = "max_grad_norm", .type = T::kNumber, .min = 0, .doc = "Gradient clipping."},
      {.name = "resume_from_checkpoint", .type = T::kAny, .doc = "Checkpoint to resume from."},
      {.name = "report_to", .type = T::kAny, .doc = "Trackers."},
      {.name = "num_gpus", .type = T::kInt, .min = 0, .doc = "GPUs used."},
      {.name = "allow_multi_gpu", .type = T::kBool, .doc = "Launch on several GPUs (torchrun)."},
      {.name = "visible_devices", .type = T::kStringOrInt, .min = 0,
       .doc = "GPU ids, \"0,1\".", .what = "GPU ids, \"0,1\""},
      {.name = "nproc_per_node", .type = T::kInt, .min = 1,
       .doc = "Processes per node (torchrun)."},
      {.name = "auto_deepspeed_stage", .type = T::kInt, .min = 0, .max = 3,
       .doc = "DeepSpeed ZeRO stage chosen for multi-GPU runs."},
      {.name = "deepspeed", .type = T::kAny, .doc = "DeepSpeed configuration."},
      {.name = "image_size", .type = T::kAny, .doc = "Image size (image classification)."},
      {.name = "num_labels", .type = T::kInt, .min = 1, .doc = "Classes (image classification)."},
      {.name = "ppo_epochs", .type = T::kInt, .min = 1, .doc = "Epochs per PPO batch."},
      {.name = "mini_batch_size", .type = T::kInt, .min = 1, .doc = "PPO mini-batch size."},
      {.name = "init_kl_coef", .type = T::kNumber, .doc = "Initial KL coefficient."},
      {.name = "target_kl", .type = T::kNumber, .doc = "Target KL."},
      {.name = "total_episodes", .type = T::kInt, .min = 1, .doc = "Episodes (ppo)."},
      {.name = "response_length", .type = T::kInt, .min = 1,
       .doc = "Generated response length (ppo)."},
      {.name = "kl_coef", .type = T::kNumber, .doc = "KL coefficient."},
  };
  return s;
}

OptionSection BuildLora() {
  OptionSection s{.name = "lora", .readers = "lora_sft", .doc = "The LoRA adapter trained."};
  s.options = {
      {.name = "r", .type = T::kInt, .min = 1, .doc = "Rank."},
      {.name = "alpha", .type = T::kNumber, .min = 0, .min_exclusive = true, .doc = "Scaling."},
      {.name = "lora_alpha", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "peft's spelling of alpha."},
      {.name = "dropout", .type = T::kNumber, .min = 0, .max = 1, .doc = "Dropout."},
      {.name = "lora_dropout", .type = T::kNumber, .min = 0, .max = 1,
       .doc = "peft's spelling of dropout."},
      {.name = "bias", .type = T::kString, .doc = "Bias training (none, all, lora_only)."},
      {.name = "task_type", .type = T::kString, .doc = "peft task type."},
      {.name = "use_rslora", .type = T::kBool, .doc = "Rank-stabilised scaling."},
      {.name = "target_modules", .type = T::kStringOrList, .doc = "Modules adapted."},
  };
  return s;
}

OptionSection BuildSshOutput() {
  OptionSection s{.name = "ssh.sshOutput", .doc = "Files kept as the session's output.",
                  .closed = true};
  s.options = {
      {.name = "mountPath", .type = T::kString, .doc = "Directory collected at the end."},
      {.name = "maxBytes", .type = T::kInt, .min = 1, .doc = "Most bytes collected."},
  };
  return s;
}

OptionSection BuildSsh(const OptionSection* output) {
  OptionSection s{.name = "ssh", .readers = "ssh", .doc = "An SSH session.", .closed = true};
  s.options = {
      {.name = "interactive", .type = T::kBool, .doc = "Open a shell for the user.", .flat = true},
      {.name = "image", .type = T::kString, .doc = "Container image.", .flat = true},
      {.name = "user", .type = T::kString, .doc = "Login user.", .flat = true},
      {.name = "authorizedKeys", .type = T::kStringList,
       .doc = "Public keys let in.", .flat = true},
      {.name = "command", .type = T::kStringOrList,
       .doc = "Command run in the session.", .flat = true},
      {.name = "entrypoint", .type = T::kStringOrList,
       .doc = "Entrypoint of the image.", .flat = true},
      {.name = "ttlSeconds", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Longest life of the session.", .flat = true},
      {.name = "idleTimeoutSeconds", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Idle time before the session ends.", .flat = true},
      {.name = "accessMode", .type = T::kEnum, .doc = "How clients reach the session.",
       .values = kAccessModes, .flat = true},
      {.name = "inputs", .type = T::kStageInputs, .doc = "Upstream outputs mounted.", .flat = true},
      {.name = "sshOutput", .type = T::kSection, .doc = "Files kept as output.",
       .section = output, .flat = true},
      {.name = "env", .type = T::kScalarMap, .doc = "Environment variables.",
       .what = "a mapping of variable names to strings", .flat = true},
  };
  return s;
}

OptionSection BuildPythonOutput() {
  OptionSection s{.name = "python.pythonOutput", .doc = "The task's output.", .closed = true};
  s.options = {{.name = "maxBytes", .type = T::kInt, .min = 1, .doc = "Most bytes kept."}};
  return s;
}

OptionSection BuildPython(const OptionSection* output) {
  OptionSection s{.name = "python", .readers = "python", .doc = "A Python script.",
                  .closed = true};
  s.options = {
      {.name = "code", .type = T::kString, .doc = "The script.", .flat = true},
      {.name = "entrypoint", .type = T::kString, .doc = "File run instead of code.", .flat = true},
      {.name = "image", .type = T::kString, .doc = "Container image.", .flat = true},
      {.name = "requirements", .type = T::kStringList,
       .doc = "Packages installed first.", .flat = true},
      {.name = "inputs", .type = T::kStageInputs, .doc = "Upstream outputs mounted.", .flat = true},
      {.name = "timeoutSeconds", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Longest run."},
      {.name = "network", .type = T::kEnum, .doc = "Network of the sandbox.",
       .values = {"none", "bridge"}, .flat = true},
      {.name = "env", .type = T::kScalarMap, .doc = "Environment variables.",
       .what = "a mapping of variable names to strings", .flat = true},
      {.name = "emits", .type = T::kStringList,
       .doc = "Files the script writes as output.", .flat = true},
      {.name = "pythonOutput", .type = T::kSection, .doc = "The task's output.",
       .section = output, .flat = true},
  };
  return s;
}

OptionSection BuildServe() {
  OptionSection s{.name = "serve", .readers = "serve", .doc = "A model served over HTTP.",
                  .closed = true};
  s.options = {
      {.name = "ttlSeconds", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Longest life of the server.", .flat = true},
      {.name = "idleTimeoutSeconds", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Stop after this long without a request.", .flat = true},
      {.name = "readinessTimeoutSeconds", .type = T::kNumber, .min = 0, .min_exclusive = true,
       .doc = "Wait for the server to answer.", .flat = true},
      {.name = "accessMode", .type = T::kEnum, .doc = "How clients reach the server.",
       .values = kAccessModes, .flat = true},
      {.name = "port", .type = T::kInt, .min = 1, .max = 65535,
       .doc = "Port of the server.", .flat = true},
      {.name = "apiKey", .type = T::kString, .doc = "Key clients must send.", .flat = true},
  };
  return s;
}
#pragma GCC diagnostic pop

// All sections, built once; nested sections first so that their addresses are stable.
struct Sections {
  OptionSection inference = BuildInference();
  OptionSection echo = BuildEcho();
  OptionSection api_response = BuildApiResponse();
  OptionSection api = BuildApi(&api_response);
  OptionSection rag_embedding = BuildRagPart("rag.embedding", "The embedding model.");
  OptionSection rag_search = BuildRagPart("rag.search", "The search.");
  OptionSection rag_qdrant = BuildRagPart("rag.qdrant", "The vector store.");
  OptionSection rag_generate = BuildRagPart("rag.generate", "Answers from the passages.");
  OptionSection rag = BuildRag(&rag_embedding, &rag_search, &rag_qdrant, &rag_generate);
  OptionSection collection_chunking = BuildCollectionChunking();
  OptionSection collection = BuildCollection(&collection_chunking);
  OptionSection agent_http = BuildAgentHttp();
  OptionSection agent_inner = BuildAgentInner(&agent_http);
  OptionSection agent = BuildAgent(&agent_inner, &agent_http);
  OptionSection training = BuildTraining();
  OptionSection lora = BuildLora();
  OptionSection ssh_output = BuildSshOutput();
  OptionSection ssh = BuildSsh(&ssh_output);
  OptionSection python_output = BuildPythonOutput();
  OptionSection python = BuildPython(&python_output);
  OptionSection serve = BuildServe();
  std::vector<const OptionSection*> top = {&inference, &echo, &api,  &rag,    &collection, &agent,
                                           &training,  &lora, &ssh,  &python, &serve};
};

const Sections& All() {
  static const Sections* sections = new Sections();
  return *sections;
}

}  // namespace

const std::vector<const OptionSection*>& ExecutorSections() { return All().top; }

const OptionSection* FindSection(std::string_view name) {
  for (const OptionSection* s : All().top) {
    if (s->name == name) return s;
  }
  return nullptr;
}

const OptionSection& InferenceSection() { return All().inference; }
const OptionSection& EchoSection() { return All().echo; }

const std::vector<Option>& InferenceOptions() { return All().inference.options; }

const Option* FindInferenceOption(std::string_view name) {
  return FindOption(InferenceSection(), name);
}

std::optional<SectionProblem> CheckInferenceSection(const json& section) {
  if (!section.is_object()) return std::nullopt;
  auto integer = [&](std::string_view key) -> std::optional<int64_t> {
    auto it = section.find(key);
    if (it == section.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  std::optional<int64_t> min = integer("min_tokens");
  if (!min) return std::nullopt;
  auto given = [&](std::string_view key) {
    auto it = section.find(key);
    return it != section.end() && !it->is_null();
  };
  std::optional<int64_t> max = integer("max_tokens");
  if (!max && !given("max_tokens")) max = integer("max_new_tokens");
  if (!max && !given("max_tokens") && !given("max_new_tokens")) {
    max = DefaultOf(*FindInferenceOption("max_tokens")).get<int64_t>();
  }
  // A `${...}` max is checked at dispatch; an out-of-range one has its own message.
  if (!max || *max < 1 || *min <= *max) return std::nullopt;
  return SectionProblem{"min_tokens", "inference.min_tokens must be at most max_tokens (" +
                                          std::to_string(*max) + "), got " +
                                          std::to_string(*min)};
}

std::optional<std::string> ResolveInferenceSection(json* section) {
  if (!section->is_object()) return std::string("inference must be a mapping");
  return ResolveSection(InferenceSection(), section);
}

}  // namespace flowmesh::spec
