// Translates one n8n workflow export into a native document (spec/n8n.h). The members are
// defined in internal/n8n_graph.cc (nodes, connections, routes), n8n_values.cc
// (expressions, Set and IF nodes) and n8n_tasks.cc (task nodes). Single-threaded, one use.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/internal/n8n_common.h"
#include "spec/n8n.h"
#include "spec/source_doc.h"

namespace flowmesh::spec::n8n_internal {

class Translator {
 public:
  Translator(const SourceDoc& doc, Diagnostics* diag) : root_(doc.root()), diag_(diag) {}

  std::optional<N8nTranslation> Run();

 private:
  bool ReadNodes();

  std::vector<std::string> Names() const;

  void ReadConnections();

  void ReadEdge(size_t from, bool main, size_t slot, const json& edge, const std::string& path);

  // Kahn over main edges; a cycle is named from the node where it is first met.
  bool Order(std::vector<size_t>* order);

  void NameTasks();

  // `{node: <n8n name>}` in data (at any depth: list sources, columns, template columns,
  // params, image_embedding) and `${<n8n name>.…}` in any string -> the task's name.
  void RenameReferences(json* spec);

  void RenameNodeKeys(json* value);

  void RenamePlaceholders(json* value);

  static std::string RouteKey(const Route& r);

  void AddRoute(N8nNode& node, Route route, std::set<std::string>* seen);

  // The routes leaving `n` through output `slot`.
  std::vector<Route> OutRoutes(size_t n, size_t slot) const;

  void Visit(size_t n);

  // ---- expressions -------------------------------------------------------------------

  // Is `ancestor` upstream of `n` along main connections?
  bool IsUpstream(size_t ancestor, size_t n) const;

  // Translates one `{{ … }}` expression seen at node `n`. nullopt: keep it as text.
  // `extra_deps` collects upstream tasks named with $('Node').
  std::optional<json> MapExpression(size_t n, std::string_view expr,
                                    std::set<size_t>* extra_deps) const;

  // An n8n parameter value: strings starting with '=' are expressions whose `{{ … }}`
  // parts become `${node.path}` references where they name upstream data.
  json Resolve(size_t n, const json& value, std::set<size_t>* extra_deps) const;

  // ---- Set ---------------------------------------------------------------------------

  // A Set value by its declared type: numbers and booleans may arrive as strings, objects
  // and arrays as JSON text.
  static json Typed(const json& value, const std::string& type);

  void AddField(size_t n, const json& name, const json& value, const std::string& type,
                const std::string& path);

  void ReadSetFields(size_t n);

  static bool IsDataFragment(const std::string& name);

  // The fragment name a raw Set node called `name` stands for ("" when none): Data, Input
  // and Format -> data; Resource; Training; Runtime -> model.vllm; Omni; Checkpoint.
  static std::string SectionOfSetNode(const std::string& name);

  // Data*/Input*/Format* -> data, Resource* -> resources, Training* -> training,
  // Runtime* -> model (engine options), Omni* -> omni. A key after the prefix and a separator
  // (`Training.learning_rate`) sets that key; otherwise an object value is merged in and
  // (for data) strings and lists become list items.
  void ApplyFragment(const SetField& f, json* spec);

  static void MergeInto(json* base, const json& over);

  // ---- IF ----------------------------------------------------------------------------

  int AddCond(json value, std::string error, std::string path);

  void ReadIf(size_t n);

  // The conditions of an IF node's two branches: `ref` ("${task.path}") equals `equals`.
  void AddIfConds(N8nNode* node_ptr, const std::string& ref, const json& equals,
                  const std::string& label);

  // ---- tasks -------------------------------------------------------------------------

  std::string CredentialRef(const N8nNode& node, const char* type) const;

  // An OpenAI-compatible chat completion call as an `api` task.
  json OpenAiChat(const N8nNode& model_node, const std::string& model, const json& options,
                  const json& messages, const char* cred_type) const;

  static std::string RoleOf(const std::string& template_type);

  json ChainLlm(size_t n, std::set<size_t>* extra, bool has_data);

  json OpenAiNode(size_t n, std::set<size_t>* extra);

  static std::string UrlEncode(const std::string& s);

  // name/value pairs from {parameters: [{name, value}]} (v3+) or {parameter: [...]} (v1-2).
  json Pairs(size_t n, const json* holder, std::set<size_t>* extra) const;

  json Http(size_t n, std::set<size_t>* extra);

  json MakeTask(size_t n);

  const json& root_;
  Diagnostics* diag_;
  std::vector<N8nNode> nodes_;
  std::unordered_map<std::string, size_t> by_name_;
  std::vector<Cond> conds_;
  // n8n names of task nodes -> their task names, where they differ.
  std::map<std::string, std::string> renamed_;
  // While a task is built: the Set fields its own parameters read through expressions
  // (they are used there and not merged in again as fragments).
  std::set<std::string>* consumed_ = nullptr;
  mutable size_t work_ = 0;
  bool budget_reported_ = false;

  bool OverBudget();
};

}  // namespace flowmesh::spec::n8n_internal
