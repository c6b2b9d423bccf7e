// An embedded vector index: exact search below a size threshold, an HNSW graph (hnswlib,
// Debian's libhnswlib-dev) above it, over float32 vectors of one dimension. Pure: no I/O
// except Save/Load; built once, then read-only and safe to search from many threads.
//
// Scores are similarities, higher is closer: cosine (vectors normalised at build and
// query), inner product, or the negated squared L2 distance.
//
// With one build thread the same input builds the same graph; with several, insertion
// order (and so the graph) may differ between builds, the hits' quality does not.
//
// Memory: above the exact threshold the graph holds the only copy of the (normalised)
// vectors, next to each node's base-layer links; below it a plain row-major array does.
//
// Filters: a predicate over ids. When it admits few enough ids (at most
// `exact_filtered_below`) the search is exact over just those; otherwise the graph is
// searched with an over-fetch and the predicate applied, falling back to exact search when
// the over-fetch finds fewer than k admitted ids. Either way the hits are the best admitted
// ones the method can see, never ids the filter refuses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::vector {

enum class Metric { kCosine, kInnerProduct, kL2 };

// "cosine" | "ip" | "l2" (also "dot", "inner_product", "euclid"); InvalidArgument else.
Result<Metric> ParseMetric(std::string_view name);
std::string_view MetricName(Metric metric);

struct IndexOptions {
  Metric metric = Metric::kCosine;
  size_t exact_below = 20000;          // fewer vectors: no graph, exact search only
  size_t exact_filtered_below = 20000;  // a filter admitting at most this many: exact
  // Measured by `bench/run.sh rag KEY=VALUE` on 100,000 embedding-shaped 384-dim vectors
  // (README): M 8-32 and ef_construction 60-200 all reach recall 0.97-0.99 at ef_search
  // 16-32; ef_construction above 100 only slows the build (2-3x at 200). ef_search 32:
  // recall 0.99 there, margin for collections harder than that set.
  int m = 16;                          // HNSW links per node (2m in the base layer)
  int ef_construction = 100;
  int ef_search = 32;                  // breadth of a graph search (k when larger); a
                                       // Search call may ask for another
  uint64_t seed = 42;                  // HNSW levels
  int build_threads = 0;               // graph insertion threads; 0: the hardware's
};

struct SearchHit {
  uint32_t id = 0;  // row of the vector at build
  float score = 0;
};

using IdFilter = std::function<bool(uint32_t id)>;

class VectorIndex {
 public:
  // `vectors` row-major, rows = vectors.size() / dim. InvalidArgument for dim 0, a size
  // that is not a multiple of dim, or non-finite values (and zero vectors under cosine).
  static Result<std::unique_ptr<VectorIndex>> Build(size_t dim, std::vector<float> vectors,
                                                    const IndexOptions& options = {});
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // The k best hits, best first (ties by lower id). `ef_search` > 0 sets this call's
  // breadth of graph search (more: better recall, slower); 0 takes the index's default.
  // Safe to call concurrently with different ef_search values.
  Result<std::vector<SearchHit>> Search(std::span<const float> query, size_t k,
                                        const IdFilter& filter = nullptr,
                                        int ef_search = 0) const;
  // Exact search, whatever the size (the reference the graph is measured against).
  Result<std::vector<SearchHit>> SearchExact(std::span<const float> query, size_t k,
                                             const IdFilter& filter = nullptr) const;

  // One self-describing file: header, vectors, and the graph when there is one.
  Status Save(const std::string& path) const;
  static Result<std::unique_ptr<VectorIndex>> Load(const std::string& path);

  size_t dim() const { return dim_; }
  size_t size() const { return rows_; }
  bool has_graph() const;
  Metric metric() const { return options_.metric; }
  int ef_search() const { return options_.ef_search; }
  // Bytes held in memory: the vectors, the graph's links and hnswlib's per-node
  // bookkeeping (levels, a fixed lock table); not the per-thread visited lists of search.
  size_t MemoryBytes() const;

 private:
  struct Graph;
  VectorIndex(size_t dim, std::vector<float> vectors, IndexOptions options);
  Status Validate(std::span<const float> query) const;
  std::vector<float> Prepared(std::span<const float> query) const;
  float Score(const float* a, const float* b) const;
  // After build or load: drop what only insertion needs and the duplicate vectors.
  void Seal();

  size_t dim_;
  size_t rows_;
  std::vector<float> vectors_;  // normalised under cosine; empty with a graph
  IndexOptions options_;
  std::unique_ptr<Graph> graph_;
};

}  // namespace flowmesh::vector
