// bench/run.sh rag (index part): builds the embedded vector index over generated vectors
// and measures it against exact search.
//
//   vector_bench [N=100000] [DIM=384] [QUERIES=1000] [EF=64]
//
// The vectors: a mixture of 10,000 Gaussian clusters (~10 vectors each; unit-variance
// noise around random centres, norm ratio ~1:1), the shape sentence embeddings have; uniform random vectors in
// 384 dimensions have no neighbourhood structure at all and say little about real
// collections. Queries come from the same mixture. Cosine similarity, k = 10.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include "vector/vector_index.h"
#include "vector_data.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  size_t dim = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 384;
  size_t queries = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1000;
  int ef = argc > 4 ? std::atoi(argv[4]) : 64;
  const size_t k = 10;
  flowmesh::bench::Mixture mixture(dim, 10000, 7);
  std::vector<float> data = mixture.Draw(n, 11);
  std::vector<float> probe = mixture.Draw(queries, 13);

  flowmesh::vector::IndexOptions options;
  options.ef_search = ef;
  auto start = Clock::now();
  auto index = flowmesh::vector::VectorIndex::Build(dim, data, options);
  double build_s = Seconds(start);
  if (!index.ok()) {
    std::fprintf(stderr, "build: %s\n", index.status().ToString().c_str());
    return 1;
  }
  // Exact answers first (also timed: the single-thread brute-force baseline).
  std::vector<std::vector<uint32_t>> truth(queries);
  start = Clock::now();
  for (size_t q = 0; q < queries; ++q) {
    auto hits = (*index)->SearchExact({probe.data() + q * dim, dim}, k);
    for (const auto& h : *hits) truth[q].push_back(h.id);
  }
  double exact_s = Seconds(start);
  size_t found = 0;
  start = Clock::now();
  for (size_t q = 0; q < queries; ++q) {
    auto hits = (*index)->Search({probe.data() + q * dim, dim}, k);
    std::unordered_set<uint32_t> want(truth[q].begin(), truth[q].end());
    for (const auto& h : *hits) found += want.count(h.id);
  }
  double graph_s = Seconds(start);
  std::printf("vectors=%zu\ndim=%zu\nqueries=%zu\nef_search=%d\n", n, dim, queries, ef);
  std::printf("index_graph=%d\n", (*index)->has_graph() ? 1 : 0);
  std::printf("build_sec=%.2f\n", build_s);
  std::printf("bytes_per_vector=%.0f\n", double((*index)->MemoryBytes()) / double(n));
  std::printf("recall_at_10=%.4f\n", double(found) / double(queries * k));
  std::printf("queries_per_sec=%.0f\n", double(queries) / graph_s);
  std::printf("exact_queries_per_sec=%.1f\n", double(queries) / exact_s);
  return 0;
}
