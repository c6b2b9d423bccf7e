// The `rag` executor (docs/executors/rag.md): for each query (rag.query, or data.items),
// embeds it with the task's model on the worker's engine, searches the top_k passages of
// an embedded collection (rag.collection, fetched through TaskContext::fetch_collection)
// or of a Qdrant collection over REST (rag.qdrant.url or host/port), and, with
// rag.generate, answers it from those passages with the same engine (all queries decode
// together in the engine's batch).
//
// Result (the published shape, plus `collection` for embedded collections and `answer`
// with generate):
//   {qdrant: {collection, url}, embedding: {model}, search: {top_k},
//    queries: [{index, query, items: [{id, score, payload}], answer?}],
//    usage: {latency_sec, num_queries, total_results, prompt_tokens?, completion_tokens?},
//    collection?: {name, version, index_digest}}
// An embedded hit's payload is {text, doc, chunk, metadata}; a Qdrant hit's is the point's.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "executors/executor.h"
#include "inference/model_cache.h"

namespace flowmesh::rag {

struct RagOptions {
  // Embedded: the collection's name and version (0: newest ready).
  std::string collection;
  int64_t version = 0;
  // Qdrant: the base URL ("" = embedded) and its collection, api key (may hold
  // {{credential:NAME}}).
  std::string qdrant_url;
  std::string qdrant_api_key;
  size_t top_k = 5;
  std::optional<float> score_threshold;
  nlohmann::json filter;  // null: none
  bool generate = false;
  std::string prompt_template;
  int max_tokens = 256;
  float temperature = 0;
  std::optional<uint32_t> seed;
};

// spec.rag with the defaults of spec/executor_options.cc; InvalidArgument naming the key.
Result<RagOptions> RagOptionsFromSpec(const nlohmann::json& spec);
// rag.query (a string or a list of strings), else data.items (strings, or objects whose
// query / text / prompt is the query). InvalidArgument when there is none.
Result<std::vector<std::string>> QueriesFromSpec(const nlohmann::json& spec);
// The generation prompt: {context} replaced by the passages (one a line), {query} by the query.
std::string FillPrompt(const std::string& prompt_template, const std::vector<std::string>& passages,
                       const std::string& query);

class RagExecutor : public executors::Executor {
 public:
  explicit RagExecutor(std::shared_ptr<inference::ModelCache> models)
      : models_(std::move(models)) {}
  Result<nlohmann::json> Run(executors::TaskContext& ctx) override;

 private:
  std::shared_ptr<inference::ModelCache> models_;
};

struct CollectionExecutorConfig;
// Registers `collection` and `rag` on `registry` over `models`.
void RegisterRagExecutors(executors::ExecutorRegistry& registry,
                          std::shared_ptr<inference::ModelCache> models,
                          const CollectionExecutorConfig& collection_config);

}  // namespace flowmesh::rag
