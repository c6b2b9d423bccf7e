#include "inference/engine.h"

#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/thread_annotations.h"
#include "inference/engine_impl.h"

namespace flowmesh::inference {
namespace {

void LlamaLog(ggml_log_level level, const char* text, void*) {
  std::string line(text);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.empty()) return;
  if (level == GGML_LOG_LEVEL_ERROR) {
    FM_LOG_WARN("llama.cpp: {}", line);
  } else {
    FM_LOG_DEBUG("llama.cpp: {}", line);
  }
}

Status CheckGgufHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("model file " + path + " does not exist or cannot be read");
  char magic[8] = {};
  in.read(magic, sizeof(magic));
  if (in.gcount() < 8 || std::memcmp(magic, "GGUF", 4) != 0) {
    return InvalidArgument("model file " + path + " is not a GGUF file (bad magic)");
  }
  return Status::Ok();
}

}  // namespace

using namespace engine_detail;  // NOLINT: the engine's private helpers

void InitLlama() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(LlamaLog, nullptr);
    llama_backend_init();
  });
}

Result<EngineOptions> EngineOptions::FromJson(const nlohmann::json& llamacpp) {
  EngineOptions o;
  if (llamacpp.is_null()) return o;
  if (!llamacpp.is_object()) return InvalidArgument("model.llamacpp must be an object");
  for (const auto& [key, value] : llamacpp.items()) {
    int* target = nullptr;
    if (key == "n_ctx") target = &o.n_ctx;
    else if (key == "n_seq" || key == "n_parallel" || key == "parallel") target = &o.n_seq;
    else if (key == "n_batch") target = &o.n_batch;
    else if (key == "n_ubatch") target = &o.n_ubatch;
    else if (key == "threads" || key == "n_threads") target = &o.threads;
    else if (key == "n_gpu_layers") target = &o.n_gpu_layers;
    if (key == "flash_attn" || key == "kv_unified") {
      if (!value.is_boolean()) return InvalidArgument("model.llamacpp." + key + " must be a boolean");
      (key == "flash_attn" ? o.flash_attn : o.kv_unified) = value.get<bool>();
      continue;
    }
    if (!target) {
      return InvalidArgument("model.llamacpp: unknown option '" + key +
                             "' (known: n_ctx, n_seq, n_batch, n_ubatch, threads, n_gpu_layers, flash_attn, kv_unified)");
    }
    if (!value.is_number_integer()) return InvalidArgument("model.llamacpp." + key + " must be an integer");
    *target = value.get<int>();
  }
  if (o.n_ctx < 0 || o.n_ctx > (1 << 20)) return InvalidArgument("model.llamacpp.n_ctx out of range");
  if (o.n_seq < 1 || o.n_seq > 256) return InvalidArgument("model.llamacpp.n_seq must be 1..256");
  if (o.n_batch < 1 || o.n_ubatch < 1) return InvalidArgument("model.llamacpp.n_batch/n_ubatch must be >= 1");
  if (o.threads < 0 || o.threads > 1024) return InvalidArgument("model.llamacpp.threads out of range");
  return o;
}

// The identity of a request for sharing: its prompt tokens and every sampling parameter.
static std::string ShareKey(const std::vector<llama_token>& tokens, const SamplingParams& p) {
  std::string key(reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(llama_token));
  auto add = [&key](const void* v, size_t n) { key.append(static_cast<const char*>(v), n); };
  for (float f : {p.temperature, p.top_p, p.min_p, p.repetition_penalty, p.presence_penalty,
                  p.frequency_penalty}) {
    add(&f, sizeof f);
  }
  for (int i : {p.top_k, p.max_tokens, p.min_tokens, p.logprobs ? 1 : 0}) add(&i, sizeof i);
  add(&p.seed, sizeof p.seed);
  for (const auto& stop : p.stop) {
    uint32_t n = static_cast<uint32_t>(stop.size());
    add(&n, sizeof n);
    key += stop;
  }
  key += '\0';
  for (int32_t id : p.stop_token_ids) add(&id, sizeof id);
  key += '\0';
  key += p.grammar;
  for (const auto& a : p.adapters) {
    key += '\0';
    key += a.path;
    add(&a.scale, sizeof a.scale);
  }
  return key;
}

// ---- Generation ----

bool Generation::WaitFor(std::chrono::milliseconds timeout) {
  MutexLock lock(mu_);
  return lock.WaitFor(cv_, timeout, [this]() FM_REQUIRES(mu_) { return done_; });
}

bool Generation::WaitForText(std::chrono::milliseconds timeout) {
  MutexLock lock(mu_);
  return lock.WaitFor(cv_, timeout, [this]() FM_REQUIRES(mu_) { return done_ || !delta_.empty(); });
}

bool Generation::done() const {
  MutexLock lock(mu_);
  return done_;
}

Completion Generation::completion() const {
  MutexLock lock(mu_);
  return completion_;
}

void Generation::Publish(const std::string& delta, const Completion* done) {
  std::vector<std::shared_ptr<Generation>> handles;
  {
    MutexLock lock(mu_);
    delta_ += delta;
    if (done != nullptr) {
      completion_ = *done;
      done_ = true;
      handles.swap(handles_);
    } else {
      handles = handles_;
    }
  }
  cv_.notify_all();
  for (auto& h : handles) {
    {
      MutexLock lock(h->mu_);
      if (h->done_) continue;  // detached (cancelled) by its submitter
      h->delta_ += delta;
      if (done != nullptr) {
        h->completion_ = *done;
        h->done_ = true;
      }
    }
    h->cv_.notify_all();
  }
}

std::string Generation::TakeDelta() {
  MutexLock lock(mu_);
  std::string out;
  out.swap(delta_);
  return out;
}

// ---- Engine ----

Result<std::vector<llama_token>> Engine::Impl::Tokenize(const std::string& text, bool add_special) const {
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
    return InvalidArgument("prompt too long");
  }
  std::vector<llama_token> tokens(text.size() + 8);
  int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                         static_cast<int32_t>(tokens.size()), add_special, /*parse_special=*/true);
  if (n < 0) {
    tokens.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), add_special, true);
  }
  if (n < 0) return InvalidArgument("cannot tokenize the prompt");
  tokens.resize(static_cast<size_t>(n));
  return tokens;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Load(const std::string& path, const EngineOptions& options) {
  InitLlama();
  FM_RETURN_IF_ERROR(CheckGgufHeader(path));
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = options.n_gpu_layers;
  impl->model = llama_model_load_from_file(path.c_str(), mp);
  if (!impl->model) {
    return InvalidArgument("cannot load model " + path +
                           ": corrupt, truncated or unsupported GGUF file (see the worker log)");
  }
  impl->vocab = llama_model_get_vocab(impl->model);
  impl->n_vocab = llama_vocab_n_tokens(impl->vocab);
  for (llama_token t = 0; t < impl->n_vocab; ++t) {
    if (llama_vocab_is_eog(impl->vocab, t)) impl->eog.push_back(t);
  }
  if (const char* tmpl = llama_model_chat_template(impl->model, nullptr)) impl->chat_template = tmpl;

  int threads = options.threads > 0 ? options.threads
                                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  llama_context_params cp = llama_context_default_params();
  int per_slot = std::min(kDefaultCtxPerSlot, std::max(256, llama_model_n_ctx_train(impl->model)));
  cp.n_ctx = static_cast<uint32_t>(options.n_ctx > 0      ? options.n_ctx
                                   : options.kv_unified ? kDefaultUnifiedCtx
                                                        : per_slot * options.n_seq);
  cp.n_seq_max = static_cast<uint32_t>(options.n_seq);
  cp.n_batch = static_cast<uint32_t>(options.n_batch);
  cp.n_ubatch = static_cast<uint32_t>(std::min(options.n_ubatch, options.n_batch));
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.kv_unified = options.kv_unified;
  cp.flash_attn_type = options.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.no_perf = true;
  impl->ctx = llama_init_from_model(impl->model, cp);
  if (!impl->ctx) return Status(StatusCode::kResourceExhausted, "cannot create a llama.cpp context for " + path);
  impl->n_ctx = static_cast<int>(llama_n_ctx(impl->ctx));
  impl->n_ctx_seq = std::min<int>(static_cast<int>(llama_n_ctx_seq(impl->ctx)),
                                  std::max(1, llama_model_n_ctx_train(impl->model)));
  impl->slots.resize(static_cast<size_t>(options.n_seq));
  impl->batch = llama_batch_init(options.n_batch, 0, 1);
  Impl* raw = impl.get();
  impl->loop = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<std::shared_ptr<Generation>> Engine::Submit(const std::string& prompt, const SamplingParams& params) {
  Impl& e = *impl_;
  // What a user may ask for is checked before this (spec/options.cc, via SamplingFromSpec);
  // these are the loop's own invariants (the KV reservation), for every caller.
  if (params.max_tokens < 1 || params.min_tokens < 0 || params.min_tokens > params.max_tokens) {
    return InvalidArgument(
        "sampling parameters need 0 <= min_tokens <= max_tokens, max_tokens >= 1");
  }
  if (!params.grammar.empty()) {
    llama_sampler* grammar = llama_sampler_init_grammar(e.vocab, params.grammar.c_str(), "root");
    if (!grammar) return InvalidArgument("the grammar does not parse (GBNF, start symbol root)");
    llama_sampler_free(grammar);
  }
  auto seq = std::make_unique<Impl::Seq>();
  FM_RETURN_IF_ERROR(e.ResolveAdapters(params, *seq));
  FM_ASSIGN_OR_RETURN(auto tokens, e.Tokenize(prompt, /*add_special=*/true));
  if (tokens.empty()) return InvalidArgument("the prompt is empty");
  if (static_cast<int>(tokens.size()) >= e.n_ctx_seq) {
    return InvalidArgument("prompt of " + std::to_string(tokens.size()) +
                           " tokens does not fit the context (" + std::to_string(e.n_ctx_seq) + ")");
  }
  // Greedy or seeded sampling gives the same tokens for the same prompt: such a request
  // identical to a running one (any task, workflow or tenant) joins it.
  bool shareable = params.share && (params.temperature <= 0.0f || params.seed != 0xFFFFFFFF);
  std::string share_key;
  if (shareable) {
    share_key = ShareKey(tokens, params);
    MutexLock lock(e.share_mu);
    auto it = e.shared.find(share_key);
    std::shared_ptr<Generation> running = it == e.shared.end() ? nullptr : it->second.lock();
    if (running && !running->cancel_.load()) {
      auto handle = std::make_shared<Generation>();
      handle->sequence_ = running;
      MutexLock g(running->mu_);
      if (!running->done_) {
        running->handles_.push_back(handle);
        e.shared_hits.fetch_add(1);
        return handle;
      }
    }
  }
  seq->gen = std::make_shared<Generation>();
  std::shared_ptr<Generation> first_handle;
  if (shareable) {
    seq->share_key = share_key;
    first_handle = std::make_shared<Generation>();
    first_handle->sequence_ = seq->gen;
    {
      MutexLock handles(seq->gen->mu_);  // not yet shared: taken for the analysis
      seq->gen->handles_.push_back(first_handle);
    }
    MutexLock lock(e.share_mu);
    e.shared[share_key] = seq->gen;
  }
  seq->params = params;
  seq->prompt = std::move(tokens);
  seq->reserve = std::min<int>(static_cast<int>(seq->prompt.size()) + params.max_tokens, e.n_ctx_seq);
  seq->chain = e.MakeChain(params);
  auto gen = first_handle ? first_handle : seq->gen;
  {
    MutexLock lock(e.mu);
    if (e.stopping) {
      if (shareable) {
        MutexLock g(e.share_mu);
        e.shared.erase(share_key);
      }
      return Unavailable("engine stopping");
    }
    e.incoming.push_back(std::move(seq));
    e.unfinished.fetch_add(1);
  }
  e.cv.notify_all();
  return gen;
}

Status Engine::Impl::ResolveAdapters(const SamplingParams& params, Seq& seq) {
  for (const auto& a : params.adapters) {
    if (!std::isfinite(a.scale)) return InvalidArgument("LoRA adapter scale must be finite: " + a.path);
    llama_adapter_lora* adapter = nullptr;
    {
      MutexLock lock(adapters_mu);
      auto it = loaded_adapters.find(a.path);
      if (it != loaded_adapters.end()) {
        adapter = it->second;
      } else {
        // llama.cpp reads the file and checks it against the model (architecture, tensor
        // shapes); it logs why it refuses one.
        adapter = llama_adapter_lora_init(model, a.path.c_str());
        if (!adapter) {
          return InvalidArgument("not a LoRA adapter (GGUF) for this model: " + a.path +
                                 " (wrong architecture or shapes, or not an adapter file)");
        }
        loaded_adapters.emplace(a.path, adapter);
      }
    }
    seq.adapters.push_back(adapter);
    seq.scales.push_back(a.scale);
    char scale[32];
    std::snprintf(scale, sizeof scale, "%.9g", static_cast<double>(a.scale));
    seq.adapter_key += a.path + "*" + scale + "\n";
  }
  return Status::Ok();
}

void Engine::Cancel(const std::shared_ptr<Generation>& generation) {
  if (auto seq = generation->sequence_.lock()) {
    // A handle on a shared sequence: detach it (it ends at once) while others still want
    // the sequence; the last one cancels the sequence itself.
    bool last = false;
    {
      MutexLock lock(seq->mu_);
      auto& hs = seq->handles_;
      // The last one stays attached and ends with the sequence, once its slot is free.
      last = hs.size() == 1 && hs[0] == generation && !seq->done_;
      if (!last) hs.erase(std::remove(hs.begin(), hs.end(), generation), hs.end());
    }
    if (last) {
      seq->cancel_.store(true);
      impl_->cv.notify_all();
      return;
    }
    {
      MutexLock lock(generation->mu_);
      if (!generation->done_) {
        generation->completion_.finish_reason = "cancelled";
        generation->done_ = true;
      }
    }
    generation->cv_.notify_all();
    return;
  }
  generation->cancel_.store(true);
  impl_->cv.notify_all();
}

uint64_t Engine::shared_hits() const { return impl_->shared_hits.load(); }

Result<std::string> Engine::ApplyChatTemplate(
    const std::vector<std::pair<std::string, std::string>>& messages) const {
  std::vector<llama_chat_message> chat;
  size_t total = 0;
  for (const auto& [role, content] : messages) {
    chat.push_back({role.c_str(), content.c_str()});
    total += role.size() + content.size();
  }
  const char* tmpl = impl_->chat_template.empty() ? "chatml" : impl_->chat_template.c_str();
  std::vector<char> buf(2 * total + 256);
  int n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), true, buf.data(),
                                    static_cast<int32_t>(buf.size()));
  if (n < 0 && !impl_->chat_template.empty()) {
    tmpl = "chatml";  // a template llama.cpp does not know: fall back to ChatML
    n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), true, buf.data(),
                                  static_cast<int32_t>(buf.size()));
  }
  if (n < 0) return InvalidArgument("cannot apply the chat template");
  if (n > static_cast<int>(buf.size())) {
    buf.resize(static_cast<size_t>(n));
    n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), true, buf.data(),
                                  static_cast<int32_t>(buf.size()));
  }
  return std::string(buf.data(), static_cast<size_t>(n));
}

int Engine::embed_tokens() const {
  return std::min(4096, std::max(64, llama_model_n_ctx_train(impl_->model)));
}

Result<std::vector<std::string>> Engine::TokenPieces(const std::string& text) const {
  const Impl& e = *impl_;
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
    return InvalidArgument("text too long to tokenize");
  }
  std::vector<llama_token> tokens(text.size() + 8);
  auto tokenize = [&] {
    return llama_tokenize(e.vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                          static_cast<int32_t>(tokens.size()), /*add_special=*/false,
                          /*parse_special=*/false);
  };
  int n = tokenize();
  if (n < 0) {
    tokens.resize(static_cast<size_t>(-n));
    n = tokenize();
  }
  if (n < 0) return InvalidArgument("cannot tokenize the text");
  std::vector<std::string> pieces;
  pieces.reserve(static_cast<size_t>(n));
  std::string piece(64, '\0');
  for (int i = 0; i < n; ++i) {
    int len = llama_token_to_piece(e.vocab, tokens[static_cast<size_t>(i)], piece.data(),
                                   static_cast<int32_t>(piece.size()), 0, /*special=*/false);
    if (len < 0) {
      piece.resize(static_cast<size_t>(-len));
      len = llama_token_to_piece(e.vocab, tokens[static_cast<size_t>(i)], piece.data(),
                                 static_cast<int32_t>(piece.size()), 0, false);
    }
    pieces.emplace_back(piece.data(), static_cast<size_t>(std::max(0, len)));
  }
  return pieces;
}

Result<std::vector<std::vector<float>>> Engine::Embed(const std::vector<std::string>& texts) {
  Impl& e = *impl_;
  MutexLock lock(e.embed_mu);
  int n_ctx = embed_tokens();
  if (!e.embed_ctx) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(n_ctx);
    cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(n_ctx);
    cp.n_seq_max = 1;
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
    int threads = e.options.threads > 0 ? e.options.threads
                                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    e.embed_ctx = llama_init_from_model(e.model, cp);
    if (!e.embed_ctx) return Status(StatusCode::kResourceExhausted, "cannot create an embedding context for " + e.path);
  }
  int n_embd = llama_model_n_embd(e.model);
  std::vector<std::vector<float>> out;
  for (const auto& text : texts) {
    FM_ASSIGN_OR_RETURN(auto tokens, e.Tokenize(text, true));
    if (tokens.empty()) return InvalidArgument("cannot embed an empty text");
    if (static_cast<int>(tokens.size()) > n_ctx) tokens.resize(static_cast<size_t>(n_ctx));
    llama_memory_clear(llama_get_memory(e.embed_ctx), true);
    llama_batch b = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
    for (size_t i = 0; i < tokens.size(); ++i) {
      b.token[i] = tokens[i];
      b.pos[i] = static_cast<llama_pos>(i);
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = 0;
      b.logits[i] = true;
    }
    b.n_tokens = static_cast<int32_t>(tokens.size());
    int rc = llama_decode(e.embed_ctx, b);
    llama_batch_free(b);
    if (rc != 0) return Internal("embedding decode failed (" + std::to_string(rc) + ")");
    const float* v = llama_get_embeddings_seq(e.embed_ctx, 0);
    if (!v) return Internal("no pooled embedding");
    std::vector<float> vec(v, v + n_embd);
    double norm = 0;
    for (float x : vec) norm += static_cast<double>(x) * x;
    norm = std::sqrt(norm);
    if (norm > 0) {
      for (float& x : vec) x = static_cast<float>(x / norm);
    }
    out.push_back(std::move(vec));
  }
  return out;
}

int Engine::slots() const { return impl_->options.n_seq; }

int Engine::free_slots() const { return std::max(0, impl_->options.n_seq - impl_->unfinished.load()); }

uint64_t Engine::memory_bytes() const {
  const Impl& e = *impl_;
  uint64_t heads = static_cast<uint64_t>(std::max(1, llama_model_n_head(e.model)));
  uint64_t kv_dim = static_cast<uint64_t>(llama_model_n_embd(e.model)) *
                    static_cast<uint64_t>(std::max(0, llama_model_n_head_kv(e.model))) / heads;
  uint64_t kv = static_cast<uint64_t>(e.n_ctx) * static_cast<uint64_t>(llama_model_n_layer(e.model)) * kv_dim * 2 * 2;
  return llama_model_size(e.model) + kv;
}

const std::string& Engine::path() const { return impl_->path; }

}  // namespace flowmesh::inference
