// bench/run.sh rag (end-to-end part): the latency of one rag task on a worker, from the
// executor's start to its result: embed the query, search an embedded collection already
// in the worker's in-memory cache, and generate the answer (rag.generate) on the same
// engine. It does not include the scheduler, the server round trips or the first fetch
// of the collection's blobs. The collection is built first by the collection executor
// (whose time is reported too). Prints key=value lines.
//   rag_bench MODEL [ROWS=500] [QUERIES=40] [ANSWER_TOKENS=16] [TOP_K=4]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "rag/collection.h"
#include "rag/collection_executor.h"
#include "rag/rag_executor.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace rag = flowmesh::rag;

// Deterministic pseudo-sentences of 8-24 words from a small vocabulary.
std::string Sentence(unsigned seed) {
  static const char* kWords[] = {"river",   "stone",  "cloud",   "engine", "garden",
                                 "signal",  "paper",  "winter",  "market", "bridge",
                                 "window",  "forest", "copper",  "silver", "harbor",
                                 "lantern", "meadow", "circuit", "canvas", "orbit"};
  unsigned s = seed * 2654435761u + 1u;
  int n = 8 + static_cast<int>(s % 17);
  std::string out;
  for (int i = 0; i < n; ++i) {
    s = s * 1103515245u + 12345u;
    if (i) out += ' ';
    out += kWords[(s >> 16) % 20];
  }
  return out;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: rag_bench MODEL [ROWS] [QUERIES] [ANSWER_TOKENS] [TOP_K]\n");
    return 2;
  }
  std::string model = argv[1];
  int rows = argc > 2 ? std::atoi(argv[2]) : 500;
  int queries = argc > 3 ? std::atoi(argv[3]) : 40;
  int answer_tokens = argc > 4 ? std::atoi(argv[4]) : 16;
  int top_k = argc > 5 ? std::atoi(argv[5]) : 4;
  auto models =
      std::make_shared<flowmesh::inference::ModelCache>(flowmesh::inference::ModelCacheConfig{});
  json model_section = {{"source", {{"type", "local"}, {"identifier", model}}}};
  std::atomic<bool> cancelled{false};
  auto context = [&](json spec, const std::string& type) {
    return flowmesh::executors::TaskContext{"tsk-bench", "wfl-bench",     1,
                                            type,        std::move(spec), [](std::string) {},
                                            [](json) {}, cancelled};
  };

  json items = json::array();
  for (int i = 0; i < rows; ++i) {
    items.push_back({{"id", "r" + std::to_string(i)},
                     {"text", Sentence(static_cast<unsigned>(i))},
                     {"group", i % 4}});
  }
  std::string dir = (std::filesystem::temp_directory_path() / "fm-rag-bench").string();
  rag::CollectionExecutor build(models, {dir, /*keep_files=*/true});
  auto build_ctx = context({{"taskType", "collection"},
                            {"model", model_section},
                            {"collection",
                             {{"name", "bench"},
                              {"id_field", "id"},
                              {"chunking", {{"max_tokens", 32}, {"overlap", 4}}}}},
                            {"data", {{"type", "list"}, {"items", items}}}},
                           "collection");
  auto t0 = Clock::now();
  auto built = build.Run(build_ctx);
  double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!built.ok()) {
    std::fprintf(stderr, "build failed: %s\n", built.status().ToString().c_str());
    return 1;
  }
  std::string local = (*built)["local_dir"];
  rag::CollectionInfo info;
  info.name = "bench";
  info.version = 1;
  info.model = (*built)["collection"]["model"];
  auto loaded =
      rag::Collection::Load(info, local + "/" + rag::kIndexFile, local + "/" + rag::kEntriesFile);
  std::filesystem::remove_all(local);
  if (!loaded.ok()) {
    std::fprintf(stderr, "load failed: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<const rag::Collection> collection = std::move(loaded).value();

  auto run = [&](int q, bool generate) -> double {
    json r = {{"collection", "bench"},
              {"query", Sentence(100000u + static_cast<unsigned>(q))},
              {"search", {{"top_k", top_k}}}};
    if (generate) r["generate"] = {{"max_tokens", answer_tokens}, {"temperature", 0}};
    auto ctx = context({{"taskType", "rag"}, {"model", model_section}, {"rag", r}}, "rag");
    ctx.fetch_collection = [&](const std::string&, int64_t)
        -> flowmesh::Result<std::shared_ptr<const rag::Collection>> { return collection; };
    rag::RagExecutor executor(models);
    auto start = Clock::now();
    auto result = executor.Run(ctx);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!result.ok()) {
      std::fprintf(stderr, "rag failed: %s\n", result.status().ToString().c_str());
      std::exit(1);
    }
    return ms;
  };
  run(-1, true);  // warm-up: the engine's first decode
  std::vector<double> search_ms, e2e_ms;
  for (int q = 0; q < queries; ++q) search_ms.push_back(run(q, false));
  for (int q = 0; q < queries; ++q) e2e_ms.push_back(run(q, true));
  std::printf("rag_rows=%d\nrag_chunks=%zu\nrag_build_s=%.3f\n", rows, collection->entries().size(),
              build_s);
  std::printf("rag_queries=%d\nrag_top_k=%d\nrag_answer_tokens=%d\n", queries, top_k,
              answer_tokens);
  std::printf("rag_search_p50_ms=%.3f\nrag_search_p95_ms=%.3f\n", Percentile(search_ms, 0.5),
              Percentile(search_ms, 0.95));
  std::printf("rag_e2e_p50_ms=%.3f\nrag_e2e_p95_ms=%.3f\n", Percentile(e2e_ms, 0.5),
              Percentile(e2e_ms, 0.95));
  std::printf(
      "rag_e2e_includes=embed query + search embedded collection (in memory) + generate "
      "answer, one task at a time, executor start to result; no scheduler, no HTTP\n");
  return 0;
}
