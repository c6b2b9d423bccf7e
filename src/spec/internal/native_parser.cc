#include "spec/internal/native_parser.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "spec/diagnostics.h"
#include "spec/source_doc.h"
#include "spec/task_schema.h"
#include "spec/workflow.h"

namespace flowmesh::spec::native_internal {

using nlohmann::json;

std::optional<WorkflowDef> NativeParser::Parse() {
  if (!root_.is_object()) {
    diag_->Add("", "a workflow must be a mapping with apiVersion, kind, metadata and spec");
    return std::nullopt;
  }
  CheckRootKeys();
  WorkflowDef def;
  ParseMetadata(&def);
  if (!CollectNodes()) return std::nullopt;
  NameIndex by_name = IndexNames();
  CheckDependencies(by_name);
  for (Node& node : nodes_) {
    if (diag_->full()) break;
    if (!node.duplicate) ValidateTaskSpec(&node, by_name);
  }
  std::vector<size_t> order = TopologicalOrder(by_name);
  ParseScheduleHint(by_name, &def);
  if (!diag_->empty()) return std::nullopt;
  def.tasks.reserve(order.size());
  for (size_t i : order) def.tasks.push_back(MakeTask(&nodes_[i], def));
  return def;
}

void NativeParser::CheckRootKeys() {
  for (auto it = root_.begin(); it != root_.end(); ++it) {
    if (std::find(RootKeys().begin(), RootKeys().end(), it.key()) != RootKeys().end()) continue;
    diag_->AddAtKey(it.key(), "unknown key '" + it.key() + "'" +
                                  DidYouMean(it.key(), RootKeys()) +
                                  "; allowed: " + Join(RootKeys(), ", "));
  }
  // The published parser takes any string in both; `kind` only informs (Workflow,
  // InferenceTask, EchoTask, …).
  auto version = root_.find("apiVersion");
  if (version == root_.end()) {
    diag_->Add("", "missing apiVersion (expected '" + std::string(kApiVersion) + "')");
  } else if (!version->is_string()) {
    diag_->Add("apiVersion", "apiVersion must be a string ('" + std::string(kApiVersion) +
                                 "'), got " + Quote(*version));
  } else if (version->get_ref<const std::string&>() != kApiVersion) {
    warn_->Add("apiVersion", "apiVersion " + Quote(*version) + " is read as '" +
                                 std::string(kApiVersion) + "'");
  }
  auto kind = root_.find("kind");
  if (kind == root_.end()) {
    diag_->Add("", "missing kind (e.g. 'Workflow' or 'InferenceTask')");
  } else if (!kind->is_string() || kind->get_ref<const std::string&>().empty()) {
    diag_->Add("kind", "kind must be a non-empty string (e.g. 'Workflow'), got " + Quote(*kind));
  }
}

void NativeParser::ParseMetadata(WorkflowDef* def) {
  auto it = root_.find("metadata");
  if (it == root_.end()) {
    diag_->Add("", "missing metadata (metadata.name is required)");
    return;
  }
  if (!it->is_object()) {
    diag_->Add("metadata", "metadata must be a mapping");
    return;
  }
  def->metadata = *it;
  auto name = it->find("name");
  if (name == it->end() || name->is_null()) {
    diag_->Add("metadata", "missing metadata.name");
  } else if (!name->is_string()) {
    diag_->Add("metadata.name", "metadata.name must be a string");
  } else if (!IsValidWorkflowName(name->get_ref<const std::string&>())) {
    diag_->Add(
        "metadata.name",
        "invalid workflow name " + Quote(*name) +
            ": use 1-128 letters, digits, '-', '_' or '.', starting with a letter or digit");
  } else {
    def->name = name->get<std::string>();
  }
  auto owner = it->find("owner");
  if (owner != it->end() && !owner->is_string() && !owner->is_null()) {
    diag_->Add("metadata.owner", "metadata.owner must be a string");
  }
  static const std::vector<std::string> kMetadataKeys = {"name", "owner", "annotations"};
  for (auto kv = it->begin(); kv != it->end(); ++kv) {
    if (std::find(kMetadataKeys.begin(), kMetadataKeys.end(), kv.key()) != kMetadataKeys.end())
      continue;
    diag_->AddAtKey("metadata." + kv.key(), "unknown key '" + kv.key() + "' in metadata" +
                                                DidYouMean(kv.key(), kMetadataKeys) +
                                                "; allowed: " + Join(kMetadataKeys, ", "));
  }
  auto annotations = it->find("annotations");
  if (annotations != it->end() && !annotations->is_object() && !annotations->is_null()) {
    diag_->Add("metadata.annotations", "metadata.annotations must be a mapping");
  } else if (annotations != it->end() && annotations->is_object()) {
    auto description = annotations->find("description");
    if (description != annotations->end() && !description->is_string() &&
        !description->is_null()) {
      diag_->Add("metadata.annotations.description",
                 "metadata.annotations.description must be a string, got " +
                     Quote(*description));
    }
  }
}

bool NativeParser::CollectNodes() {
  auto it = root_.find("spec");
  if (it == root_.end() || it->is_null()) {
    diag_->Add("", "missing spec");
    return false;
  }
  if (!it->is_object()) {
    diag_->Add("spec", "spec must be a mapping");
    return false;
  }
  json& spec = *it;
  bool has_stages = spec.contains("stages");
  bool has_graph = spec.contains("graph");
  if (has_stages && has_graph) {
    diag_->AddAtKey("spec.graph", "spec.stages and spec.graph cannot be combined");
    return false;
  }
  if (!has_stages && !has_graph) {
    Node node;
    node.name = "main";
    node.has_name = true;
    node.path = "spec";
    node.spec_path = "spec";
    ReadDependsOn(&spec, "spec", &node, /*take=*/false);
    node.spec = std::move(spec);  // nothing reads the document's spec after this
    spec = json::object();
    nodes_.push_back(std::move(node));
    return true;
  }
  // Everything else in the top-level spec is shared by every node.
  for (auto kv = spec.begin(); kv != spec.end(); ++kv) {
    if (kv.key() == "stages" || kv.key() == "graph") continue;
    if (kv.key() == "dependsOn") {
      diag_->AddAtKey("spec.dependsOn",
                      "dependsOn belongs on a stage or graph node, not on the top-level spec");
      continue;
    }
    shared_[kv.key()] = *kv;
  }
  std::string list_path;
  json* list = nullptr;
  if (has_stages) {
    list_path = "spec.stages";
    list = &spec["stages"];
  } else {
    json& graph = spec["graph"];
    if (!graph.is_object()) {
      diag_->Add("spec.graph", "spec.graph must be a mapping with a nodes list");
      return false;
    }
    for (auto kv = graph.begin(); kv != graph.end(); ++kv) {
      if (kv.key() != "nodes") {
        diag_->AddAtKey("spec.graph." + kv.key(), "unknown key '" + kv.key() + "'" +
                                                      DidYouMean(kv.key(), {"nodes"}) +
                                                      "; spec.graph holds only nodes");
      }
    }
    list_path = "spec.graph.nodes";
    if (!graph.contains("nodes")) {
      diag_->Add("spec.graph", "missing spec.graph.nodes");
      return false;
    }
    list = &graph["nodes"];
  }
  if (!list->is_array()) {
    diag_->Add(list_path, list_path + " must be a list");
    return false;
  }
  if (list->empty()) {
    diag_->Add(list_path, list_path + " is empty");
    return false;
  }
  if (list->size() > options_.max_tasks) {
    diag_->Add(list_path, list_path + " has " + std::to_string(list->size()) +
                              " entries, more than the limit max_tasks=" +
                              std::to_string(options_.max_tasks));
    return false;
  }
  nodes_.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    std::string path = JoinIndex(list_path, i);
    ReadEntry((*list)[i], path, i);
    if (has_stages && nodes_.back().deps_path.empty() && i > 0 && nodes_[i - 1].has_name) {
      // A stage without dependsOn runs after the one before it.
      nodes_.back().deps.push_back(nodes_[i - 1].name);
      nodes_.back().dep_paths.push_back(path);
      nodes_.back().deps_path = path;
    }
  }
  return true;
}

void NativeParser::ReadEntry(json& entry, const std::string& path, size_t index) {
  Node& node = nodes_.emplace_back();
  node.index = index;
  node.path = path;
  if (!entry.is_object()) {
    node.spec = shared_;
    diag_->Add(path, "expected a mapping with name, dependsOn and spec");
    return;
  }
  for (auto kv = entry.begin(); kv != entry.end(); ++kv) {
    if (std::find(EntryKeys().begin(), EntryKeys().end(), kv.key()) != EntryKeys().end())
      continue;
    diag_->AddAtKey(JoinKey(path, kv.key()),
                    "unknown key '" + kv.key() + "'" + DidYouMean(kv.key(), EntryKeys()) +
                        "; a node holds name, dependsOn and spec (task fields go under spec)");
  }
  auto name = entry.find("name");
  if (name == entry.end() || name->is_null()) {
    diag_->Add(path, "missing name");
  } else if (!name->is_string()) {
    diag_->Add(JoinKey(path, "name"), "name must be a string");
  } else {
    if (!IsValidNodeName(name->get_ref<const std::string&>())) {
      diag_->Add(JoinKey(path, "name"),
                 "invalid name " + Quote(*name) +
                     ": use 1-128 letters, digits, '-' or '_', starting with a letter or digit");
    }
    // Nothing reads the entry's name from the document after this.
    node.name = std::move(name->get_ref<std::string&>());
    node.has_name = true;
  }
  ReadDependsOn(&entry, path, &node, /*take=*/true);
  auto spec = entry.find("spec");
  bool merged = false;
  if (spec != entry.end() && !spec->is_null()) {
    node.spec_path = JoinKey(path, "spec");
    if (!spec->is_object()) {
      diag_->Add(node.spec_path, "spec must be a mapping");
    } else {
      ReadDependsOn(&*spec, node.spec_path, &node, /*take=*/false);
      // Nothing reads the entry's spec from the document after this.
      node.spec = std::move(*spec);
      *spec = json::object();
      MergeUnder(&node.spec, shared_);
      merged = true;
    }
  }
  if (!merged) node.spec = shared_;
}

void NativeParser::ReadDependsOn(json* holder_ptr, const std::string& holder_path, Node* node, bool take) {
  json& holder = *holder_ptr;
  auto it = holder.find("dependsOn");
  if (it == holder.end()) return;
  std::string path = JoinKey(holder_path, "dependsOn");
  node->deps_path = path;
  if (it->is_null()) return;
  if (!it->is_array()) {
    diag_->Add(path, "dependsOn must be a list of node names");
    return;
  }
  node->deps.reserve(node->deps.size() + it->size());
  node->dep_paths.reserve(node->dep_paths.size() + it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    json& dep = (*it)[i];
    std::string dep_path = JoinIndex(path, i);
    if (!dep.is_string() || dep.get_ref<const std::string&>().empty()) {
      diag_->Add(dep_path, "dependsOn entries must be node names, got " + Quote(dep));
      continue;
    }
    std::string& name = dep.get_ref<std::string&>();
    if (std::find(node->deps.begin(), node->deps.end(), name) != node->deps.end()) continue;
    node->deps.push_back(take ? std::move(name) : name);
    node->dep_paths.push_back(dep_path);
  }
}

NameIndex NativeParser::IndexNames() {
  NameIndex by_name;
  by_name.reserve(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& node = nodes_[i];
    if (!node.has_name) continue;
    auto [it, inserted] = by_name.emplace(node.name, i);
    if (!inserted) {
      node.duplicate = true;
      diag_->Add(JoinKey(node.path, "name"), "duplicate node name '" + node.name +
                                                 "' (first used at " + nodes_[it->second].path +
                                                 ")");
    }
  }
  return by_name;
}

void NativeParser::CheckDependencies(const NameIndex& by_name) {
  std::vector<std::string> names;  // for suggestions, filled on the first unknown name
  for (const Node& node : nodes_) {
    if (diag_->full()) return;
    for (size_t d = 0; d < node.deps.size(); ++d) {
      const std::string& dep = node.deps[d];
      if (node.has_name && dep == node.name) {
        diag_->Add(node.dep_paths[d], "'" + node.name + "' depends on itself");
      } else if (by_name.count(dep) == 0) {
        if (names.empty()) names = KnownNames(by_name);
        diag_->Add(node.dep_paths[d],
                   "unknown dependency '" + dep + "'" + DidYouMean(dep, names));
      }
    }
  }
}

std::vector<size_t> NativeParser::TopologicalOrder(const NameIndex& by_name) {
  size_t n = nodes_.size();
  std::vector<std::vector<size_t>> deps(n), dependents(n);
  std::vector<bool> in_graph(n, false);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = nodes_[i];
    if (!node.has_name || node.duplicate) continue;
    in_graph[i] = true;
    for (const std::string& dep : node.deps) {
      auto it = by_name.find(dep);
      if (it == by_name.end() || it->second == i) continue;
      deps[i].push_back(it->second);
      dependents[it->second].push_back(i);
    }
  }
  std::vector<size_t> waiting(n, 0);
  // Ready nodes, smallest document index first.
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i) {
    if (!in_graph[i]) continue;
    waiting[i] = deps[i].size();
    if (waiting[i] == 0) ready.push(i);
  }
  std::vector<size_t> order;
  order.reserve(n);
  std::vector<bool> done(n, false);
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    done[i] = true;
    for (size_t d : dependents[i]) {
      if (--waiting[d] == 0) ready.push(d);
    }
  }
  std::vector<bool> left(n, false);
  bool any_left = false;
  for (size_t i = 0; i < n; ++i) {
    left[i] = in_graph[i] && !done[i];
    any_left = any_left || left[i];
  }
  if (any_left) ReportCycles(deps, left);
  return order;
}

void NativeParser::ReportCycles(const std::vector<std::vector<size_t>>& deps, const std::vector<bool>& left) {
  constexpr size_t kMaxCycles = 20;
  size_t n = deps.size(), reported = 0;
  enum Color { kWhite, kGrey, kBlack };
  std::vector<Color> color(n, kWhite);
  std::vector<std::pair<size_t, size_t>> stack;  // node, next edge
  for (size_t start = 0; start < n && reported < kMaxCycles; ++start) {
    if (!left[start] || color[start] != kWhite) continue;
    stack.push_back({start, 0});
    color[start] = kGrey;
    while (!stack.empty() && reported < kMaxCycles) {
      auto& [v, edge] = stack.back();
      if (edge == deps[v].size()) {
        color[v] = kBlack;
        stack.pop_back();
        continue;
      }
      size_t w = deps[v][edge++];
      if (!left[w]) continue;
      if (color[w] == kWhite) {
        color[w] = kGrey;
        stack.push_back({w, 0});
      } else if (color[w] == kGrey) {
        std::vector<size_t> cycle;  // w ... v along dependsOn edges
        size_t k = stack.size();
        while (k > 0 && stack[k - 1].first != w) --k;
        for (size_t j = k - 1; j < stack.size(); ++j) cycle.push_back(stack[j].first);
        ReportCycle(cycle);
        ++reported;
      }
    }
    stack.clear();
  }
}

void NativeParser::ReportCycle(std::vector<size_t> cycle) {
  std::reverse(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  std::string text = "cycle: ";
  for (size_t i : cycle) text += nodes_[i].name + " -> ";
  text += nodes_[cycle.front()].name;
  const Node& first = nodes_[cycle.front()];
  diag_->Add(first.deps_path.empty() ? first.path : first.deps_path, text);
}

}  // namespace flowmesh::spec::native_internal
