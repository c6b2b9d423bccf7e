#include "rag/collection_executor.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/hash.h"
#include "common/ids.h"
#include "inference/engine.h"
#include "spec/operator.h"
#include "vector/chunker.h"

namespace flowmesh::rag {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

Result<size_t> Count(const json& section, const char* key, size_t fallback, size_t min,
                     const std::string& where) {
  const json& v = Field(section, key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer() || v.get<int64_t>() < static_cast<int64_t>(min)) {
    return InvalidArgument(where + "." + key + " must be an integer >= " + std::to_string(min));
  }
  return static_cast<size_t>(v.get<int64_t>());
}

Result<std::string> Text(const json& section, const char* key, const std::string& fallback,
                         const std::string& where) {
  const json& v = Field(section, key);
  if (v.is_null()) return fallback;
  if (!v.is_string() || v.get<std::string>().empty()) {
    return InvalidArgument(where + "." + key + " must be a non-empty string");
  }
  return v.get<std::string>();
}

// A scalar field as text: strings as they are, numbers and booleans in JSON.
std::optional<std::string> ScalarText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return std::nullopt;
}

Status WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Internal("cannot write " + path.string());
  return Status::Ok();
}

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Internal("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<CollectionOptions> CollectionOptionsFromSpec(const json& spec) {
  const std::string where = "spec.collection";
  const json& section = Field(spec, "collection");
  if (!section.is_object()) return InvalidArgument(where + " (with at least a name) is required");
  CollectionOptions o;
  FM_ASSIGN_OR_RETURN(o.name, Text(section, "name", "", where));
  if (o.name.empty()) return InvalidArgument(where + ".name is required");
  FM_ASSIGN_OR_RETURN(o.text_field, Text(section, "text_field", "text", where));
  FM_ASSIGN_OR_RETURN(o.id_field, Text(section, "id_field", "", where));
  if (const json& m = Field(section, "metadata_fields"); !m.is_null()) {
    if (!m.is_array())
      return InvalidArgument(where + ".metadata_fields must be a list of field names");
    std::vector<std::string> fields;
    for (const auto& f : m) {
      if (!f.is_string())
        return InvalidArgument(where + ".metadata_fields must be a list of field names");
      fields.push_back(f.get<std::string>());
    }
    o.metadata_fields = std::move(fields);
  }
  const json& chunking = Field(section, "chunking");
  if (!chunking.is_null() && !chunking.is_object()) {
    return InvalidArgument(where + ".chunking must be a mapping {max_tokens, overlap}");
  }
  FM_ASSIGN_OR_RETURN(o.max_tokens, Count(chunking, "max_tokens", 256, 1, where + ".chunking"));
  FM_ASSIGN_OR_RETURN(o.overlap, Count(chunking, "overlap", std::min<size_t>(32, o.max_tokens / 2),
                                       0, where + ".chunking"));
  if (o.overlap >= o.max_tokens) {
    return InvalidArgument(where + ".chunking.overlap must be smaller than max_tokens (" +
                           std::to_string(o.max_tokens) + ")");
  }
  FM_ASSIGN_OR_RETURN(std::string metric, Text(section, "metric", "cosine", where));
  auto parsed = vector::ParseMetric(metric);
  if (!parsed.ok()) return InvalidArgument(where + ".metric: " + parsed.status().message());
  o.metric = *parsed;
  FM_ASSIGN_OR_RETURN(o.batch_size, Count(section, "batch_size", 32, 1, where));
  return o;
}

Result<std::vector<Document>> DocumentsFromItems(const json& items, const CollectionOptions& o) {
  if (!items.is_array() || items.empty()) {
    return InvalidArgument("the task has no rows: set data.items (objects or strings)");
  }
  std::vector<Document> docs;
  std::set<std::string> ids;
  for (size_t i = 0; i < items.size(); ++i) {
    const json& row = items[i];
    std::string at = "data.items[" + std::to_string(i) + "]";
    Document d;
    d.id = std::to_string(i);
    if (row.is_string()) {
      d.text = row.get<std::string>();
    } else if (row.is_object()) {
      const json& text = Field(row, o.text_field.c_str());
      if (!text.is_string()) {
        return InvalidArgument(at + " has no string field '" + o.text_field +
                               "' (collection.text_field names the text)");
      }
      d.text = text.get<std::string>();
      // Without id_field a row's "id" (a string or a number) names it when it has one.
      const std::string id_field = o.id_field.empty() ? "id" : o.id_field;
      auto id = ScalarText(Field(row, id_field.c_str()));
      if (!o.id_field.empty() && (!id || id->empty())) {
        return InvalidArgument(at + " has no field '" + o.id_field +
                               "' (collection.id_field names the document)");
      }
      bool named = id && !id->empty();
      if (named) d.id = *id;
      for (const auto& [key, value] : row.items()) {
        if (key == o.text_field || (named && key == id_field)) continue;
        if (o.metadata_fields && std::find(o.metadata_fields->begin(), o.metadata_fields->end(),
                                           key) == o.metadata_fields->end()) {
          continue;
        }
        d.metadata[key] = value;
      }
    } else {
      return InvalidArgument(at + " must be an object or a string, got " +
                             std::string(row.type_name()));
    }
    if (!ids.insert(d.id).second) {
      return InvalidArgument(at + ": document id '" + d.id + "' is used by an earlier row");
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

Result<std::vector<CollectionEntry>> ChunkDocuments(const std::vector<Document>& documents,
                                                    const CollectionOptions& o,
                                                    const Tokenizer& tokenizer) {
  std::vector<CollectionEntry> entries;
  for (const Document& d : documents) {
    if (d.text.empty()) continue;
    FM_ASSIGN_OR_RETURN(std::vector<size_t> starts, tokenizer(d.text));
    FM_ASSIGN_OR_RETURN(std::vector<vector::Chunk> chunks,
                        vector::ChunkByTokens(d.text, starts, o.max_tokens, o.overlap));
    for (size_t c = 0; c < chunks.size(); ++c) {
      CollectionEntry e;
      e.id = d.id + "#" + std::to_string(c);
      e.doc = d.id;
      e.chunk = static_cast<int64_t>(c);
      e.text = std::move(chunks[c].text);
      e.metadata = d.metadata;
      entries.push_back(std::move(e));
    }
  }
  return entries;
}

Result<json> CollectionExecutor::Run(executors::TaskContext& ctx) {
  auto started = std::chrono::steady_clock::now();
  FM_ASSIGN_OR_RETURN(CollectionOptions o, CollectionOptionsFromSpec(ctx.spec));
  FM_ASSIGN_OR_RETURN(std::vector<Document> docs,
                      DocumentsFromItems(Field(Field(ctx.spec, "data"), "items"), o));
  FM_ASSIGN_OR_RETURN(std::shared_ptr<inference::Engine> engine, models_->Acquire(ctx.spec));
  if (o.max_tokens + 2 > static_cast<size_t>(engine->embed_tokens())) {
    return InvalidArgument("spec.collection.chunking.max_tokens (" + std::to_string(o.max_tokens) +
                           ") must leave room in the model's embedding context (" +
                           std::to_string(engine->embed_tokens()) + " tokens)");
  }
  Tokenizer tokenizer = [&engine](const std::string& text) -> Result<std::vector<size_t>> {
    FM_ASSIGN_OR_RETURN(std::vector<std::string> pieces, engine->TokenPieces(text));
    return vector::TokenStarts(text, pieces);
  };
  FM_ASSIGN_OR_RETURN(std::vector<CollectionEntry> entries, ChunkDocuments(docs, o, tokenizer));
  if (entries.empty()) return InvalidArgument("the rows hold no text to index");
  ctx.log("[collection] " + o.name + ": " + std::to_string(docs.size()) + " documents, " +
          std::to_string(entries.size()) + " chunks");

  std::vector<float> vectors;
  size_t dim = 0, tokens = 0, logged = 0;
  for (size_t first = 0; first < entries.size(); first += o.batch_size) {
    if (ctx.cancelled.load()) return Cancelled("collection build cancelled");
    size_t last = std::min(entries.size(), first + o.batch_size);
    std::vector<std::string> texts;
    for (size_t i = first; i < last; ++i) texts.push_back(entries[i].text);
    FM_ASSIGN_OR_RETURN(std::vector<std::vector<float>> embedded, engine->Embed(texts));
    for (auto& v : embedded) {
      if (dim == 0) dim = v.size();
      if (v.size() != dim) return Internal("the model gave embeddings of different sizes");
      vectors.insert(vectors.end(), v.begin(), v.end());
    }
    for (const auto& t : texts) {
      auto pieces = engine->TokenPieces(t);
      if (pieces.ok()) tokens += pieces->size();
    }
    if (last * 10 / entries.size() > logged || last == entries.size()) {
      logged = last * 10 / entries.size();
      ctx.update({{"collection", {{"embedded", last}, {"chunks", entries.size()}}}});
    }
  }
  vector::IndexOptions index_options;
  index_options.metric = o.metric;
  index_options.build_threads = 1;  // the same input builds the same graph (and bytes)
  FM_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> index,
                      vector::VectorIndex::Build(dim, std::move(vectors), index_options));
  if (ctx.cancelled.load()) return Cancelled("collection build cancelled");

  fs::path base = config_.work_dir.empty() ? fs::temp_directory_path() : fs::path(config_.work_dir);
  fs::path dir = base / ("fm-collection-" + ctx.task_id + "-" + std::to_string(ctx.attempt) + "-" +
                         RandomHex(4));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir.string() + ": " + ec.message());
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ignored;
      if (!keep) fs::remove_all(dir, ignored);
    }
  } cleanup{dir, config_.keep_files};

  FM_RETURN_IF_ERROR(index->Save((dir / kIndexFile).string()));
  std::string lines;
  for (const auto& e : entries) lines += EntryLine(e) + "\n";
  FM_RETURN_IF_ERROR(WriteFile(dir / kEntriesFile, lines));

  json files = json::array();
  for (const char* name : {kIndexFile, kEntriesFile}) {
    FM_ASSIGN_OR_RETURN(std::string bytes, ReadFile(dir / name));
    files.push_back(
        {{"name", name}, {"size", bytes.size()}, {"sha256", Sha256Hex(bytes)}, {"stored", false}});
  }
  if (ctx.put_files) {
    FM_RETURN_IF_ERROR(executors::StoreResultFiles(ctx, dir.string(), files,
                                                   "collection " + o.name + ": its files"));
  } else {
    for (auto& f : files) f["why_not"] = "no server to store it";
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json result = {
      {"collection",
       {{"name", o.name},
        {"model", spec::ModelKey(ctx.spec)},
        {"dim", dim},
        {"count", entries.size()},
        {"documents", docs.size()},
        {"metric", std::string(vector::MetricName(o.metric))},
        {"chunking", {{"max_tokens", o.max_tokens}, {"overlap", o.overlap}}}}},
      {"files", std::move(files)},
      {"usage",
       {{"prompt_tokens", tokens}, {"completion_tokens", 0}, {"execution_time_sec", seconds}}}};
  if (config_.keep_files) result["local_dir"] = dir.string();
  return result;
}

}  // namespace flowmesh::rag
