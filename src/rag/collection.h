// One embedded collection as a worker searches it (docs/internals/collections.md): the
// vector index of a build (index.fmvi) and its entries (entries.jsonl, one per vector, in
// row order), loaded once from the two files. Read-only once loaded, so one instance is
// shared by every task that searches it, from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "vector/metadata_filter.h"
#include "vector/vector_index.h"

namespace flowmesh::rag {

inline constexpr char kIndexFile[] = "index.fmvi";
inline constexpr char kEntriesFile[] = "entries.jsonl";

// One vector's passage: `id` is "<doc>#<chunk>".
struct CollectionEntry {
  std::string id;
  std::string doc;
  int64_t chunk = 0;
  std::string text;
  nlohmann::json metadata = nlohmann::json::object();
};

// entries.jsonl's line of an entry (no newline), keys in a fixed order so that equal entries
// give equal bytes.
std::string EntryLine(const CollectionEntry& entry);
// InvalidArgument naming the line for one that is not an entry.
Result<CollectionEntry> ParseEntryLine(std::string_view line, size_t line_no);
// The payload a search hit carries: {text, doc, chunk, metadata}.
nlohmann::json EntryPayload(const CollectionEntry& entry);

// What the server says of a version (its resolve answer).
struct CollectionInfo {
  std::string name;
  int64_t version = 0;
  std::string model;   // spec::ModelKey of the build's model
  std::string metric;  // cosine | ip | l2
  int64_t dim = 0;
  int64_t count = 0;
  std::string index_digest;
  int64_t index_size = 0;
  std::string entries_digest;
  int64_t entries_size = 0;

  // From the resolve answer {name, version, model, dim, count, metric, files: {index:
  // {digest, size}, entries: {digest, size}}}; InvalidArgument when a field is missing.
  static Result<CollectionInfo> FromJson(const nlohmann::json& reply);
};

struct CollectionHit {
  uint32_t row = 0;
  float score = 0;
  const CollectionEntry* entry = nullptr;
};

class Collection {
 public:
  // Loads both files; FailedPrecondition when they disagree (entries != vectors) or the
  // index is not the one `info` describes (dim).
  static Result<std::unique_ptr<Collection>> Load(CollectionInfo info,
                                                  const std::string& index_path,
                                                  const std::string& entries_path);
  // For tests and local builds: an index and entries already in memory.
  static Result<std::unique_ptr<Collection>> FromParts(CollectionInfo info,
                                                       std::unique_ptr<vector::VectorIndex> index,
                                                       std::vector<CollectionEntry> entries);

  // The k best entries for `query` (an embedding of the index's dimension) whose metadata
  // `filter` admits, best first, none scoring below `score_threshold`.
  Result<std::vector<CollectionHit>> Search(std::span<const float> query, size_t k,
                                            const vector::MetadataFilter& filter,
                                            std::optional<float> score_threshold) const;

  const CollectionInfo& info() const { return info_; }
  const vector::VectorIndex& index() const { return *index_; }
  const std::vector<CollectionEntry>& entries() const { return entries_; }
  // Memory held: vectors, graph, and the entries' text.
  size_t MemoryBytes() const;

 private:
  Collection(CollectionInfo info, std::unique_ptr<vector::VectorIndex> index,
             std::vector<CollectionEntry> entries);
  CollectionInfo info_;
  std::unique_ptr<vector::VectorIndex> index_;
  std::vector<CollectionEntry> entries_;
  size_t entry_bytes_ = 0;
};

}  // namespace flowmesh::rag
