#include "vector/vector_index.h"

#include <hnswlib/hnswlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <queue>
#include <thread>

namespace flowmesh::vector {
namespace {

constexpr char kMagic[8] = {'F', 'M', 'V', 'E', 'C', 'I', 'D', '1'};

bool Better(const SearchHit& a, const SearchHit& b) {
  return a.score != b.score ? a.score > b.score : a.id < b.id;
}

// A temporary file removed on scope exit (hnswlib saves and loads by path).
class TempFile {
 public:
  TempFile() {
    char name[] = "/tmp/flowmesh-hnsw-XXXXXX";
    int fd = mkstemp(name);
    if (fd >= 0) {
      close(fd);
      path_ = name;
    }
  }
  ~TempFile() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

template <typename T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
bool Take(const std::string& in, size_t& pos, T* v) {
  if (in.size() - pos < sizeof *v) return false;
  std::memcpy(v, in.data() + pos, sizeof *v);
  pos += sizeof *v;
  return true;
}

}  // namespace

// The distance space (hnswlib's SIMD kernels, also used by exact search) and the graph
// (null below the exact threshold).
struct VectorIndex::Graph {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> alg;
  hnswlib::DISTFUNC<float> distance = nullptr;
  void* param = nullptr;

  Graph(Metric metric, size_t dim) {
    if (metric == Metric::kL2) {
      space = std::make_unique<hnswlib::L2Space>(dim);
    } else {
      space = std::make_unique<hnswlib::InnerProductSpace>(dim);
    }
    distance = space->get_dist_func();
    param = space->get_dist_func_param();
  }
};

Result<Metric> ParseMetric(std::string_view name) {
  if (name == "cosine") return Metric::kCosine;
  if (name == "ip" || name == "dot" || name == "inner_product") return Metric::kInnerProduct;
  if (name == "l2" || name == "euclid" || name == "euclidean") return Metric::kL2;
  return InvalidArgument("unknown metric '" + std::string(name) + "' (cosine, ip, l2)");
}

std::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kCosine: return "cosine";
    case Metric::kInnerProduct: return "ip";
    case Metric::kL2: return "l2";
  }
  return "cosine";
}

VectorIndex::VectorIndex(size_t dim, std::vector<float> vectors, IndexOptions options)
    : dim_(dim),
      rows_(vectors.size() / dim),
      vectors_(std::move(vectors)),
      options_(options),
      graph_(std::make_unique<Graph>(options.metric, dim)) {}

VectorIndex::~VectorIndex() = default;

bool VectorIndex::has_graph() const { return graph_->alg != nullptr; }

size_t VectorIndex::MemoryBytes() const {
  size_t bytes = vectors_.size() * sizeof(float);
  if (graph_->alg) {
    const auto& a = *graph_->alg;
    bytes += a.max_elements_ * a.size_data_per_element_;
    bytes += a.max_elements_ * sizeof(void*);
    for (size_t i = 0; i < a.cur_element_count; ++i) {
      if (a.element_levels_[i] > 0) bytes += a.size_links_per_element_ * a.element_levels_[i];
    }
  }
  return bytes;
}

Result<std::unique_ptr<VectorIndex>> VectorIndex::Build(size_t dim, std::vector<float> vectors,
                                                        const IndexOptions& options) {
  if (dim == 0) return InvalidArgument("vector dimension must be at least 1");
  if (vectors.size() % dim != 0) {
    return InvalidArgument(std::to_string(vectors.size()) + " values are not rows of dimension " +
                           std::to_string(dim));
  }
  if (vectors.size() / dim > std::numeric_limits<uint32_t>::max()) {
    return InvalidArgument("too many vectors for one index");
  }
  for (size_t row = 0; row * dim < vectors.size(); ++row) {
    float* v = vectors.data() + row * dim;
    double norm = 0;
    for (size_t i = 0; i < dim; ++i) {
      if (!std::isfinite(v[i])) {
        return InvalidArgument("vector " + std::to_string(row) + " has a non-finite value");
      }
      norm += double(v[i]) * v[i];
    }
    if (options.metric == Metric::kCosine) {
      if (norm == 0) return InvalidArgument("vector " + std::to_string(row) + " is zero (cosine)");
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (size_t i = 0; i < dim; ++i) v[i] *= inv;
    }
  }
  auto index = std::unique_ptr<VectorIndex>(new VectorIndex(dim, std::move(vectors), options));
  if (index->rows_ < options.exact_below || index->rows_ == 0) return index;

  Graph* graph = index->graph_.get();
  graph->alg = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      graph->space.get(), index->rows_, static_cast<size_t>(std::max(options.m, 2)),
      static_cast<size_t>(std::max(options.ef_construction, 1)), options.seed);
  int threads = options.build_threads > 0 ? options.build_threads
                                          : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(1, std::min<int>(threads, static_cast<int>(index->rows_ / 1000) + 1));
  // The first point alone: the entry point exists before parallel insertion starts.
  graph->alg->addPoint(index->vectors_.data(), 0);
  std::atomic<size_t> next{1};
  auto insert = [&] {
    for (size_t row = next++; row < index->rows_; row = next++) {
      graph->alg->addPoint(index->vectors_.data() + row * dim, row);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(insert);
  insert();
  for (auto& t : pool) t.join();
  graph->alg->setEf(static_cast<size_t>(std::max(options.ef_search, 1)));
  return index;
}

float VectorIndex::Score(const float* a, const float* b) const {
  // hnswlib's distances: 1 - dot (inner product spaces), squared L2.
  float d = graph_->distance(a, b, graph_->param);
  return options_.metric == Metric::kL2 ? -d : 1.0f - d;
}

Status VectorIndex::Validate(std::span<const float> query) const {
  if (query.size() != dim_) {
    return InvalidArgument("query has dimension " + std::to_string(query.size()) +
                           ", the index " + std::to_string(dim_));
  }
  for (float v : query) {
    if (!std::isfinite(v)) return InvalidArgument("query has a non-finite value");
  }
  return Status::Ok();
}

std::vector<float> VectorIndex::Prepared(std::span<const float> query) const {
  std::vector<float> q(query.begin(), query.end());
  if (options_.metric == Metric::kCosine) {
    double norm = 0;
    for (float v : q) norm += double(v) * v;
    if (norm > 0) {
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (float& v : q) v *= inv;
    }
  }
  return q;
}

Result<std::vector<SearchHit>> VectorIndex::SearchExact(std::span<const float> query, size_t k,
                                                        const IdFilter& filter) const {
  FM_RETURN_IF_ERROR(Validate(query));
  std::vector<float> q = Prepared(query);
  // A bounded min-heap of the best k seen.
  auto worse = [](const SearchHit& a, const SearchHit& b) { return Better(a, b); };
  std::priority_queue<SearchHit, std::vector<SearchHit>, decltype(worse)> best(worse);
  for (size_t row = 0; row < rows_ && k > 0; ++row) {
    uint32_t id = static_cast<uint32_t>(row);
    if (filter && !filter(id)) continue;
    SearchHit hit{id, Score(q.data(), vectors_.data() + row * dim_)};
    if (best.size() < k) {
      best.push(hit);
    } else if (Better(hit, best.top())) {
      best.pop();
      best.push(hit);
    }
  }
  std::vector<SearchHit> out;
  out.reserve(best.size());
  while (!best.empty()) {
    out.push_back(best.top());
    best.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<SearchHit>> VectorIndex::Search(std::span<const float> query, size_t k,
                                                   const IdFilter& filter) const {
  if (!graph_->alg) return SearchExact(query, k, filter);
  FM_RETURN_IF_ERROR(Validate(query));
  if (k == 0) return std::vector<SearchHit>{};
  size_t fetch = k;
  if (filter) {
    size_t admitted = 0;
    for (size_t row = 0; row < rows_ && admitted <= options_.exact_filtered_below; ++row) {
      admitted += filter(static_cast<uint32_t>(row)) ? 1 : 0;
    }
    if (admitted <= options_.exact_filtered_below) return SearchExact(query, k, filter);
    // Enough admitted ids that a graph search sees them; fetch more to make up for the rest.
    fetch = std::min(rows_, std::max<size_t>(k * rows_ / admitted * 2, k + 32));
  }
  std::vector<float> q = Prepared(query);
  auto found = graph_->alg->searchKnn(q.data(), std::min(fetch, rows_));
  std::vector<SearchHit> out;
  while (!found.empty()) {
    auto [distance, label] = found.top();
    found.pop();
    uint32_t id = static_cast<uint32_t>(label);
    if (filter && !filter(id)) continue;
    // hnswlib's distances: 1 - dot (inner product spaces), squared L2.
    float score = options_.metric == Metric::kL2 ? -distance : 1.0f - distance;
    out.push_back({id, score});
  }
  std::sort(out.begin(), out.end(), Better);
  if (filter && out.size() < k) return SearchExact(query, k, filter);
  if (out.size() > k) out.resize(k);
  return out;
}

Status VectorIndex::Save(const std::string& path) const {
  std::string out(kMagic, sizeof kMagic);
  Put<uint32_t>(out, static_cast<uint32_t>(options_.metric));
  Put<uint64_t>(out, dim_);
  Put<uint64_t>(out, rows_);
  Put<int32_t>(out, options_.ef_search);
  Put<uint64_t>(out, options_.exact_filtered_below);
  out.append(reinterpret_cast<const char*>(vectors_.data()), vectors_.size() * sizeof(float));
  std::string graph;
  if (graph_->alg) {
    TempFile tmp;
    if (tmp.path().empty()) return Internal("no temporary file for the index graph");
    graph_->alg->saveIndex(tmp.path());
    std::ifstream in(tmp.path(), std::ios::binary);
    graph.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  Put<uint64_t>(out, graph.size());
  out += graph;
  std::string partial = path + ".partial";
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    file.write(out.data(), static_cast<std::streamsize>(out.size()));
    if (!file) return Internal("cannot write " + partial);
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) return Internal("cannot rename " + partial);
  return Status::Ok();
}

Result<std::unique_ptr<VectorIndex>> VectorIndex::Load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return NotFound("no index file " + path);
  std::string in((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto bad = [&path](const std::string& what) { return InvalidArgument(path + ": " + what); };
  if (in.size() < sizeof kMagic || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0) {
    return bad("not a FlowMesh vector index");
  }
  size_t pos = sizeof kMagic;
  uint32_t metric = 0;
  uint64_t dim = 0, rows = 0, exact_filtered = 0, graph_bytes = 0;
  int32_t ef = 0;
  if (!Take(in, pos, &metric) || !Take(in, pos, &dim) || !Take(in, pos, &rows) ||
      !Take(in, pos, &ef) || !Take(in, pos, &exact_filtered)) {
    return bad("truncated header");
  }
  if (metric > 2 || dim == 0 || dim > (1 << 16) || rows > (uint64_t{1} << 32)) {
    return bad("header out of range");
  }
  size_t floats = dim * rows;
  if ((in.size() - pos) / sizeof(float) < floats) return bad("truncated vectors");
  std::vector<float> vectors(floats);
  std::memcpy(vectors.data(), in.data() + pos, floats * sizeof(float));
  pos += floats * sizeof(float);
  if (!Take(in, pos, &graph_bytes) || in.size() - pos != graph_bytes) return bad("truncated graph");
  IndexOptions options;
  options.metric = static_cast<Metric>(metric);
  options.ef_search = ef;
  options.exact_filtered_below = exact_filtered;
  auto index = std::unique_ptr<VectorIndex>(new VectorIndex(dim, std::move(vectors), options));
  if (graph_bytes > 0) {
    TempFile tmp;
    if (tmp.path().empty()) return Internal("no temporary file for the index graph");
    {
      std::ofstream out(tmp.path(), std::ios::binary);
      out.write(in.data() + pos, static_cast<std::streamsize>(graph_bytes));
    }
    Graph* graph = index->graph_.get();
    try {
      graph->alg = std::make_unique<hnswlib::HierarchicalNSW<float>>(graph->space.get(), tmp.path());
    } catch (const std::exception& e) {
      return bad(std::string("graph: ") + e.what());
    }
    if (graph->alg->cur_element_count != rows) return bad("graph and vectors disagree");
    graph->alg->setEf(static_cast<size_t>(std::max(ef, 1)));
  }
  return index;
}

}  // namespace flowmesh::vector
