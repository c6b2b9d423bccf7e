#include "spec/n8n.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "spec/diagnostics.h"
#include "spec/internal/n8n_common.h"
#include "spec/internal/n8n_translator.h"
#include "spec/source_doc.h"

namespace flowmesh::spec {
namespace {

using nlohmann::json;
using n8n_internal::Find;
using n8n_internal::Quoted;
using n8n_internal::StartsWith;
using n8n_internal::Translator;

Status Failed(std::vector<SpecError> found, std::vector<SpecError>* errors) {
  if (found.empty()) found.push_back(SpecError{"", 0, 0, "n8n workflow is invalid"});
  std::string message = std::to_string(found.size()) +
                        (found.size() == 1 ? " problem" : " problems") + " in n8n workflow: " +
                        found.front().ToString();
  if (errors != nullptr) {
    for (SpecError& e : found) errors->push_back(std::move(e));
  }
  return InvalidArgument(std::move(message));
}

struct Translated {
  N8nTranslation translation;
  SourceDoc doc;
  std::map<std::string, std::string> origin_path;  // native node name -> "nodes[i]"
};

Result<Translated> Translate(const std::string& text, std::vector<SpecError>* errors) {
  std::vector<SpecError> load_errors;
  Result<SourceDoc> doc = LoadYaml(text, LoadLimits{}, &load_errors);
  for (SpecError& e : load_errors) {
    if (StartsWith(e.message, "invalid YAML")) e.message.replace(0, 12, "invalid JSON");
  }
  if (!doc.ok()) return Failed(std::move(load_errors), errors);
  Diagnostics diag(&doc.value());
  for (SpecError& e : load_errors) diag.AddAt(e.path, Mark{e.line, e.column}, e.message);
  Translator translator(doc.value(), &diag);
  std::optional<N8nTranslation> out = translator.Run();
  if (!diag.empty() || !out.has_value()) return Failed(diag.Take(), errors);
  Translated result{std::move(*out), std::move(doc.value()), {}};
  const json& nodes = result.doc.root()["nodes"];
  for (const auto& [task, name] : result.translation.node_origin) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].is_object() && nodes[i].value("name", json()) == name) {
        result.origin_path[task] = JoinIndex("nodes", i);
        break;
      }
    }
  }
  return result;
}

}  // namespace

Result<N8nTranslation> TranslateN8n(const std::string& text, std::vector<SpecError>* errors) {
  Result<Translated> t = Translate(text, errors);
  if (!t.ok()) return t.status();
  return std::move(t.value().translation);
}

Result<WorkflowDef> ParseN8nWorkflow(const std::string& text, std::vector<SpecError>* errors) {
  Result<Translated> t = Translate(text, errors);
  if (!t.ok()) return t.status();
  const N8nTranslation& tr = t.value().translation;
  std::vector<SpecError> native_errors;
  Result<WorkflowDef> def = ParseWorkflow(tr.document.dump(2), Format::kNative, &native_errors);
  // Point each problem (error or warning) at the n8n node its task came from.
  static const json kNoNodes = json::array();
  const json* nodes = &kNoNodes;
  if (const json* spec = Find(tr.document, "spec"); spec != nullptr) {
    if (const json* g = Find(*spec, "graph"); g != nullptr) {
      if (const json* n = Find(*g, "nodes"); n != nullptr && n->is_array()) nodes = n;
    }
  }
  const json& graph = *nodes;
  auto map_back = [&](const SpecError& e) {
    SpecError out{"", 0, 0, ""};
    std::string prefix = "spec.graph.nodes[";
    std::string where = e.path;
    if (StartsWith(e.path, prefix)) {
      size_t close = e.path.find(']', prefix.size());
      size_t index = close == std::string::npos
                         ? SIZE_MAX
                         : std::strtoul(e.path.substr(prefix.size(), close - prefix.size()).c_str(),
                                        nullptr, 10);
      if (index < graph.size()) {
        std::string task = graph[index].value("name", "");
        auto origin = t.value().origin_path.find(task);
        if (origin != t.value().origin_path.end()) {
          out.path = origin->second;
          Mark m = t.value().doc.ValueMark(out.path);
          out.line = m.line;
          out.column = m.column;
          auto name = tr.node_origin.find(task);
          where = "n8n node " + Quoted(name->second) + " (translated as task '" + task + "', " +
                  e.path.substr(close + 1 + (close + 1 < e.path.size() && e.path[close + 1] == '.')) +
                  ")";
        }
      }
    } else if (StartsWith(e.path, "metadata.name")) {
      out.path = "name";
      Mark m = t.value().doc.ValueMark("name");
      out.line = m.line;
      out.column = m.column;
    }
    out.message = where.empty() ? e.message : where + ": " + e.message;
    return out;
  };
  if (def.ok()) {
    for (SpecError& w : def->warnings) w = map_back(w);
    return def;
  }
  std::vector<SpecError> mapped;
  for (const SpecError& e : native_errors) mapped.push_back(map_back(e));
  return Failed(std::move(mapped), errors);
}

}  // namespace flowmesh::spec
