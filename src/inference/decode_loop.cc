// The decode loop: one thread owns the llama_context; it admits waiting sequences into
// free slots (reusing cached prefixes), decodes every running sequence in one batch per
// step, and finishes, cancels and releases them.
#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>

#include "common/log.h"
#include "inference/engine_impl.h"

namespace flowmesh::inference {

using namespace engine_detail;  // NOLINT: the engine's private helpers

void Engine::Impl::Loop() {
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

void Engine::Impl::DropCancelled() {
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

int Engine::Impl::Reserved() const {
  int total = 0;
  for (const auto& s : active) total += s->reserve;
  return total;
}

int Engine::Impl::IdleCached() const {
  int total = 0;
  for (const auto& slot : slots) {
    if (!slot.busy) total += static_cast<int>(slot.cached.size());
  }
  return total;
}

void Engine::Impl::DropIdleCache(int slot_id) {
  llama_memory_seq_rm(llama_get_memory(ctx), slot_id, -1, -1);
  slots[slot_id].cached.clear();
}

void Engine::Impl::Admit() {
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
      if (slots[i].adapter_key != s.adapter_key) continue;  // KV of other weights
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
    slot.adapter_key = s.adapter_key;
    slot.last_used = ++clock;
    s.slot = free_slot;
    s.prompt_fed = best_len;
    s.cached_prompt = static_cast<int>(best_len);
    active.push_back(std::move(waiting.front()));
    waiting.pop_front();
  }
}

void Engine::Impl::Release(Seq& s, bool keep_cache) {
  if (s.slot < 0) return;
  Slot& slot = slots[s.slot];
  slot.busy = false;
  slot.last_used = ++clock;
  if (!keep_cache) DropIdleCache(s.slot);
  s.slot = -1;
}

void Engine::Impl::Finish(Seq& s, const std::string& reason, const std::string& error) {
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

std::string Engine::Impl::NextAdapterSet() const {
  // The smallest set after the last one decoded, else the smallest: every set in turn.
  const std::string* first = nullptr;
  const std::string* next = nullptr;
  for (const auto& s : active) {
    const std::string& k = s->adapter_key;
    if (!first || k < *first) first = &k;
    if (k > last_step_adapters && (!next || k < *next)) next = &k;
  }
  return next ? *next : first ? *first : std::string();
}

void Engine::Impl::Step() {
  // Sequences with other LoRA adapters need other weights: one set per step.
  const std::string set = NextAdapterSet();
  last_step_adapters = set;
  if (set != applied_adapters) {
    for (auto& s : active) {
      if (s->adapter_key != set) continue;
      llama_set_adapters_lora(ctx, s->adapters.empty() ? nullptr : s->adapters.data(), s->adapters.size(),
                              s->scales.empty() ? nullptr : s->scales.data());
      applied_adapters = set;
      break;
    }
  }
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
    if (s->adapter_key != set) continue;
    if (s->prompt_fed == s->prompt.size() && s->pending >= 0 && budget > 0) {
      s->batch_index = add(s->pending, static_cast<llama_pos>(slots[s->slot].cached.size()), s->slot, true);
      --budget;
    }
  }
  std::vector<std::pair<Seq*, size_t>> chunks;  // prompt tokens fed this step
  for (auto& s : active) {
    if (s->adapter_key != set || s->prompt_fed >= s->prompt.size() || budget <= 0) continue;
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

}  // namespace flowmesh::inference
