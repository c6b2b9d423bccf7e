// Sampling: each sequence's llama.cpp sampler chain, picking its next token (with
// logprobs, stop conditions) and streaming the text generated so far as valid UTF-8.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "inference/engine_impl.h"

namespace flowmesh::inference {
namespace engine_detail {
namespace {

// Length of the UTF-8 sequence a lead byte starts (0: not a lead byte).
int Utf8Length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 0;
}

}  // namespace

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

}  // namespace engine_detail

using namespace engine_detail;  // NOLINT: the engine's private helpers

bool Engine::Impl::Sample(Seq& s) {
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

void Engine::Impl::Stream(Seq& s) {
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

llama_sampler* Engine::Impl::MakeChain(const SamplingParams& p) {
  llama_sampler_chain_params cp = llama_sampler_chain_default_params();
  cp.no_perf = true;
  llama_sampler* chain = llama_sampler_chain_init(cp);
  // The grammar goes first: the samplers after it only choose among allowed tokens.
  if (!p.grammar.empty()) {
    llama_sampler_chain_add(chain, llama_sampler_init_grammar(vocab, p.grammar.c_str(), "root"));
  }
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

}  // namespace flowmesh::inference
