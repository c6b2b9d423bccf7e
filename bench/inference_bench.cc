// bench/run.sh inference (engine part): the executor's batched decode on one model, in
// the shape llama-batched-bench measures (npl sequences of npp prompt tokens, ntg new
// tokens each). Prints key=value lines.
//   inference_bench MODEL NPP NTG NPL THREADS [ROUNDS]
// Like one llama-batched-bench run: a short warm-up, then ROUNDS (default 1) measured
// batches; the fastest is reported. bench/inference.sh gives both the same repetitions.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "inference/engine.h"

using flowmesh::inference::Engine;
using flowmesh::inference::EngineOptions;
using flowmesh::inference::SamplingParams;

namespace {

// A prompt of exactly n tokens for gguf-gen's vocabulary: BOS, then single-letter words
// (each one token "▁x"); `salt` makes the first word differ between sequences.
std::string Prompt(int n, int salt) {
  std::string text;
  unsigned state = 12345u + static_cast<unsigned>(salt) * 7919u;
  for (int i = 0; i < n - 1; ++i) {
    state = state * 1103515245u + 12345u;
    char c = static_cast<char>('a' + (i == 0 ? salt % 26 : (state >> 16) % 26));
    if (i) text += ' ';
    text += c;
  }
  return text;
}

double RunBatch(Engine& engine, int npp, int ntg, int npl, int salt, int* prompt_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = ntg;
  p.min_tokens = ntg;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<flowmesh::inference::Generation>> gens;
  for (int i = 0; i < npl; ++i) gens.push_back(*engine.Submit(Prompt(npp, salt + i), p));
  for (auto& g : gens) {
    while (!g->WaitFor(std::chrono::seconds(60))) {
    }
    auto c = g->completion();
    if (c.completion_tokens != ntg) std::fprintf(stderr, "short generation: %d\n", c.completion_tokens);
    *prompt_tokens = c.prompt_tokens;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6 && argc != 7) {
    std::fprintf(stderr, "usage: %s MODEL NPP NTG NPL THREADS [ROUNDS]\n", argv[0]);
    return 2;
  }
  int npp = std::atoi(argv[2]), ntg = std::atoi(argv[3]), npl = std::atoi(argv[4]);
  int rounds = argc == 7 ? std::max(1, std::atoi(argv[6])) : 1;
  EngineOptions options;
  options.n_seq = npl;
  options.n_ctx = 4096;
  options.threads = std::atoi(argv[5]);
  auto engine = Engine::Load(argv[1], options);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  int prompt_tokens = 0;
  RunBatch(**engine, 16, 4, npl, 1000, &prompt_tokens);  // warm-up
  // Distinct prompts each round: no prefix reuse from the previous round.
  double best = 1e9;
  for (int round = 0; round < rounds; ++round) {
    double t = RunBatch(**engine, npp, ntg, npl, round * npl, &prompt_tokens);
    best = std::min(best, t);
  }
  double speed = static_cast<double>(npl) * (npp + ntg) / best;
  std::printf("engine_rounds=%d\n", rounds);
  std::printf("engine_prompt_tokens=%d\nengine_batch_seconds=%.3f\nengine_tokens_per_s=%.2f\n", prompt_tokens, best,
              speed);
  return 0;
}
