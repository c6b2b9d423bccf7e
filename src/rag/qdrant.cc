#include "rag/qdrant.h"

#include "executors/api_client.h"
#include "http/http.h"

namespace flowmesh::rag {

using json = nlohmann::json;

Result<json> QdrantFilter(const json& filter) {
  if (filter.is_null() || (filter.is_object() && filter.empty())) return json();
  if (!filter.is_object()) return InvalidArgument("rag.search.filter must be a mapping");
  if (filter.contains("must") || filter.contains("should") || filter.contains("must_not") ||
      filter.contains("min_should")) {
    return filter;
  }
  json must = json::array(), must_not = json::array();
  auto scalar = [](const json& v) { return v.is_string() || v.is_number() || v.is_boolean(); };
  for (const auto& [field, spec] : filter.items()) {
    std::string where = "rag.search.filter." + field;
    if (scalar(spec)) {
      must.push_back({{"key", field}, {"match", {{"value", spec}}}});
      continue;
    }
    if (!spec.is_object() || spec.empty())
      return InvalidArgument(where + ": a value, or {$op: value}");
    json range = json::object();
    for (const auto& [op, value] : spec.items()) {
      if (op == "$eq" && scalar(value)) {
        must.push_back({{"key", field}, {"match", {{"value", value}}}});
      } else if (op == "$ne" && scalar(value)) {
        must_not.push_back({{"key", field}, {"match", {{"value", value}}}});
      } else if (op == "$in" && value.is_array() && !value.empty()) {
        must.push_back({{"key", field}, {"match", {{"any", value}}}});
      } else if ((op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") &&
                 value.is_number()) {
        range[op.substr(1)] = value;
      } else {
        return InvalidArgument(where + "." + op +
                               ": unknown operator or value (use $eq $ne $in "
                               "with values, $gt $gte $lt $lte with numbers)");
      }
    }
    if (!range.empty()) must.push_back({{"key", field}, {"range", range}});
  }
  json out = json::object();
  if (!must.empty()) out["must"] = std::move(must);
  if (!must_not.empty()) out["must_not"] = std::move(must_not);
  return out;
}

namespace {

Result<executors::HttpReply> Post(const QdrantTarget& t, const std::string& route, const json& body,
                                  const std::atomic<bool>& cancelled) {
  executors::api::ApiOptions options;
  options.timeout_s = t.timeout_s;
  options.retries = 2;
  options.response.max_body_bytes = size_t{64} << 20;
  executors::HttpExchange exchange;
  exchange.method = "POST";
  exchange.url = t.url + "/collections/" + http::PercentEncode(t.collection) + route;
  exchange.headers["Content-Type"] = "application/json";
  if (!t.api_key.empty()) exchange.headers["api-key"] = t.api_key;
  exchange.body = body.dump();
  exchange.timeout_s = t.timeout_s;
  exchange.max_body_bytes = options.response.max_body_bytes;
  std::string where = "POST " + t.url + "/collections/" + t.collection + route;
  return executors::api::SendWithRetries(options, exchange, where, cancelled);
}

std::string QdrantError(const executors::HttpReply& reply) {
  json j = json::parse(reply.body, nullptr, false);
  if (j.is_object() && j.contains("status") && j["status"].is_object()) {
    return j["status"].value("error", reply.body.substr(0, 200));
  }
  return reply.body.substr(0, 200);
}

}  // namespace

Result<std::vector<QdrantHit>> QdrantSearch(const QdrantTarget& t, const std::vector<float>& vector,
                                            size_t limit, const json& qdrant_filter,
                                            std::optional<float> score_threshold,
                                            const std::atomic<bool>& cancelled) {
  json body = {{"limit", limit}, {"with_payload", true}};
  if (!qdrant_filter.is_null()) body["filter"] = qdrant_filter;
  if (score_threshold) body["score_threshold"] = *score_threshold;
  json query_body = body;
  query_body["query"] = vector;
  FM_ASSIGN_OR_RETURN(executors::HttpReply reply, Post(t, "/points/query", query_body, cancelled));
  bool legacy = false;
  if (reply.status == 404 && QdrantError(reply).find("ollection") == std::string::npos) {
    // An older Qdrant without the query API.
    json search_body = body;
    search_body["vector"] = vector;
    FM_ASSIGN_OR_RETURN(reply, Post(t, "/points/search", search_body, cancelled));
    legacy = true;
  }
  std::string where = "qdrant " + t.url + " collection '" + t.collection + "'";
  if (reply.status == 404) return NotFound(where + ": " + QdrantError(reply));
  if (reply.status >= 500 || reply.status == 429) {
    return Unavailable(where + " answered HTTP " + std::to_string(reply.status) + ": " +
                       QdrantError(reply));
  }
  if (reply.status != 200) {
    return FailedPrecondition(where + " answered HTTP " + std::to_string(reply.status) + ": " +
                              QdrantError(reply));
  }
  json j = json::parse(reply.body, nullptr, false);
  const json* points = nullptr;
  if (j.is_object() && j.contains("result")) {
    const json& r = j["result"];
    if (legacy && r.is_array()) points = &r;
    if (!legacy && r.is_object() && r.contains("points") && r["points"].is_array())
      points = &r["points"];
    if (!legacy && r.is_array()) points = &r;
  }
  if (points == nullptr) return Internal(where + ": an answer without result points");
  std::vector<QdrantHit> hits;
  for (const auto& p : *points) {
    if (!p.is_object()) continue;
    QdrantHit h;
    h.id = p.value("id", json());
    h.score = p.value("score", 0.0f);
    h.payload = p.value("payload", json::object());
    hits.push_back(std::move(h));
  }
  return hits;
}

}  // namespace flowmesh::rag
