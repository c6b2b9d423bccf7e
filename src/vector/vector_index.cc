#include "vector/vector_index.h"

#include <hnswlib/hnswlib.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>

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

// Distances as hnswlib defines them (its graph is built with its own kernels): 1 - dot in
// the inner-product spaces, squared L2. Ours, for search and exact search: four independent
// FMA accumulators where hnswlib's AVX kernel chains every add through one (~3x faster on
// vectors already in cache).
#if defined(__AVX2__) && defined(__FMA__)
float Sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float IpDistance(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= dim; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  float dot = Sum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < dim; ++i) dot += a[i] * b[i];
  return 1.0f - dot;
}

float L2Distance(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  auto step = [&](__m256& acc, size_t at) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + at), _mm256_loadu_ps(b + at));
    acc = _mm256_fmadd_ps(d, d, acc);
  };
  for (; i + 32 <= dim; i += 32) {
    step(s0, i);
    step(s1, i + 8);
    step(s2, i + 16);
    step(s3, i + 24);
  }
  for (; i + 8 <= dim; i += 8) step(s0, i);
  float sum = Sum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < dim; ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return sum;
}
#else
float IpDistance(const float* a, const float* b, size_t dim) {
  float dot = 0;
  for (size_t i = 0; i < dim; ++i) dot += a[i] * b[i];
  return 1.0f - dot;
}

float L2Distance(const float* a, const float* b, size_t dim) {
  float sum = 0;
  for (size_t i = 0; i < dim; ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return sum;
}
#endif

// Asks for all of a vector's cache lines at once: a graph search reads vectors at random
// places, and one line at a time each read would wait out a full memory latency.
inline void Prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}

}  // namespace

// The distance space (hnswlib's, for building the graph) and the graph (null below the
// exact threshold).
struct VectorIndex::Graph {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> alg;
  float (*distance)(const float*, const float*, size_t) = nullptr;

  Graph(Metric metric, size_t dim) {
    if (metric == Metric::kL2) {
      space = std::make_unique<hnswlib::L2Space>(dim);
      distance = L2Distance;
    } else {
      space = std::make_unique<hnswlib::InnerProductSpace>(dim);
      distance = IpDistance;
    }
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
  size_t bytes = vectors_.capacity() * sizeof(float);
  if (graph_->alg) {
    const auto& a = *graph_->alg;
    // Base layer (links, vector, label per node), upper-layer pointers and levels.
    bytes += a.max_elements_ * a.size_data_per_element_;
    bytes += a.max_elements_ * sizeof(void*);
    bytes += a.element_levels_.capacity() * sizeof(int);
    for (size_t i = 0; i < a.cur_element_count; ++i) {
      if (a.element_levels_[i] > 0) bytes += a.size_links_per_element_ * a.element_levels_[i];
    }
    // What Seal leaves of hnswlib's insertion bookkeeping (a fixed table of locks).
    bytes += a.link_list_locks_.capacity() * sizeof(std::mutex);
    bytes += a.link_list_update_locks_.capacity() * sizeof(std::mutex);
    bytes += a.label_lookup_.size() * (sizeof(void*) * 2 + sizeof(hnswlib::labeltype) +
                                       sizeof(hnswlib::tableint)) +
             a.label_lookup_.bucket_count() * sizeof(void*);
  }
  return bytes;
}

void VectorIndex::Seal() {
  if (!graph_->alg) return;
  auto& a = *graph_->alg;
  // The graph keeps its own copy of every vector: ours would double the memory.
  std::vector<float>().swap(vectors_);
  // Only insertion and label lookups use these (~80 bytes a node); the index is read-only
  // from here, and searches go by node, labels read from the node itself.
  std::vector<std::mutex>().swap(a.link_list_locks_);
  std::unordered_map<hnswlib::labeltype, hnswlib::tableint>().swap(a.label_lookup_);
  a.element_levels_.shrink_to_fit();
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
  index->Seal();
  return index;
}

float VectorIndex::Score(const float* a, const float* b) const {
  // hnswlib's distances: 1 - dot (inner product spaces), squared L2.
  float d = graph_->distance(a, b, dim_);
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
  auto consider = [&](uint32_t id, const float* v) {
    if (filter && !filter(id)) return;
    SearchHit hit{id, Score(q.data(), v)};
    if (best.size() < k) {
      best.push(hit);
    } else if (Better(hit, best.top())) {
      best.pop();
      best.push(hit);
    }
  };
  const auto* a = graph_->alg.get();
  if (k > 0 && a) {
    // The vectors live in the graph's nodes (in insertion order, each with its row).
    for (size_t node = 0; node < a->cur_element_count; ++node) {
      auto t = static_cast<hnswlib::tableint>(node);
      consider(static_cast<uint32_t>(a->getExternalLabel(t)),
               reinterpret_cast<const float*>(a->getDataByInternalId(t)));
    }
  } else if (k > 0) {
    for (size_t row = 0; row < rows_; ++row) {
      consider(static_cast<uint32_t>(row), vectors_.data() + row * dim_);
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
                                                   const IdFilter& filter, int ef_search) const {
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
  fetch = std::min(fetch, rows_);
  std::vector<float> q = Prepared(query);
  // hnswlib's searchKnn, with this call's breadth instead of the shared ef_ (setEf would
  // race with concurrent searches), our distance kernel and whole-vector prefetches: a
  // greedy descent through the upper layers, then a best-first search of breadth ef in
  // the base layer.
  const auto& a = *graph_->alg;
  const auto distance = graph_->distance;
  const size_t dim = dim_, vector_bytes = dim_ * sizeof(float);
  auto vec = [&a](hnswlib::tableint node) {
    return reinterpret_cast<const float*>(a.getDataByInternalId(node));
  };
  size_t ef = std::max<size_t>(ef_search > 0 ? ef_search : std::max(options_.ef_search, 1), fetch);
  hnswlib::tableint node = a.enterpoint_node_;
  float nearest = distance(q.data(), vec(node), dim);
  for (int level = a.maxlevel_; level > 0; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      const hnswlib::linklistsizeint* list = a.get_linklist(node, level);
      size_t count = a.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
      const auto* links = reinterpret_cast<const hnswlib::tableint*>(list + 1);
      for (size_t i = 0; i < count; ++i) {
        float d = distance(q.data(), vec(links[i]), dim);
        if (d < nearest) {
          nearest = d;
          node = links[i];
          moved = true;
        }
      }
    }
  }
  using Scored = std::pair<float, hnswlib::tableint>;
  std::priority_queue<Scored> found;  // the best ef so far, worst on top
  std::priority_queue<Scored, std::vector<Scored>, std::greater<Scored>> frontier;
  hnswlib::VisitedList* visited_list = a.visited_list_pool_->getFreeVisitedList();
  hnswlib::vl_type* visited = visited_list->mass;
  const hnswlib::vl_type tag = visited_list->curV;
  std::vector<hnswlib::tableint> fresh(a.maxM0_);
  visited[node] = tag;
  found.emplace(nearest, node);
  frontier.emplace(nearest, node);
  while (!frontier.empty()) {
    auto [d_node, next] = frontier.top();
    if (d_node > found.top().first && found.size() >= ef) break;
    frontier.pop();
    const hnswlib::linklistsizeint* list = a.get_linklist0(next);
    size_t count = a.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
    const auto* links = reinterpret_cast<const hnswlib::tableint*>(list + 1);
    size_t unseen = 0;
    for (size_t i = 0; i < count; ++i) {
      if (visited[links[i]] != tag) {
        visited[links[i]] = tag;
        fresh[unseen++] = links[i];
      }
    }
    // Two vectors in flight ahead of the one being scored.
    constexpr size_t kAhead = 2;
    for (size_t i = 0; i < std::min(unseen, kAhead); ++i) Prefetch(vec(fresh[i]), vector_bytes);
    for (size_t i = 0; i < unseen; ++i) {
      if (i + kAhead < unseen) Prefetch(vec(fresh[i + kAhead]), vector_bytes);
      float d = distance(q.data(), vec(fresh[i]), dim);
      if (found.size() < ef || d < found.top().first) {
        frontier.emplace(d, fresh[i]);
        found.emplace(d, fresh[i]);
        if (found.size() > ef) found.pop();
      }
    }
    // The next node to expand: its links (the vector follows them in the node).
    if (!frontier.empty()) Prefetch(a.get_linklist0(frontier.top().second), a.size_links_level0_);
  }
  a.visited_list_pool_->releaseVisitedList(visited_list);
  std::vector<SearchHit> out;
  out.reserve(found.size());
  for (; !found.empty(); found.pop()) {
    auto [dist, t] = found.top();
    uint32_t id = static_cast<uint32_t>(a.getExternalLabel(t));
    if (filter && !filter(id)) continue;
    // hnswlib's distances: 1 - dot (inner product spaces), squared L2.
    float score = options_.metric == Metric::kL2 ? -dist : 1.0f - dist;
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
  if (const auto* a = graph_->alg.get()) {
    // Rows in order, read from the graph's nodes (the file format keeps both).
    std::vector<hnswlib::tableint> node_of(rows_);
    for (size_t node = 0; node < a->cur_element_count; ++node) {
      auto t = static_cast<hnswlib::tableint>(node);
      node_of[a->getExternalLabel(t)] = t;
    }
    for (size_t row = 0; row < rows_; ++row) {
      out.append(a->getDataByInternalId(node_of[row]), dim_ * sizeof(float));
    }
  } else {
    out.append(reinterpret_cast<const char*>(vectors_.data()), vectors_.size() * sizeof(float));
  }
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
    for (size_t node = 0; node < rows; ++node) {
      if (graph->alg->getExternalLabel(static_cast<hnswlib::tableint>(node)) >= rows) {
        return bad("graph node with a row out of range");
      }
    }
    graph->alg->setEf(static_cast<size_t>(std::max(ef, 1)));
    index->Seal();
  }
  return index;
}

}  // namespace flowmesh::vector
