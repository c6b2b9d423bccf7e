// The `collection` executor (docs/executors/collection.md): builds an embedded collection
// from a task's rows. Each row (data.items: an object or a string) is one document; its
// text is cut into chunks of at most chunking.max_tokens tokens of the task's model,
// overlapping by chunking.overlap, at token boundaries; the chunks are embedded in batches
// on the worker's engine and indexed (vector::VectorIndex, one build thread so that the
// same input gives the same bytes). The two files, index.fmvi and entries.jsonl, are kept
// in the server's content store with the result (TaskContext::put_files).
//
// Result (docs/internals/collections.md):
//   {collection: {name, model, dim, count, documents, metric, chunking: {max_tokens,
//    overlap}}, files: [{name, size, sha256, stored, why_not?}], usage: {prompt_tokens,
//    completion_tokens, execution_time_sec}}
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "executors/executor.h"
#include "inference/model_cache.h"
#include "rag/collection.h"
#include "vector/vector_index.h"

namespace flowmesh::rag {

struct CollectionOptions {
  std::string name;
  std::string text_field = "text";
  std::string id_field;  // "": the row's "id" field, else its index
  std::optional<std::vector<std::string>> metadata_fields;  // absent: every other field
  size_t max_tokens = 256;
  size_t overlap = 32;
  vector::Metric metric = vector::Metric::kCosine;
  size_t batch_size = 32;
};

// spec.collection, with the defaults of spec/executor_options.cc; InvalidArgument naming
// the key (spec.collection.chunking.overlap) otherwise.
Result<CollectionOptions> CollectionOptionsFromSpec(const nlohmann::json& spec);

// One row as a document.
struct Document {
  std::string id;
  std::string text;
  nlohmann::json metadata = nlohmann::json::object();
};

// data.items as documents: a string is a document's text; an object's text is its
// text_field (a string), its id the id_field (a string or a number; without id_field: its
// "id" field when it has one, else the row's index), its metadata the metadata_fields
// (default: every field but text and id).
// InvalidArgument naming the row for a row without text, or two rows with one id.
Result<std::vector<Document>> DocumentsFromItems(const nlohmann::json& items,
                                                 const CollectionOptions& options);

// Byte offsets where each token of a text starts (the embedding model's tokenizer).
using Tokenizer = std::function<Result<std::vector<size_t>>(const std::string& text)>;

// The entries of `documents`, in row order, chunk by chunk. A document with empty text
// has no entry.
Result<std::vector<CollectionEntry>> ChunkDocuments(const std::vector<Document>& documents,
                                                    const CollectionOptions& options,
                                                    const Tokenizer& tokenizer);

struct CollectionExecutorConfig {
  // Where the two files are written: a fresh folder under it per attempt, removed once the
  // files are stored. "" : the system's temporary directory. Kept when `keep_files` (local
  // runs and tests, where no server stores them).
  std::string work_dir;
  bool keep_files = false;
};

class CollectionExecutor : public executors::Executor {
 public:
  CollectionExecutor(std::shared_ptr<inference::ModelCache> models, CollectionExecutorConfig config)
      : models_(std::move(models)), config_(std::move(config)) {}
  Result<nlohmann::json> Run(executors::TaskContext& ctx) override;

 private:
  std::shared_ptr<inference::ModelCache> models_;
  CollectionExecutorConfig config_;
};

}  // namespace flowmesh::rag
