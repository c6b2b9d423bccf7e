// Private to the engine's files: Engine::Impl, the state behind engine.h's Engine.
//   engine.cc       loading, Submit/Cancel, chat template, embeddings, Generation
//   decode_loop.cc  the loop thread: admission into slots, prefix reuse, one batch per step
//   sampling.cc     sampler chains, sampling a token, streaming text out
// Thread affinity as in engine.h: loop-thread state is touched only by the loop thread.
#pragma once

#include <llama.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/thread_annotations.h"
#include "inference/engine.h"

namespace flowmesh::inference {
namespace engine_detail {

inline constexpr int kDefaultUnifiedCtx = 8192;
inline constexpr int kDefaultCtxPerSlot = 2048;
// With one KV stream per slot, reusing another slot's prefix copies that slot's whole
// stream: worth it only for a long enough prefix.
inline constexpr size_t kMinCopiedPrefix = 64;
inline constexpr std::chrono::milliseconds kIdlePoll(100);

// Bytes of `s` up to the last character that is complete (a trailing partial sequence,
// which the next token may finish, is held back).
size_t CompleteUtf8Prefix(const std::string& s, size_t from);

// Replaces every invalid UTF-8 sequence with U+FFFD, so the text is always valid JSON.
std::string SanitizeUtf8(const std::string& s);

}  // namespace engine_detail

struct Engine::Impl {
  struct Seq {
    std::shared_ptr<Generation> gen;
    SamplingParams params;
    std::vector<llama_token> prompt;
    llama_seq_id slot = -1;
    size_t prompt_fed = 0;       // prompt tokens in the KV cache
    int cached_prompt = 0;       // of which reused from another sequence or an earlier one
    llama_token pending = -1;    // sampled, not yet decoded
    int batch_index = -1;        // its output row in the current batch, -1: none
    int reserve = 0;             // KV cells it may use
    std::vector<llama_token> out;
    std::vector<float> logprobs;
    std::string bytes;           // generated text so far (raw)
    size_t streamed = 0;         // bytes of `bytes` handed out as deltas
    llama_sampler* chain = nullptr;
    std::string share_key;       // set when identical requests may join it
    // Its LoRA adapters (loaded) and their scales; `adapter_key` names the set ("": none).
    std::vector<llama_adapter_lora*> adapters;
    std::vector<float> scales;
    std::string adapter_key;
  };
  struct Slot {
    bool busy = false;
    std::vector<llama_token> cached;  // tokens whose KV this sequence id holds, by position
    std::string adapter_key;          // the adapters that KV was computed with
    uint64_t last_used = 0;
  };

  std::string path;
  EngineOptions options;
  llama_model* model = nullptr;
  llama_context* ctx = nullptr;
  const llama_vocab* vocab = nullptr;
  int n_vocab = 0;
  int n_ctx = 0;
  int n_ctx_seq = 0;
  std::vector<llama_token> eog;
  std::string chat_template;

  Mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Seq>> incoming FM_GUARDED_BY(mu);
  bool stopping FM_GUARDED_BY(mu) = false;
  std::atomic<int> unfinished{0};              // submitted, not yet finished
  std::thread loop;

  // Loop-thread state.
  std::deque<std::unique_ptr<Seq>> waiting;
  std::vector<std::unique_ptr<Seq>> active;
  std::vector<Slot> slots;
  uint64_t clock = 0;
  llama_batch batch{};
  std::vector<llama_token_data> candidates;

  // Running shareable sequences by request key (prompt tokens + sampling parameters).
  Mutex share_mu;
  std::unordered_map<std::string, std::weak_ptr<Generation>> shared FM_GUARDED_BY(share_mu);
  std::atomic<uint64_t> shared_hits{0};

  // LoRA adapters by path, loaded on first use; llama_model_free frees them.
  Mutex adapters_mu;
  std::unordered_map<std::string, llama_adapter_lora*> loaded_adapters FM_GUARDED_BY(adapters_mu);
  // Loop-thread: the adapter set the context has applied, and the last set a step decoded
  // (steps take turns between the sets of the running sequences).
  std::string applied_adapters;
  std::string last_step_adapters;

  Mutex embed_mu;
  llama_context* embed_ctx FM_GUARDED_BY(embed_mu) = nullptr;

  ~Impl() {
    {
      MutexLock lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (loop.joinable()) loop.join();
    if (batch.token) llama_batch_free(batch);
    if (embed_ctx) llama_free(embed_ctx);

    if (ctx) llama_free(ctx);
    if (model) llama_model_free(model);
  }

  // ---- loop ----

  void Loop();

  void DropCancelled();

  int Reserved() const;

  // KV cells held by idle slots (prefix cache).
  int IdleCached() const;

  void DropIdleCache(int slot_id);

  void Admit();

  void Release(Seq& s, bool keep_cache);

  void Finish(Seq& s, const std::string& reason, const std::string& error);

  void Step();

  // The adapter set the next step decodes: after `last_step_adapters` in order, among the
  // sets of the running sequences (each set gets its turn).
  std::string NextAdapterSet() const;

  // Loads (once) the adapters `params` names; InvalidArgument for a file that is not one.
  Status ResolveAdapters(const SamplingParams& params, Seq& seq);

  // Samples the next token of `s`; returns true when the sequence finished (reported).
  bool Sample(Seq& s);

  // Hands out complete characters that cannot still turn into a stop string.
  void Stream(Seq& s);

  llama_sampler* MakeChain(const SamplingParams& p);

  Result<std::vector<llama_token>> Tokenize(const std::string& text, bool add_special) const;
};

}  // namespace flowmesh::inference
