// One loaded llama.cpp model and the decode loop that serves it.
//
// Every generation submitted to an Engine (from any task, workflow or tenant) becomes a
// sequence in the model's single llama_context; one loop thread owns that context and
// decodes all running sequences together in one llama_batch per step. New sequences join
// between steps; a finished or cancelled sequence frees its slot at once. A slot keeps its
// KV cells when its sequence ends; a new prompt that shares a prefix with a cached or
// running sequence reuses that prefix (in place, or by copying the cells) instead of
// recomputing it.
//
// Thread-safety: Submit/Cancel/accessors may be called from any thread; callbacks of a
// generation run on the loop thread. The destructor cancels what is left and joins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace flowmesh::inference {

struct EngineOptions {
  int n_ctx = 0;            // KV cells in all; 0: 2048 per slot (capped by the model), or
                            // 8192 shared when kv_unified
  bool kv_unified = false;  // one KV buffer for all sequences (else one stream per slot,
                            // so a sequence attends only over its own cells)
  int n_seq = 16;           // sequence slots
  int n_batch = 2048;       // tokens per decode step
  int n_ubatch = 512;
  int threads = 0;          // 0: hardware threads
  int n_gpu_layers = 0;     // -1: all (CUDA builds)
  bool flash_attn = false;

  // From a task's model.llamacpp object; unknown keys are an error.
  static Result<EngineOptions> FromJson(const nlohmann::json& llamacpp);
};

// A LoRA adapter in GGUF (as llama.cpp's convert_lora_to_gguf.py writes it for this model's
// architecture and shapes) applied to one request at `scale`. An engine loads each adapter
// file once and keeps it; the base weights stay shared by every request.
struct LoraAdapter {
  std::string path;
  float scale = 1.0f;
};

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  uint32_t seed = 0xFFFFFFFF;  // default: random
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int max_tokens = 256;
  int min_tokens = 0;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool logprobs = false;
  // A GBNF grammar (start symbol `root`) every generated token must keep satisfiable;
  // empty: unconstrained. An invalid grammar makes Submit fail with InvalidArgument.
  std::string grammar;
  // Greedy or seeded requests identical to a running one share its sequence unless this is
  // off (a task with `cache: never`, or a server with de-duplication off).
  bool share = true;
  // Applied to this sequence only: requests with other adapters (or none) decode in their
  // own steps of the same loop, on the same weights and KV budget. A file that is not an
  // adapter for this model makes Submit fail with InvalidArgument.
  std::vector<LoraAdapter> adapters;
};

struct Completion {
  std::string text;                  // valid UTF-8 (invalid bytes replaced)
  std::string finish_reason;         // stop | length | cancelled | error
  std::string error;                 // when finish_reason == error
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;      // prompt tokens whose KV was reused
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;       // per token, when requested
};

// One submitted sequence. The submitter waits on it; the loop thread fills it.
class Generation {
 public:
  // Blocks until done or `timeout` passes; returns whether it is done.
  bool WaitFor(std::chrono::milliseconds timeout);
  // Blocks until text is waiting to be taken, the generation is done, or `timeout` passes;
  // returns whether text is waiting or it is done (streaming without polling).
  bool WaitForText(std::chrono::milliseconds timeout);
  bool done() const;
  Completion completion() const;  // meaningful once done()
  // Text generated since the previous call (complete UTF-8 characters only).
  std::string TakeDelta();

 private:
  friend class Engine;
  mutable Mutex mu_;
  std::condition_variable cv_;
  bool done_ FM_GUARDED_BY(mu_) = false;
  Completion completion_ FM_GUARDED_BY(mu_);
  std::string delta_ FM_GUARDED_BY(mu_);
  std::atomic<bool> cancel_{false};
  // Identical deterministic requests share one sequence: the sequence's own Generation
  // lists the submitters' handles (each gets the deltas and the completion); a handle
  // points at its sequence. Cancelling a handle detaches it; the sequence is cancelled
  // when no handle is left.
  std::vector<std::shared_ptr<Generation>> handles_ FM_GUARDED_BY(mu_);
  std::weak_ptr<Generation> sequence_;                // set before the handle is returned
  // Appends `delta` and, when `done` is set, completes this and every attached handle.
  void Publish(const std::string& delta, const Completion* done);
};

class Engine {
 public:
  // Loads a GGUF file. A missing, corrupt or truncated file is an InvalidArgument error.
  static Result<std::unique_ptr<Engine>> Load(const std::string& path, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Tokenizes `prompt` (adding BOS when the model wants it) and queues a sequence, or,
  // for a greedy or seeded request identical to one still running, joins that one.
  Result<std::shared_ptr<Generation>> Submit(const std::string& prompt, const SamplingParams& params);
  // Asks the loop to drop that sequence (finish_reason "cancelled"); its slot is freed at
  // the next step.
  void Cancel(const std::shared_ptr<Generation>& generation);

  // Formats a chat through the model's own template (ChatML when it has none).
  Result<std::string> ApplyChatTemplate(const std::vector<std::pair<std::string, std::string>>& messages) const;
  // Mean-pooled, L2-normalised embeddings (a separate context; serialised). A text longer
  // than embed_tokens() tokens is cut there.
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts);
  int embed_tokens() const;
  // The bytes of each token of `text` as the model tokenizes it (no BOS/EOS; special-token
  // text is read as plain text), in order: what chunking cuts at (vector::TokenStarts maps
  // them to offsets in `text`). Thread-safe (the vocabulary is read-only).
  Result<std::vector<std::string>> TokenPieces(const std::string& text) const;

  int slots() const;
  int free_slots() const;     // slots neither running nor waiting to run
  // Requests that joined an identical running deterministic sequence (same prompt tokens
  // and sampling parameters, greedy or seeded) instead of decoding their own.
  uint64_t shared_hits() const;
  uint64_t memory_bytes() const;  // weights + KV cache estimate
  const std::string& path() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Process-wide llama.cpp initialisation (backend, logging to our logger). Idempotent.
void InitLlama();

}  // namespace flowmesh::inference
