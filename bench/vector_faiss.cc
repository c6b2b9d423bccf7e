// The same measurement as vector_bench.cc with faiss (Debian's libfaiss-dev) instead of
// the embedded hnswlib index: the comparison behind our choice (docs/executors/rag.md).
// On the hard set only (vector_data.h's Mixture: vector_bench's hard_ keys), with faiss's
// defaults as they were when hnswlib was chosen (M 16, efConstruction 200).
// Built and run by `bench/run.sh rag-faiss` only where libfaiss-dev is installed; faiss is
// not a dependency of FlowMesh.
//
//   vector_faiss [N=100000] [DIM=384] [QUERIES=1000] [EF=64]
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include "vector_data.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void Normalise(std::vector<float>& v, size_t dim) {
  for (size_t i = 0; i * dim < v.size(); ++i) {
    double n = 0;
    for (size_t d = 0; d < dim; ++d) n += double(v[i * dim + d]) * v[i * dim + d];
    float inv = static_cast<float>(1.0 / std::sqrt(n));
    for (size_t d = 0; d < dim; ++d) v[i * dim + d] *= inv;
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  size_t dim = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 384;
  size_t queries = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1000;
  int ef = argc > 4 ? std::atoi(argv[4]) : 64;
  const int k = 10;
  flowmesh::bench::Mixture mixture(dim, 10000, 7);
  std::vector<float> data = mixture.Draw(n, 11);
  std::vector<float> probe = mixture.Draw(queries, 13);
  Normalise(data, dim);  // cosine as inner product on unit vectors, as ours does
  Normalise(probe, dim);

  faiss::IndexFlatIP exact(static_cast<int>(dim));
  exact.add(static_cast<faiss::Index::idx_t>(n), data.data());
  faiss::IndexHNSWFlat hnsw(static_cast<int>(dim), 16, faiss::METRIC_INNER_PRODUCT);
  hnsw.hnsw.efConstruction = 200;
  auto start = Clock::now();
  hnsw.add(static_cast<faiss::Index::idx_t>(n), data.data());  // OpenMP: all cores, as ours
  double build_s = Seconds(start);
  hnsw.hnsw.efSearch = ef;

  omp_set_num_threads(1);  // single-thread queries, one at a time, as ours are measured
  std::vector<float> dist(k);
  std::vector<faiss::Index::idx_t> ids(k);
  std::vector<std::vector<faiss::Index::idx_t>> truth(queries);
  start = Clock::now();
  for (size_t q = 0; q < queries; ++q) {
    exact.search(1, probe.data() + q * dim, k, dist.data(), ids.data());
    truth[q] = ids;
  }
  double exact_s = Seconds(start);
  size_t found = 0;
  start = Clock::now();
  for (size_t q = 0; q < queries; ++q) {
    hnsw.search(1, probe.data() + q * dim, k, dist.data(), ids.data());
    std::unordered_set<faiss::Index::idx_t> want(truth[q].begin(), truth[q].end());
    for (auto id : ids) found += want.count(id);
  }
  double graph_s = Seconds(start);
  // Vectors plus HNSW links (neighbors are int32 per slot).
  double bytes = double(n) * dim * sizeof(float) + double(hnsw.hnsw.neighbors.size()) * 4 +
                 double(hnsw.hnsw.offsets.size()) * 8 + double(hnsw.hnsw.levels.size()) * 4;
  std::printf("faiss_build_sec=%.2f\n", build_s);
  std::printf("faiss_bytes_per_vector=%.0f\n", bytes / double(n));
  std::printf("faiss_recall_at_10=%.4f\n", double(found) / double(queries * k));
  std::printf("faiss_queries_per_sec=%.0f\n", double(queries) / graph_s);
  std::printf("faiss_exact_queries_per_sec=%.1f\n", double(queries) / exact_s);
  return 0;
}
