#include "rag/collection.h"

#include <fstream>
#include <sstream>

namespace flowmesh::rag {

using json = nlohmann::json;

std::string EntryLine(const CollectionEntry& e) {
  // nlohmann's ordered output: keys sorted, so the bytes depend on the values only.
  json line = {
      {"id", e.id}, {"doc", e.doc}, {"chunk", e.chunk}, {"text", e.text}, {"metadata", e.metadata}};
  return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<CollectionEntry> ParseEntryLine(std::string_view line, size_t line_no) {
  json j = json::parse(line, nullptr, false);
  auto bad = [&](const std::string& why) {
    return InvalidArgument("entries.jsonl line " + std::to_string(line_no) + ": " + why);
  };
  if (!j.is_object()) return bad("not a JSON object");
  CollectionEntry e;
  for (const char* key : {"id", "doc", "text"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return bad(std::string("no string '") + key + "'");
  }
  e.id = j["id"].get<std::string>();
  e.doc = j["doc"].get<std::string>();
  e.text = j["text"].get<std::string>();
  if (auto it = j.find("chunk"); it != j.end() && it->is_number_integer())
    e.chunk = it->get<int64_t>();
  if (auto it = j.find("metadata"); it != j.end() && it->is_object()) e.metadata = *it;
  return e;
}

json EntryPayload(const CollectionEntry& e) {
  return json{{"text", e.text}, {"doc", e.doc}, {"chunk", e.chunk}, {"metadata", e.metadata}};
}

Result<CollectionInfo> CollectionInfo::FromJson(const json& reply) {
  if (!reply.is_object())
    return InvalidArgument("collection: the server's answer is not an object");
  CollectionInfo c;
  c.name = reply.value("name", std::string());
  c.version = reply.value("version", int64_t{0});
  c.model = reply.value("model", std::string());
  c.metric = reply.value("metric", std::string("cosine"));
  c.dim = reply.value("dim", int64_t{0});
  c.count = reply.value("count", int64_t{0});
  const json files = reply.value("files", json::object());
  if (files.is_object()) {
    json index = files.value("index", json::object()),
         entries = files.value("entries", json::object());
    if (index.is_object()) {
      c.index_digest = index.value("digest", std::string());
      c.index_size = index.value("size", int64_t{0});
    }
    if (entries.is_object()) {
      c.entries_digest = entries.value("digest", std::string());
      c.entries_size = entries.value("size", int64_t{0});
    }
  }
  if (c.name.empty() || c.index_digest.size() != 64 || c.entries_digest.size() != 64) {
    return InvalidArgument("collection: the server's answer has no name or no file digests");
  }
  return c;
}

Collection::Collection(CollectionInfo info, std::unique_ptr<vector::VectorIndex> index,
                       std::vector<CollectionEntry> entries)
    : info_(std::move(info)), index_(std::move(index)), entries_(std::move(entries)) {
  for (const auto& e : entries_) {
    entry_bytes_ += sizeof(CollectionEntry) + e.id.size() + e.doc.size() + e.text.size() +
                    e.metadata.dump().size();
  }
}

Result<std::unique_ptr<Collection>> Collection::FromParts(
    CollectionInfo info, std::unique_ptr<vector::VectorIndex> index,
    std::vector<CollectionEntry> entries) {
  if (!index) return InvalidArgument("collection " + info.name + ": no index");
  if (index->size() != entries.size()) {
    return FailedPrecondition("collection " + info.name + ": the index has " +
                              std::to_string(index->size()) + " vectors but there are " +
                              std::to_string(entries.size()) + " entries");
  }
  if (info.dim > 0 && static_cast<size_t>(info.dim) != index->dim()) {
    return FailedPrecondition("collection " + info.name + ": the index has dimension " +
                              std::to_string(index->dim()) + ", the server says " +
                              std::to_string(info.dim));
  }
  return std::unique_ptr<Collection>(
      new Collection(std::move(info), std::move(index), std::move(entries)));
}

Result<std::unique_ptr<Collection>> Collection::Load(CollectionInfo info,
                                                     const std::string& index_path,
                                                     const std::string& entries_path) {
  FM_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> index,
                      vector::VectorIndex::Load(index_path));
  std::ifstream in(entries_path, std::ios::binary);
  if (!in) return FailedPrecondition("cannot read " + entries_path);
  std::vector<CollectionEntry> entries;
  entries.reserve(index->size());
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    FM_ASSIGN_OR_RETURN(CollectionEntry e, ParseEntryLine(line, line_no));
    entries.push_back(std::move(e));
  }
  return FromParts(std::move(info), std::move(index), std::move(entries));
}

Result<std::vector<CollectionHit>> Collection::Search(std::span<const float> query, size_t k,
                                                      const vector::MetadataFilter& filter,
                                                      std::optional<float> score_threshold) const {
  vector::IdFilter admit = nullptr;
  if (!filter.empty()) {
    admit = [this, &filter](uint32_t id) {
      return id < entries_.size() && filter.Matches(entries_[id].metadata);
    };
  }
  FM_ASSIGN_OR_RETURN(std::vector<vector::SearchHit> hits, index_->Search(query, k, admit));
  std::vector<CollectionHit> out;
  out.reserve(hits.size());
  for (const auto& h : hits) {
    if (score_threshold && h.score < *score_threshold) continue;
    if (h.id >= entries_.size()) continue;
    out.push_back({h.id, h.score, &entries_[h.id]});
  }
  return out;
}

size_t Collection::MemoryBytes() const { return index_->MemoryBytes() + entry_bytes_; }

}  // namespace flowmesh::rag
