// bench/run.sh rag (index part): builds the embedded vector index over generated vectors
// and measures it against exact search, on two sets of 384-dim vectors (vector_data.h):
//
//   main:  "topics", shaped like sentence embeddings: 1,000 topics in a 32-dim latent
//          space, mapped linearly to 384 dims, plus small isotropic noise. Printed keys
//          without prefix.
//   hard_: the isotropic Gaussian mixture of earlier runs (intrinsic dimension ~ all 384
//          of them): the worst case, at default settings and at the ef_search that reaches
//          recall 0.95.
//
// Cosine similarity, k = 10, queries one at a time on one thread (q/s: the best of three
// passes, the machine may be shared; queries_per_cpu_sec counts the thread's CPU time only,
// not the time other processes had the core). intrinsic_dim is the two-NN maximum
// likelihood estimate (Facco et al. 2017) at the queries against the stored vectors, from
// the exact search's answers: d = n / sum(log(r2 / r1)).
//
//   vector_bench [N=100000] [DIM=384] [QUERIES=1000] [KEY=VALUE...]
//     ef=         the index's default ef_search (unset: IndexOptions' default)
//     m= efc=     HNSW links per node and ef_construction (unset: IndexOptions')
//     threads=    build threads (0: all cores)
//     sweep=1     also recall and q/s at several ef_search (ef_sweep=ef:recall:qps:cpu_qps);
//                 sweep=EF,EF,... at those
//     hard=0      skip the hard set;  main=0  skip the main set
//     latent= topics= spread= noise=   the main set's shape (32, 1000, 0.7, 0.1)
//     save=PATH load=PATH   keep or reuse the main set's built index (tuning, profiling)
//     passes=     query passes timed (3); profile with many
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "vector/vector_index.h"
#include "vector_data.h"

namespace {

using flowmesh::vector::IndexOptions;
using flowmesh::vector::VectorIndex;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct Args {
  std::map<std::string, std::string> kv;
  double Get(const std::string& key, double fallback) const {
    auto it = kv.find(key);
    return it == kv.end() ? fallback : std::atof(it->second.c_str());
  }
  std::string Str(const std::string& key) const {
    auto it = kv.find(key);
    return it == kv.end() ? "" : it->second;
  }
};

struct Truth {
  std::vector<std::vector<uint32_t>> ids;
  double exact_qps = 0;
  double two_nn = 0;  // intrinsic dimension estimate
};

// Exact answers (timed: the single-thread brute-force baseline) and, from their scores,
// the intrinsic dimension: unit vectors, so distance = sqrt(2 - 2 cos).
Truth Exact(const VectorIndex& index, const std::vector<float>& probe, size_t k) {
  size_t dim = index.dim(), queries = probe.size() / dim;
  Truth t;
  t.ids.resize(queries);
  double log_ratio_sum = 0;
  size_t two_nn_n = 0;
  auto start = Clock::now();
  for (size_t q = 0; q < queries; ++q) {
    auto hits = index.SearchExact({probe.data() + q * dim, dim}, k);
    std::vector<double> r;
    for (const auto& h : *hits) {
      t.ids[q].push_back(h.id);
      r.push_back(std::sqrt(std::max(0.0, 2.0 - 2.0 * double(h.score))));
    }
    if (r.size() >= 2 && r[0] > 0 && r[1] > r[0]) {
      log_ratio_sum += std::log(r[1] / r[0]);
      ++two_nn_n;
    }
  }
  t.exact_qps = double(queries) / Seconds(start);
  t.two_nn = two_nn_n ? double(two_nn_n) / log_ratio_sum : 0;
  return t;
}

struct Measured {
  double recall = 0;
  double qps = 0;      // queries over wall time
  double cpu_qps = 0;  // queries over this thread's CPU time (what a shared box leaves)
};

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

Measured Measure(const VectorIndex& index, const std::vector<float>& probe, const Truth& truth,
                 size_t k, int ef, int passes) {
  size_t dim = index.dim(), queries = probe.size() / dim;
  Measured m;
  size_t found = 0;
  for (size_t q = 0; q < queries; ++q) {
    auto hits = index.Search({probe.data() + q * dim, dim}, k, nullptr, ef);
    std::unordered_set<uint32_t> want(truth.ids[q].begin(), truth.ids[q].end());
    for (const auto& h : *hits) found += want.count(h.id);
  }
  m.recall = double(found) / double(queries * k);
  double best = 1e30, best_cpu = 1e30;
  size_t sink = 0;
  for (int pass = 0; pass < passes; ++pass) {
    auto start = Clock::now();
    double cpu = ThreadCpuSeconds();
    for (size_t q = 0; q < queries; ++q) {
      sink += index.Search({probe.data() + q * dim, dim}, k, nullptr, ef)->front().id;
    }
    best = std::min(best, Seconds(start));
    best_cpu = std::min(best_cpu, ThreadCpuSeconds() - cpu);
  }
  if (sink == size_t(-1)) std::printf("#\n");  // keep the searches
  m.qps = double(queries) / best;
  m.cpu_qps = double(queries) / best_cpu;
  return m;
}

std::unique_ptr<VectorIndex> BuildOrLoad(size_t dim, std::vector<float> data,
                                         const IndexOptions& options, const Args& args,
                                         double* build_s) {
  std::string load = args.Str("load");
  auto start = Clock::now();
  auto index = load.empty() ? VectorIndex::Build(dim, std::move(data), options)
                            : VectorIndex::Load(load);
  *build_s = Seconds(start);
  if (!index.ok()) {
    std::fprintf(stderr, "build: %s\n", index.status().ToString().c_str());
    std::exit(1);
  }
  if (!args.Str("save").empty()) {
    auto saved = (*index)->Save(args.Str("save"));
    if (!saved.ok()) std::fprintf(stderr, "save: %s\n", saved.ToString().c_str());
  }
  return std::move(*index);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const char* eq = std::strchr(argv[i], '=');
    if (eq) {
      args.kv[std::string(argv[i], static_cast<size_t>(eq - argv[i]))] = eq + 1;
    } else {
      positional.push_back(argv[i]);
    }
  }
  size_t n = positional.size() > 0 ? std::strtoul(positional[0].c_str(), nullptr, 10) : 100000;
  size_t dim = positional.size() > 1 ? std::strtoul(positional[1].c_str(), nullptr, 10) : 384;
  size_t queries =
      positional.size() > 2 ? std::strtoul(positional[2].c_str(), nullptr, 10) : 1000;
  const size_t k = 10;
  int passes = static_cast<int>(args.Get("passes", 3));

  IndexOptions options;
  options.ef_search = static_cast<int>(args.Get("ef", options.ef_search));
  options.m = static_cast<int>(args.Get("m", options.m));
  options.ef_construction = static_cast<int>(args.Get("efc", options.ef_construction));
  options.build_threads = static_cast<int>(args.Get("threads", options.build_threads));
  std::printf("vectors=%zu\ndim=%zu\nqueries=%zu\nk=%zu\n", n, dim, queries, k);
  std::printf("m=%d\nef_construction=%d\nef_search=%d\n", options.m, options.ef_construction,
              options.ef_search);

  if (args.Get("main", 1) != 0) {
    size_t latent = static_cast<size_t>(args.Get("latent", 32));
    size_t topics = static_cast<size_t>(args.Get("topics", 1000));
    float spread = static_cast<float>(args.Get("spread", 0.7));
    float noise = static_cast<float>(args.Get("noise", 0.1));
    flowmesh::bench::Topics shape(dim, latent, topics, spread, noise, 7);
    std::printf("dataset=topics latent=%zu topics=%zu spread=%.2f noise=%.2f\n", latent, topics,
                spread, noise);
    std::vector<float> probe = shape.Draw(queries, 13);
    double build_s = 0;
    auto index = BuildOrLoad(dim, args.Str("load").empty() ? shape.Draw(n, 11) : std::vector<float>{},
                             options, args, &build_s);
    Truth truth = Exact(*index, probe, k);
    std::printf("intrinsic_dim=%.1f\n", truth.two_nn);
    std::printf("index_graph=%d\n", index->has_graph() ? 1 : 0);
    std::printf("%s=%.2f\n", args.Str("load").empty() ? "build_sec" : "load_sec", build_s);
    std::printf("bytes_per_vector=%.0f\n", double(index->MemoryBytes()) / double(n));
    Measured m = Measure(*index, probe, truth, k, 0, passes);
    std::printf("recall_at_10=%.4f\nqueries_per_sec=%.0f\n", m.recall, m.qps);
    std::printf("queries_per_cpu_sec=%.0f\n", m.cpu_qps);
    std::printf("exact_queries_per_sec=%.1f\n", truth.exact_qps);
    if (args.Get("sweep", 0) != 0) {
      std::vector<int> efs = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256};
      std::string list = args.Str("sweep");
      if (list.find(',') != std::string::npos) {  // sweep=EF,EF,...
        efs.clear();
        for (size_t at = 0; at < list.size(); at = list.find(',', at) + 1) {
          if (int ef = std::atoi(list.c_str() + at); ef > 0) efs.push_back(ef);
          if (list.find(',', at) == std::string::npos) break;
        }
      }
      std::printf("ef_sweep=");
      for (int ef : efs) {
        Measured s = Measure(*index, probe, truth, k, ef, passes);
        std::printf("%d:%.4f:%.0f:%.0f ", ef, s.recall, s.qps, s.cpu_qps);
        std::fflush(stdout);
      }
      std::printf("\n");
    }
    std::fflush(stdout);
  }

  if (args.Get("hard", 1) != 0) {
    flowmesh::bench::Mixture hard(dim, 10000, 7);
    std::printf("hard_dataset=isotropic gaussian mixture clusters=10000\n");
    std::vector<float> probe = hard.Draw(queries, 13);
    double build_s = 0;
    Args no_files = args;
    no_files.kv.erase("load");
    no_files.kv.erase("save");
    auto index = BuildOrLoad(dim, hard.Draw(n, 11), options, no_files, &build_s);
    Truth truth = Exact(*index, probe, k);
    std::printf("hard_intrinsic_dim=%.1f\n", truth.two_nn);
    std::printf("hard_build_sec=%.2f\n", build_s);
    std::printf("hard_bytes_per_vector=%.0f\n", double(index->MemoryBytes()) / double(n));
    Measured m = Measure(*index, probe, truth, k, 0, passes);
    std::printf("hard_recall_at_10=%.4f\nhard_queries_per_sec=%.0f\n", m.recall, m.qps);
    std::printf("hard_queries_per_cpu_sec=%.0f\n", m.cpu_qps);
    std::printf("hard_exact_queries_per_sec=%.1f\n", truth.exact_qps);
    std::fflush(stdout);
    // The breadth this set needs for recall 0.95 (steps of 1.5x from the default).
    int ef = std::max(index->ef_search(), 1);
    Measured at = m;
    std::printf("hard_ef_sweep=");
    while (at.recall < 0.95 && ef < 4096) {
      ef = ef * 3 / 2;
      at = Measure(*index, probe, truth, k, ef, passes);
      std::printf("%d:%.4f:%.0f:%.0f ", ef, at.recall, at.qps, at.cpu_qps);
      std::fflush(stdout);
    }
    std::printf("\nhard_ef_for_0_95=%d\nhard_recall_at_ef_for_0_95=%.4f\n", ef, at.recall);
    std::printf("hard_queries_per_sec_at_ef_for_0_95=%.0f\n", at.qps);
  }
  return 0;
}
