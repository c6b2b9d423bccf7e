// `flowmesh collection create|list|info|delete|query`: named vector indexes of the
// organisation (docs/internals/collections.md). `create` reads the rows from a JSONL file
// (one object or string per line) or a JSON list, and submits the build; `--wait` follows
// it until the version is ready or failed. `query` waits on the server for the answer.
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/context.h"
#include "cli/output.h"

namespace flowmesh::cli {

using nlohmann::json;

namespace {

// Rows of a .json list or a JSONL file; InvalidArgument naming the file and line.
Result<json> ReadRows(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    json rows = json::parse(text, nullptr, false);
    if (rows.is_discarded() || !rows.is_array()) return InvalidArgument(path + ": not a JSON list");
    return rows;
  }
  json rows = json::array();
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json row = json::parse(line, nullptr, false);
    if (row.is_discarded()) return InvalidArgument(path + ":" + std::to_string(number) + ": not JSON");
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return InvalidArgument(path + ": no rows");
  return rows;
}

// A GGUF path, or a model section given as JSON.
json ModelSection(const std::string& model) {
  json j = json::parse(model, nullptr, false);
  if (!j.is_discarded() && j.is_object()) return j;
  return {{"source", {{"type", "local"}, {"identifier", model}}}};
}

void PrintVersion(Context& ctx, const json& c) {
  ctx.io.out << "collection " << c.value("name", "") << " version " << c.value("version", 0)
             << ": " << c.value("status", "");
  if (c.value("status", "") == "ready") {
    ctx.io.out << " (" << c.value("count", 0) << " vectors of " << c.value("dim", 0)
               << " dims from " << c.value("documents", 0) << " documents, "
               << c.value("bytes", 0) << " bytes)";
  }
  if (c.contains("error")) ctx.io.out << ": " << c.value("error", "");
  ctx.io.out << "\n";
}

}  // namespace

int CollectionCreate(Context& ctx) {
  const std::string& name = ctx.inv.names.at(0);
  auto rows = ReadRows(ctx.inv.collection_file);
  if (!rows.ok()) {
    ctx.io.err << "collection create: " << rows.status().message() << "\n";
    return kExitFailure;
  }
  json body = {{"name", name}, {"items", *rows}, {"model", ModelSection(ctx.inv.collection_model)}};
  if (!ctx.inv.text_field.empty()) body["text_field"] = ctx.inv.text_field;
  if (!ctx.inv.id_field.empty()) body["id_field"] = ctx.inv.id_field;
  if (!ctx.inv.metadata_fields.empty()) body["metadata_fields"] = ctx.inv.metadata_fields;
  if (!ctx.inv.metric.empty()) body["metric"] = ctx.inv.metric;
  json chunking = json::object();
  if (ctx.inv.chunk_tokens > 0) chunking["max_tokens"] = ctx.inv.chunk_tokens;
  if (ctx.inv.chunk_overlap >= 0) chunking["overlap"] = ctx.inv.chunk_overlap;
  if (!chunking.empty()) body["chunking"] = chunking;
  auto reply = ctx.Call("POST", "/collections", body.dump(), {{"Content-Type", "application/json"}});
  if (!reply.ok) return reply.exit_code;
  json c = reply.json;
  while (ctx.inv.wait && c.value("status", "") == "building") {
    std::this_thread::sleep_for(std::chrono::duration<double>(ctx.inv.interval));
    auto info = ctx.Get("/collections/" + http::PercentEncode(name));
    if (!info.ok) return info.exit_code;
    for (const auto& v : info.json.value("versions", json::array())) {
      if (v.value("version", 0) == c.value("version", 0)) c = v;
    }
  }
  if (ctx.inv.json) {
    ctx.PrintJson(c);
  } else {
    PrintVersion(ctx, c);
  }
  return c.value("status", "") == "failed" ? kExitFailure : kExitOk;
}

int CollectionList(Context& ctx) {
  auto reply = ctx.Get("/collections");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  ctx.io.out << FormatRecords(reply.json.value("collections", json::array()),
                              {"name", "version", "status", "count", "dim", "bytes", "model",
                               "updated_at"});
  return kExitOk;
}

int CollectionInfo(Context& ctx) {
  auto reply = ctx.Get("/collections/" + http::PercentEncode(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  for (const auto& v : reply.json.value("versions", json::array())) PrintVersion(ctx, v);
  return kExitOk;
}

int CollectionDelete(Context& ctx) {
  const std::string& name = ctx.inv.names.at(0);
  auto reply = ctx.Call("DELETE", "/collections/" + http::PercentEncode(name));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << "collection " << name << " deleted\n";
  }
  return kExitOk;
}

int CollectionQuery(Context& ctx) {
  const std::string& name = ctx.inv.names.at(0);
  json body = {{"queries", std::vector<std::string>(ctx.inv.names.begin() + 1, ctx.inv.names.end())}};
  if (ctx.inv.top_k > 0) body["top_k"] = ctx.inv.top_k;
  if (ctx.inv.collection_version > 0) body["version"] = ctx.inv.collection_version;
  if (!ctx.inv.filter_json.empty()) {
    json filter = json::parse(ctx.inv.filter_json, nullptr, false);
    if (filter.is_discarded() || !filter.is_object()) {
      ctx.io.err << "collection query: --filter must be a JSON object, e.g. '{\"lang\": \"en\"}'\n";
      return kExitFailure;
    }
    body["filter"] = filter;
  }
  auto reply = ctx.Call("POST", "/collections/" + http::PercentEncode(name) + "/query", body.dump(),
                        {{"Content-Type", "application/json"}});
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json || reply.response.status != 200) {
    ctx.io.out << reply.response.body << "\n";
    return reply.response.status == 200 ? kExitOk : kExitFailure;
  }
  for (const auto& q : reply.json.value("queries", json::array())) {
    ctx.io.out << "query " << q.value("index", 0) << ": " << q.value("query", "") << "\n";
    for (const auto& hit : q.value("items", json::array())) {
      json payload = hit.value("payload", json::object());
      std::string text = payload.is_object() ? payload.value("text", "") : "";
      if (text.size() > 100) text = text.substr(0, 97) + "...";
      ctx.io.out << "  " << hit.value("score", 0.0) << "  " << hit.value("id", json()).dump()
                 << "  " << text << "\n";
    }
  }
  return kExitOk;
}

}  // namespace flowmesh::cli
