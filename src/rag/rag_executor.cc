#include "rag/rag_executor.h"

#include <chrono>

#include "executors/api_client.h"
#include "inference/engine.h"
#include "rag/collection.h"
#include "rag/collection_executor.h"
#include "rag/qdrant.h"
#include "spec/operator.h"
#include "vector/metadata_filter.h"

namespace flowmesh::rag {
namespace {

using json = nlohmann::json;
constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr char kDefaultPrompt[] =
    "Answer the question from the context.\nContext:\n{context}\nQuestion: {query}\nAnswer:";

const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

Status Bad(const std::string& key, const std::string& what) {
  return InvalidArgument("spec.rag." + key + " must be " + what);
}

}  // namespace

Result<RagOptions> RagOptionsFromSpec(const json& spec) {
  const json& rag = Field(spec, "rag");
  if (!rag.is_null() && !rag.is_object()) return InvalidArgument("spec.rag must be a mapping");
  RagOptions o;
  const json& qdrant = Field(rag, "qdrant");
  if (!qdrant.is_null() && !qdrant.is_object()) return Bad("qdrant", "a mapping");
  const json& url = Field(qdrant, "url");
  const json& host = Field(qdrant, "host");
  if (url.is_string() && !url.get<std::string>().empty()) {
    o.qdrant_url = url.get<std::string>();
  } else if (host.is_string() && !host.get<std::string>().empty()) {
    const json& port = Field(qdrant, "port");
    o.qdrant_url = "http://" + host.get<std::string>() + ":" +
                   (port.is_number_integer() ? std::to_string(port.get<int64_t>()) : "6333");
  }
  while (!o.qdrant_url.empty() && o.qdrant_url.back() == '/') o.qdrant_url.pop_back();
  if (const json& key = Field(qdrant, "api_key"); key.is_string()) o.qdrant_api_key = key;
  for (const json* name :
       {&Field(rag, "collection"), &Field(qdrant, "collection"), &Field(rag, "index")}) {
    if (name->is_string() && !name->get<std::string>().empty()) {
      o.collection = name->get<std::string>();
      break;
    }
  }
  if (o.collection.empty()) {
    return InvalidArgument(
        "spec.rag.collection (an embedded collection) or spec.rag.qdrant "
        "{url, collection} is required");
  }
  if (const json& v = Field(rag, "version"); !v.is_null()) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1) return Bad("version", "an integer >= 1");
    o.version = v.get<int64_t>();
  }
  const json& search = Field(rag, "search");
  if (const json& k = Field(search, "top_k"); !k.is_null()) {
    if (!k.is_number_integer() || k.get<int64_t>() < 1 || k.get<int64_t>() > 10000) {
      return Bad("search.top_k", "an integer from 1 to 10000");
    }
    o.top_k = static_cast<size_t>(k.get<int64_t>());
  }
  if (const json& t = Field(search, "score_threshold"); !t.is_null()) {
    if (!t.is_number()) return Bad("search.score_threshold", "a number");
    o.score_threshold = t.get<float>();
  }
  o.filter = Field(search, "filter");
  if (!o.filter.is_null() && !o.filter.is_object()) return Bad("search.filter", "a mapping");
  const json& gen = Field(rag, "generate");
  if (!gen.is_null()) {
    if (!gen.is_object())
      return Bad("generate", "a mapping {prompt_template, max_tokens, temperature}");
    o.generate = true;
    const json& p = Field(gen, "prompt_template");
    if (!p.is_null() && !p.is_string()) return Bad("generate.prompt_template", "a string");
    o.prompt_template = p.is_string() ? p.get<std::string>() : kDefaultPrompt;
    if (const json& m = Field(gen, "max_tokens"); !m.is_null()) {
      if (!m.is_number_integer() || m.get<int64_t>() < 1 || m.get<int64_t>() > (1 << 20)) {
        return Bad("generate.max_tokens", "an integer from 1 to 1048576");
      }
      o.max_tokens = static_cast<int>(m.get<int64_t>());
    }
    if (const json& t = Field(gen, "temperature"); !t.is_null()) {
      if (!t.is_number() || t.get<double>() < 0 || t.get<double>() > 2) {
        return Bad("generate.temperature", "a number from 0 to 2");
      }
      o.temperature = t.get<float>();
    }
    if (const json& s = Field(gen, "seed"); !s.is_null()) {
      if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() > 4294967295LL) {
        return Bad("generate.seed", "an integer from 0 to 4294967295");
      }
      o.seed = static_cast<uint32_t>(s.get<int64_t>());
    }
  }
  return o;
}

Result<std::vector<std::string>> QueriesFromSpec(const json& spec) {
  std::vector<std::string> out;
  const json& q = Field(Field(spec, "rag"), "query");
  if (q.is_string()) return std::vector<std::string>{q.get<std::string>()};
  if (q.is_array()) {
    for (const auto& item : q) {
      if (!item.is_string())
        return InvalidArgument("spec.rag.query must be a string or a list of strings");
      out.push_back(item.get<std::string>());
    }
    if (!out.empty()) return out;
  }
  const json& items = Field(Field(spec, "data"), "items");
  if (items.is_array()) {
    for (const auto& item : items) {
      if (item.is_string()) {
        out.push_back(item.get<std::string>());
        continue;
      }
      bool found = false;
      for (const char* key : {"query", "text", "prompt"}) {
        if (Field(item, key).is_string()) {
          out.push_back(item[key].get<std::string>());
          found = true;
          break;
        }
      }
      if (!found) out.push_back(item.dump());
    }
  }
  if (out.empty()) return InvalidArgument("the task has no query: set rag.query or data.items");
  return out;
}

std::string FillPrompt(const std::string& tmpl, const std::vector<std::string>& passages,
                       const std::string& query) {
  std::string context;
  for (const auto& p : passages) {
    if (!context.empty()) context += "\n";
    context += p;
  }
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 9, "{context}") == 0) {
      out += context;
      i += 9;
    } else if (tmpl.compare(i, 7, "{query}") == 0) {
      out += query;
      i += 7;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

Result<json> RagExecutor::Run(executors::TaskContext& ctx) {
  auto started = std::chrono::steady_clock::now();
  FM_ASSIGN_OR_RETURN(RagOptions o, RagOptionsFromSpec(ctx.spec));
  FM_ASSIGN_OR_RETURN(std::vector<std::string> queries, QueriesFromSpec(ctx.spec));
  if (spec::ModelKey(ctx.spec).empty()) {
    return InvalidArgument(
        "a rag task needs spec.model: the embedding model its queries are "
        "embedded with (the collection's own model)");
  }
  const bool embedded = o.qdrant_url.empty();
  std::shared_ptr<const Collection> collection;
  vector::MetadataFilter filter;
  json qdrant_filter;
  if (embedded) {
    if (!ctx.fetch_collection) {
      return FailedPrecondition("rag: this worker has no server to fetch collection '" +
                                o.collection + "' from");
    }
    auto fetched = ctx.fetch_collection(o.collection, o.version);
    if (!fetched.ok()) {
      const Status& s = fetched.status();
      if (s.code() == StatusCode::kNotFound) {
        return FailedPrecondition("rag: collection '" + o.collection +
                                  "' not found: " + s.message());
      }
      return s;
    }
    collection = std::move(fetched).value();
    auto parsed = vector::MetadataFilter::Parse(o.filter);
    if (!parsed.ok()) return InvalidArgument("spec.rag.search." + parsed.status().message());
    filter = std::move(parsed).value();
    if (!collection->info().model.empty() && collection->info().model != spec::ModelKey(ctx.spec)) {
      ctx.log("[rag] warning: collection " + o.collection + " was built with " +
              collection->info().model + ", the queries are embedded with " +
              spec::ModelKey(ctx.spec));
    }
  } else {
    FM_ASSIGN_OR_RETURN(qdrant_filter, QdrantFilter(o.filter));
  }
  FM_ASSIGN_OR_RETURN(std::shared_ptr<inference::Engine> engine, models_->Acquire(ctx.spec));
  if (ctx.cancelled.load()) return Cancelled("rag cancelled");
  FM_ASSIGN_OR_RETURN(std::vector<std::vector<float>> vectors, engine->Embed(queries));

  QdrantTarget target;
  if (!embedded) {
    target.url = o.qdrant_url;
    target.collection = o.collection;
    if (!o.qdrant_api_key.empty()) {
      FM_ASSIGN_OR_RETURN(
          executors::CredentialGrant grant,
          executors::api::FetchGrant(ctx, json(o.qdrant_api_key), false, "spec.rag.qdrant"));
      FM_ASSIGN_OR_RETURN(target.api_key,
                          executors::api::ResolveCredentials(o.qdrant_api_key, grant.values));
    }
  }

  json out = json::array();
  std::vector<std::vector<std::string>> passages(queries.size());
  size_t total = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    if (ctx.cancelled.load()) return Cancelled("rag cancelled");
    json items = json::array();
    if (embedded) {
      if (vectors[i].size() != collection->index().dim()) {
        return FailedPrecondition(
            "rag: collection '" + o.collection + "' holds vectors of " +
            std::to_string(collection->index().dim()) +
            " dimensions; this task's model embeds into " + std::to_string(vectors[i].size()) +
            " (search with the model the collection was built with: " + collection->info().model +
            ")");
      }
      FM_ASSIGN_OR_RETURN(std::vector<CollectionHit> hits,
                          collection->Search(vectors[i], o.top_k, filter, o.score_threshold));
      for (const auto& h : hits) {
        items.push_back(
            {{"id", h.entry->id}, {"score", h.score}, {"payload", EntryPayload(*h.entry)}});
        passages[i].push_back(h.entry->text);
      }
    } else {
      auto searched = QdrantSearch(target, vectors[i], o.top_k, qdrant_filter, o.score_threshold,
                                   ctx.cancelled);
      if (!searched.ok() && searched.status().code() == StatusCode::kNotFound) {
        return FailedPrecondition("rag: " + searched.status().message());  // not worth a retry
      }
      FM_ASSIGN_OR_RETURN(std::vector<QdrantHit> hits, std::move(searched));
      for (auto& h : hits) {
        const json& text = Field(h.payload, "text");
        passages[i].push_back(text.is_string() ? text.get<std::string>() : h.payload.dump());
        items.push_back({{"id", h.id}, {"score", h.score}, {"payload", std::move(h.payload)}});
      }
    }
    total += items.size();
    out.push_back({{"index", i}, {"query", queries[i]}, {"items", std::move(items)}});
  }

  int64_t prompt_tokens = 0, completion_tokens = 0;
  if (o.generate) {
    inference::SamplingParams params;
    params.temperature = o.temperature;
    params.max_tokens = o.max_tokens;
    if (o.seed) params.seed = *o.seed;
    std::vector<std::shared_ptr<inference::Generation>> running;
    for (size_t i = 0; i < queries.size(); ++i) {
      FM_ASSIGN_OR_RETURN(
          auto g, engine->Submit(FillPrompt(o.prompt_template, passages[i], queries[i]), params));
      running.push_back(std::move(g));
    }
    for (size_t i = 0; i < running.size(); ++i) {
      while (!running[i]->WaitFor(kPoll)) {
        if (ctx.cancelled.load()) {
          for (auto& g : running) engine->Cancel(g);
          return Cancelled("rag cancelled");
        }
      }
      inference::Completion c = running[i]->completion();
      if (c.finish_reason == "error") return Internal("rag: generation failed: " + c.error);
      out[i]["answer"] = c.text;
      out[i]["finish_reason"] = c.finish_reason;
      prompt_tokens += c.prompt_tokens;
      completion_tokens += c.completion_tokens;
    }
  }

  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json usage = {
      {"latency_sec", seconds}, {"num_queries", queries.size()}, {"total_results", total}};
  if (o.generate) {
    usage["prompt_tokens"] = prompt_tokens;
    usage["completion_tokens"] = completion_tokens;
  }
  json result = {
      {"qdrant", {{"collection", o.collection}, {"url", embedded ? json() : json(o.qdrant_url)}}},
      {"embedding", {{"model", spec::ModelKey(ctx.spec)}}},
      {"search", {{"top_k", o.top_k}}},
      {"queries", std::move(out)},
      {"usage", std::move(usage)}};
  if (embedded) {
    result["collection"] = {{"name", collection->info().name},
                            {"version", collection->info().version},
                            {"index_digest", collection->info().index_digest}};
  }
  return result;
}

void RegisterRagExecutors(executors::ExecutorRegistry& registry,
                          std::shared_ptr<inference::ModelCache> models,
                          const CollectionExecutorConfig& collection_config) {
  registry.Register("rag", [models] { return std::make_unique<RagExecutor>(models); });
  registry.Register("collection", [models, collection_config] {
    return std::make_unique<CollectionExecutor>(models, collection_config);
  });
}

}  // namespace flowmesh::rag
