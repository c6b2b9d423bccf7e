#include "inference/engine.h"

#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/thread_annotations.h"

namespace flowmesh::inference {
namespace {

constexpr int kDefaultUnifiedCtx = 8192;
constexpr int kDefaultCtxPerSlot = 2048;
// With one KV stream per slot, reusing another slot's prefix copies that slot's whole
// stream: worth it only for a long enough prefix.
constexpr size_t kMinCopiedPrefix = 64;
constexpr std::chrono::milliseconds kIdlePoll(100);

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

// Length of the UTF-8 sequence a lead byte starts (0: not a lead byte).
int Utf8Length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 0;
}

// Bytes of `s` up to the last character that is complete (a trailing partial sequence,
// which the next token may finish, is held back).
size_t CompleteUtf8Prefix(const std::string& s, size_t from) {
  size_t end = s.size();
  for (size_t back = 1; back <= 4 && back <= end - from; ++back) {
    unsigned char c = static_cast<unsigned char>(s[end - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    int len = Utf8Length(c);
    if (len > static_cast<int>(back)) return end - back;
    break;
  }
  return end;
}

// Replaces every invalid UTF-8 sequence with U+FFFD, so the text is always valid JSON.
std::string SanitizeUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = Utf8Length(c);
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (ok && len > 1) {
      uint32_t cp = c & (0x7F >> len);
      for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
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
  };
  struct Slot {
    bool busy = false;
    std::vector<llama_token> cached;  // tokens whose KV this sequence id holds, by position
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

  void Loop() {
    for (;;) {
      {
        MutexLock lock(mu);
        lock.WaitFor(cv, kIdlePoll, [this]() FM_REQUIRES(mu) {
          return stopping || !incoming.empty() || !active.empty() || !waiting.empty();
        });
        if (stopping) break;
        while (!incoming.empty()) {
          waiting.push_back(std::move(incoming.front()));
          incoming.pop_front();
        }
      }
      DropCancelled();
      Admit();
      if (active.empty()) {
        if (!waiting.empty()) {
          MutexLock lock(mu);
          lock.WaitFor(cv, std::chrono::milliseconds(10));
        }
        continue;
      }
      Step();
    }
    for (auto& s : active) Finish(*s, "cancelled", "engine stopping");
    for (auto& s : waiting) Finish(*s, "cancelled", "engine stopping");
    MutexLock lock(mu);
    for (auto& s : incoming) Finish(*s, "cancelled", "engine stopping");
  }

  void DropCancelled() {
    for (auto it = waiting.begin(); it != waiting.end();) {
      if ((*it)->gen->cancel_.load()) {
        Finish(**it, "cancelled", "");
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
    for (size_t i = 0; i < active.size();) {
      if (active[i]->gen->cancel_.load()) {
        Finish(*active[i], "cancelled", "");
        Release(*active[i], /*keep_cache=*/true);
        active.erase(active.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
  }

  int Reserved() const {
    int total = 0;
    for (const auto& s : active) total += s->reserve;
    return total;
  }

  // KV cells held by idle slots (prefix cache).
  int IdleCached() const {
    int total = 0;
    for (const auto& slot : slots) {
      if (!slot.busy) total += static_cast<int>(slot.cached.size());
    }
    return total;
  }

  void DropIdleCache(int slot_id) {
    llama_memory_seq_rm(llama_get_memory(ctx), slot_id, -1, -1);
    slots[slot_id].cached.clear();
  }

  void Admit() {
    llama_memory_t mem = llama_get_memory(ctx);
    while (!waiting.empty()) {
      Seq& s = *waiting.front();
      bool unified = options.kv_unified;
      int reserved = Reserved();
      if (unified && !active.empty() && reserved + s.reserve > n_ctx) return;  // wait for room
      // Prefix reuse: the longest common prefix with any slot's cached tokens.
      int best_slot = -1;
      size_t best_len = 0;
      for (size_t i = 0; i < slots.size(); ++i) {
        const auto& c = slots[i].cached;
        size_t n = 0, limit = std::min(c.size(), s.prompt.size());
        while (n < limit && c[n] == s.prompt[n]) ++n;
        if (n > best_len || (n == best_len && n > 0 && !slots[i].busy && best_slot >= 0 &&
                             slots[best_slot].busy)) {
          best_len = n;
          best_slot = static_cast<int>(i);
        }
      }
      best_len = std::min(best_len, s.prompt.size() - 1);  // the last prompt token gives logits
      bool in_place = best_slot >= 0 && !slots[best_slot].busy;
      if (!unified && !in_place && best_len < kMinCopiedPrefix) best_len = 0;
      int free_slot = -1;
      if (best_slot >= 0 && best_len > 0 && !slots[best_slot].busy) {
        free_slot = best_slot;
      } else {
        for (size_t i = 0; i < slots.size(); ++i) {
          if (slots[i].busy) continue;
          if (free_slot < 0 || slots[i].cached.size() < slots[free_slot].cached.size() ||
              (slots[i].cached.size() == slots[free_slot].cached.size() &&
               slots[i].last_used < slots[free_slot].last_used)) {
            free_slot = static_cast<int>(i);
          }
        }
      }
      if (free_slot < 0) return;  // all slots busy
      // Make room in a shared buffer: forget idle prefixes (least recently used first).
      while (unified && reserved + s.reserve + IdleCached() > n_ctx) {
        int victim = -1;
        for (size_t i = 0; i < slots.size(); ++i) {
          if (slots[i].busy || slots[i].cached.empty()) continue;
          if (static_cast<int>(i) == best_slot && best_len > 0) continue;
          if (victim < 0 || slots[i].last_used < slots[victim].last_used) victim = static_cast<int>(i);
        }
        if (victim < 0) break;
        DropIdleCache(victim);
      }
      if (best_slot >= 0 && slots[best_slot].cached.size() < best_len) best_len = 0;
      Slot& slot = slots[free_slot];
      if (free_slot == best_slot) {
        if (!llama_memory_seq_rm(mem, free_slot, static_cast<llama_pos>(best_len), -1)) {
          DropIdleCache(free_slot);
          best_len = 0;
        }
        slot.cached.resize(std::min(slot.cached.size(), best_len));
      } else {
        DropIdleCache(free_slot);
        if (best_len > 0 && best_slot >= 0) {
          if (unified) {
            llama_memory_seq_cp(mem, best_slot, free_slot, 0, static_cast<llama_pos>(best_len));
          } else {
            // Streams copy whole (at the next decode); then drop what follows the prefix.
            llama_memory_seq_cp(mem, best_slot, free_slot, -1, -1);
            llama_memory_seq_rm(mem, free_slot, static_cast<llama_pos>(best_len), -1);
          }
          slot.cached.assign(s.prompt.begin(), s.prompt.begin() + static_cast<long>(best_len));
        } else {
          best_len = 0;
        }
      }
      slot.busy = true;
      slot.last_used = ++clock;
      s.slot = free_slot;
      s.prompt_fed = best_len;
      s.cached_prompt = static_cast<int>(best_len);
      active.push_back(std::move(waiting.front()));
      waiting.pop_front();
    }
  }

  void Release(Seq& s, bool keep_cache) {
    if (s.slot < 0) return;
    Slot& slot = slots[s.slot];
    slot.busy = false;
    slot.last_used = ++clock;
    if (!keep_cache) DropIdleCache(s.slot);
    s.slot = -1;
  }

  void Finish(Seq& s, const std::string& reason, const std::string& error) {
    if (s.chain) {
      llama_sampler_free(s.chain);
      s.chain = nullptr;
    }
    Completion c;
    c.text = SanitizeUtf8(s.bytes);
    c.finish_reason = reason;
    c.error = error;
    c.prompt_tokens = static_cast<int>(s.prompt.size());
    c.completion_tokens = static_cast<int>(s.out.size());
    c.cached_prompt_tokens = s.cached_prompt;
    c.tokens = s.out;
    c.logprobs = s.logprobs;
    unfinished.fetch_sub(1);  // before done: a waiter may look at free_slots() at once
    if (!s.share_key.empty()) {  // no request joins it from now on
      MutexLock lock(share_mu);
      auto it = shared.find(s.share_key);
      if (it != shared.end() && it->second.lock() == s.gen) shared.erase(it);
    }
    std::string delta;
    if (s.streamed < s.bytes.size()) delta = SanitizeUtf8(s.bytes.substr(s.streamed));
    s.streamed = s.bytes.size();
    s.gen->Publish(delta, &c);
  }

  void Step() {
    batch.n_tokens = 0;
    auto add = [this](llama_token t, llama_pos pos, llama_seq_id seq, bool logits) {
      int i = batch.n_tokens++;
      batch.token[i] = t;
      batch.pos[i] = pos;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = seq;
      batch.logits[i] = logits;
      return i;
    };
    int budget = options.n_batch;
    for (auto& s : active) {
      s->batch_index = -1;
      if (s->prompt_fed == s->prompt.size() && s->pending >= 0 && budget > 0) {
        s->batch_index = add(s->pending, static_cast<llama_pos>(slots[s->slot].cached.size()), s->slot, true);
        --budget;
      }
    }
    std::vector<std::pair<Seq*, size_t>> chunks;  // prompt tokens fed this step
    for (auto& s : active) {
      if (s->prompt_fed >= s->prompt.size() || budget <= 0) continue;
      size_t n = std::min<size_t>(s->prompt.size() - s->prompt_fed, static_cast<size_t>(budget));
      for (size_t k = 0; k < n; ++k) {
        size_t p = s->prompt_fed + k;
        bool last = p + 1 == s->prompt.size();
        int i = add(s->prompt[p], static_cast<llama_pos>(p), s->slot, last);
        if (last) s->batch_index = i;
      }
      chunks.emplace_back(s.get(), n);
      budget -= static_cast<int>(n);
    }
    if (batch.n_tokens == 0) return;

    int rc = llama_decode(ctx, batch);
    if (rc == 1 && IdleCached() > 0) {
      for (size_t i = 0; i < slots.size(); ++i) {
        if (!slots[i].busy) DropIdleCache(static_cast<int>(i));
      }
      rc = llama_decode(ctx, batch);
    }
    if (rc == 1) {
      // No KV room: end the longest sequence (length) and try again next step.
      auto longest = std::max_element(active.begin(), active.end(), [this](const auto& a, const auto& b) {
        return slots[a->slot].cached.size() < slots[b->slot].cached.size();
      });
      Finish(**longest, "length", "");
      Release(**longest, false);
      active.erase(longest);
      return;
    }
    if (rc != 0) {
      for (auto& s : active) {
        Finish(*s, "error", "llama_decode failed (" + std::to_string(rc) + ")");
        Release(*s, false);
      }
      active.clear();
      return;
    }
    // The batch is in the KV cache now.
    for (auto& s : active) {
      if (s->prompt_fed == s->prompt.size() && s->pending >= 0 && s->batch_index >= 0) {
        slots[s->slot].cached.push_back(s->pending);
        s->pending = -1;
      }
    }
    for (auto& [s, n] : chunks) {
      auto& cached = slots[s->slot].cached;
      cached.insert(cached.end(), s->prompt.begin() + static_cast<long>(s->prompt_fed),
                    s->prompt.begin() + static_cast<long>(s->prompt_fed + n));
      s->prompt_fed += n;
    }
    for (size_t i = 0; i < active.size();) {
      Seq& s = *active[i];
      bool finished = s.batch_index >= 0 && Sample(s);
      if (finished) {
        Release(s, true);
        active.erase(active.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
  }

  // Samples the next token of `s`; returns true when the sequence finished (reported).
  bool Sample(Seq& s) {
    const float* logits = llama_get_logits_ith(ctx, s.batch_index);
    if (!logits) {
      Finish(s, "error", "no logits for the sequence");
      return true;
    }
    candidates.resize(static_cast<size_t>(n_vocab));
    for (int t = 0; t < n_vocab; ++t) candidates[t] = {t, logits[t], 0.0f};
    bool may_stop = static_cast<int>(s.out.size()) >= s.params.min_tokens;
    if (!may_stop) {
      for (llama_token t : eog) candidates[t].logit = -std::numeric_limits<float>::infinity();
      for (int32_t t : s.params.stop_token_ids) {
        if (t >= 0 && t < n_vocab) candidates[t].logit = -std::numeric_limits<float>::infinity();
      }
    }
    llama_token_data_array arr{candidates.data(), candidates.size(), -1, false};
    llama_sampler_apply(s.chain, &arr);
    if (arr.selected < 0 || arr.selected >= static_cast<int64_t>(arr.size)) {
      Finish(s, "error", "sampler selected no token");
      return true;
    }
    llama_token token = arr.data[arr.selected].id;
    llama_sampler_accept(s.chain, token);
    s.out.push_back(token);
    if (s.params.logprobs) {
      float max = *std::max_element(logits, logits + n_vocab);
      double sum = 0;
      for (int t = 0; t < n_vocab; ++t) sum += std::exp(static_cast<double>(logits[t] - max));
      s.logprobs.push_back(static_cast<float>(logits[token] - max - std::log(sum)));
    }

    bool stop_id = std::find(s.params.stop_token_ids.begin(), s.params.stop_token_ids.end(), token) !=
                   s.params.stop_token_ids.end();
    if (stop_id || llama_vocab_is_eog(vocab, token)) {
      Finish(s, "stop", "");
      return true;
    }
    char piece[256];
    int n = llama_token_to_piece(vocab, token, piece, sizeof(piece), 0, false);
    if (n > 0) {
      size_t before = s.bytes.size();
      s.bytes.append(piece, static_cast<size_t>(n));
      for (const auto& stop : s.params.stop) {
        if (stop.empty()) continue;
        size_t from = before >= stop.size() ? before - stop.size() + 1 : 0;
        size_t at = s.bytes.find(stop, from);
        if (at != std::string::npos && static_cast<int>(s.out.size()) >= s.params.min_tokens) {
          s.bytes.resize(at);
          s.streamed = std::min(s.streamed, at);
          Finish(s, "stop", "");
          return true;
        }
      }
    }
    if (static_cast<int>(s.out.size()) >= s.params.max_tokens ||
        static_cast<int>(slots[s.slot].cached.size()) + 1 >= n_ctx_seq) {
      Finish(s, "length", "");
      return true;
    }
    s.pending = token;
    Stream(s);
    return false;
  }

  // Hands out complete characters that cannot still turn into a stop string.
  void Stream(Seq& s) {
    size_t end = CompleteUtf8Prefix(s.bytes, s.streamed);
    for (const auto& stop : s.params.stop) {
      for (size_t k = std::min(stop.size() - 1, s.bytes.size()); k > 0; --k) {
        if (s.bytes.compare(s.bytes.size() - k, k, stop, 0, k) == 0) {
          end = std::min(end, s.bytes.size() - k);
          break;
        }
      }
    }
    if (end <= s.streamed) return;
    std::string delta = SanitizeUtf8(s.bytes.substr(s.streamed, end - s.streamed));
    s.streamed = end;
    s.gen->Publish(delta, nullptr);
  }

  llama_sampler* MakeChain(const SamplingParams& p) {
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    llama_sampler* chain = llama_sampler_chain_init(cp);
    if (p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
      llama_sampler_chain_add(chain, llama_sampler_init_penalties(
                                         n_vocab, 64, p.repetition_penalty, p.frequency_penalty, p.presence_penalty));
    }
    if (p.temperature <= 0.0f) {
      llama_sampler_chain_add(chain, llama_sampler_init_greedy());
      return chain;
    }
    if (p.top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(p.top_k));
    if (p.top_p < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_top_p(p.top_p, 1));
    if (p.min_p > 0.0f) llama_sampler_chain_add(chain, llama_sampler_init_min_p(p.min_p, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(p.temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(p.seed));
    return chain;
  }

  Result<std::vector<llama_token>> Tokenize(const std::string& text, bool add_special) const {
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
};

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
  auto seq = std::make_unique<Impl::Seq>();
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

Result<std::vector<std::vector<float>>> Engine::Embed(const std::vector<std::string>& texts) {
  Impl& e = *impl_;
  MutexLock lock(e.embed_mu);
  int n_ctx = std::min(4096, std::max(64, llama_model_n_ctx_train(e.model)));
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
