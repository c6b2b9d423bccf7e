// The generated vectors of the rag bench (shared by vector_bench.cc and the faiss
// comparison): a mixture of Gaussian clusters, the shape sentence embeddings have.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace flowmesh::bench {

// `clusters` random centres (unit normal coordinates) with unit-variance noise around them.
struct Mixture {
  size_t dim;
  std::vector<float> centres;
  Mixture(size_t dim, size_t clusters, uint64_t seed) : dim(dim), centres(clusters * dim) {
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
