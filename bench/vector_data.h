// The generated vectors of the rag bench (shared by vector_bench.cc and the faiss
// comparison).
//
// Topics: the main set, shaped like sentence embeddings. Real embeddings of a corpus have
// a low intrinsic dimension (tens, not their 384) and cluster by topic, so here each vector
// is a point of a low-dimensional latent space (a topic's centre plus a spread around it),
// mapped to `dim` dimensions by one fixed random linear map, plus a little isotropic noise
// (the part of an embedding no topic explains). Queries come from the same distribution
// (new draws, not copies of stored vectors). The bench estimates and prints the intrinsic
// dimension it measures, so the reader can judge the shape.
//
// Mixture: the hard set. Random centres with unit-variance noise as large as the centres
// themselves: in 384 dimensions nearly isotropic Gaussian vectors with no low-dimensional
// structure (the two-NN estimate reads ~57 here, against ~21 for Topics), the worst case
// of every graph index (kept as the `hard_` run).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace flowmesh::bench {

struct Topics {
  size_t dim;
  size_t latent;
  float spread;                // a vector's distance from its topic centre, per latent axis
  float noise;                 // isotropic noise per output axis (latent signal ~1 per axis)
  std::vector<float> map;      // dim x latent, entries N(0, 1/latent)
  std::vector<float> centres;  // topics x latent, entries N(0, 1)

  Topics(size_t dim_, size_t latent_, size_t topics, float spread_, float noise_, uint64_t seed)
      : dim(dim_), latent(latent_), spread(spread_), noise(noise_), map(dim_ * latent_),
        centres(topics * latent_) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    float scale = 1.0f / std::sqrt(static_cast<float>(latent));
    for (float& v : map) v = g(rng) * scale;
    for (float& v : centres) v = g(rng);
  }
  std::vector<float> Draw(size_t n, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_int_distribution<size_t> pick(0, centres.size() / latent - 1);
    std::vector<float> out(n * dim);
    std::vector<float> z(latent);
    for (size_t i = 0; i < n; ++i) {
      const float* c = centres.data() + pick(rng) * latent;
      for (size_t j = 0; j < latent; ++j) z[j] = c[j] + spread * g(rng);
      float* x = out.data() + i * dim;
      for (size_t d = 0; d < dim; ++d) {
        const float* row = map.data() + d * latent;
        float v = 0;
        for (size_t j = 0; j < latent; ++j) v += row[j] * z[j];
        x[d] = v + noise * g(rng);
      }
    }
    return out;
  }
};

// `clusters` random centres (unit normal coordinates) with unit-variance noise around them.
struct Mixture {
  size_t dim;
  std::vector<float> centres;
  Mixture(size_t dim_, size_t clusters, uint64_t seed) : dim(dim_), centres(clusters * dim_) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (float& v : centres) v = g(rng);
  }
  std::vector<float> Draw(size_t n, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::uniform_int_distribution<size_t> pick(0, centres.size() / dim - 1);
    std::vector<float> out(n * dim);
    for (size_t i = 0; i < n; ++i) {
      const float* c = centres.data() + pick(rng) * dim;
      for (size_t d = 0; d < dim; ++d) out[i * dim + d] = c[d] + noise(rng);
    }
    return out;
  }
};

}  // namespace flowmesh::bench
