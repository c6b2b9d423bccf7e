#include "spec/internal/n8n_translator.h"

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
#include "spec/source_doc.h"

namespace flowmesh::spec::n8n_internal {

std::optional<N8nTranslation> Translator::Run() {
  if (!root_.is_object()) {
    diag_->Add("", "an n8n export must be a JSON object with nodes and connections");
    return std::nullopt;
  }
  if (!ReadNodes()) return std::nullopt;
  ReadConnections();
  if (!diag_->empty()) return std::nullopt;
  std::vector<size_t> order;
  if (!Order(&order)) return std::nullopt;
  NameTasks();
  N8nTranslation out;
  json graph_nodes = json::array();
  for (size_t n : order) {
    if (diag_->full() || OverBudget()) break;
    Visit(n);
  }
  for (size_t n = 0; n < nodes_.size(); ++n) {
    if (diag_->full() || OverBudget()) break;
    N8nNode& node = nodes_[n];
    if (node.task.empty()) continue;
    json entry = MakeTask(n);
    out.node_origin[node.task] = node.name;
    graph_nodes.push_back(std::move(entry));
  }
  if (!diag_->empty()) return std::nullopt;
  if (graph_nodes.empty()) {
    diag_->Add("nodes",
               "the n8n workflow has no nodes that become tasks (supported: Basic LLM Chain, "
               "OpenAI, HTTP Request)");
    return std::nullopt;
  }
  std::string title = StringAt(root_, "name", "n8n-workflow");
  out.document = json{
      {"apiVersion", "flowmesh/v1"},
      {"kind", "Workflow"},
      {"metadata",
       {{"name", Slug(title, "n8n")},
        {"annotations", {{"description", "Imported from n8n workflow " + Quoted(title)}}}}},
      {"spec", {{"graph", {{"nodes", std::move(graph_nodes)}}}}}};
  return out;
}

bool Translator::ReadNodes() {
  const json* nodes = Find(root_, "nodes");
  if (nodes == nullptr) {
    diag_->Add("", "missing nodes (an n8n export has nodes and connections)");
    return false;
  }
  if (!nodes->is_array()) {
    diag_->Add("nodes", "nodes must be a list");
    return false;
  }
  if (nodes->size() > kMaxNodes) {
    diag_->Add("nodes", "the n8n workflow has " + std::to_string(nodes->size()) +
                            " nodes, more than the limit of " + std::to_string(kMaxNodes));
    return false;
  }
  for (size_t i = 0; i < nodes->size(); ++i) {
    const json& entry = (*nodes)[i];
    N8nNode node;
    node.path = JoinIndex("nodes", i);
    if (!entry.is_object()) {
      diag_->Add(node.path, "a node must be an object with name and type");
      nodes_.push_back(std::move(node));
      continue;
    }
    const json* name = Find(entry, "name");
    const json* type = Find(entry, "type");
    if (name == nullptr || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      diag_->Add(name == nullptr ? node.path : JoinKey(node.path, "name"),
                 "every node needs a non-empty string name");
    } else {
      node.name = name->get<std::string>();
    }
    if (type == nullptr || !type->is_string()) {
      diag_->Add(type == nullptr ? node.path : JoinKey(node.path, "type"),
                 "node " + Quoted(node.name) + " needs a string type");
    } else {
      node.type = type->get<std::string>();
      node.kind = KindOf(node.type);
    }
    const json* disabled = Find(entry, "disabled");
    if (disabled != nullptr) {
      if (!disabled->is_boolean()) {
        diag_->Add(JoinKey(node.path, "disabled"), "disabled must be true or false");
      } else {
        node.disabled = disabled->get<bool>();
      }
    }
    const json* params = Find(entry, "parameters");
    if (params != nullptr) {
      if (!params->is_object()) {
        diag_->Add(JoinKey(node.path, "parameters"), "parameters must be an object");
      } else {
        node.params = *params;
      }
    }
    const json* creds = Find(entry, "credentials");
    if (creds != nullptr && creds->is_object()) node.credentials = *creds;
    // The published importer takes a chain's task type from its notes, a JSON object.
    if (const json* notes = Find(entry, "notes"); notes != nullptr && notes->is_string()) {
      json parsed = ParseLimited(notes->get<std::string>());
      if (parsed.is_object() && parsed.contains("taskType") && parsed["taskType"].is_string()) {
        node.notes_task_type = parsed["taskType"].get<std::string>();
      }
    }
    if (!node.name.empty() && !node.type.empty()) {
      node.valid = true;
      if (node.kind == Kind::kUnsupported && !node.disabled) {
        diag_->Add(JoinKey(node.path, "type"),
                   "node " + Quoted(node.name) + " has unsupported type " + Quoted(node.type) +
                       SuggestType(node.type) +
                       "; supported: " + Join(SupportedTypes(), ", "));
      }
      auto [it, inserted] = by_name_.emplace(node.name, nodes_.size());
      if (!inserted) {
        diag_->Add(JoinKey(node.path, "name"), "duplicate node name " + Quoted(node.name) +
                                                   " (first used at " +
                                                   nodes_[it->second].path + ")");
      }
    }
    nodes_.push_back(std::move(node));
  }
  return true;
}

std::vector<std::string> Translator::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, index] : by_name_) names.push_back(name);
  return names;
}

void Translator::ReadConnections() {
  const json* conns = Find(root_, "connections");
  if (conns == nullptr) return;  // an export with a single node has none
  if (!conns->is_object()) {
    diag_->Add("connections", "connections must be an object keyed by source node name");
    return;
  }
  for (auto src = conns->begin(); src != conns->end(); ++src) {
    std::string src_path = JoinKey("connections", src.key());
    auto found = by_name_.find(src.key());
    if (found == by_name_.end()) {
      diag_->AddAtKey(src_path, "connection from unknown node " + Quoted(src.key()) +
                                    DidYouMean(src.key(), Names()));
      continue;
    }
    size_t from = found->second;
    if (!src->is_object()) {
      diag_->Add(src_path, "connections of " + Quoted(src.key()) + " must be an object");
      continue;
    }
    for (auto kind = src->begin(); kind != src->end(); ++kind) {
      std::string kind_path = JoinKey(src_path, kind.key());
      bool main = kind.key() == "main";
      if (!main && kind.key() != "ai_languageModel") {
        diag_->AddAtKey(kind_path, "unsupported connection type " + Quoted(kind.key()) +
                                       " from " + Quoted(src.key()) +
                                       " (supported: main, ai_languageModel)");
        continue;
      }
      if (kind->is_null()) continue;
      if (!kind->is_array()) {
        diag_->Add(kind_path, "connections must be a list of output slots");
        continue;
      }
      for (size_t slot = 0; slot < kind->size(); ++slot) {
        const json& targets = (*kind)[slot];
        std::string slot_path = JoinIndex(kind_path, slot);
        if (targets.is_null()) continue;
        if (!targets.is_array()) {
          diag_->Add(slot_path, "an output slot must be a list of connections");
          continue;
        }
        for (size_t t = 0; t < targets.size(); ++t) {
          ReadEdge(from, main, slot, targets[t], JoinIndex(slot_path, t));
        }
      }
    }
  }
}

void Translator::ReadEdge(size_t from, bool main, size_t slot, const json& edge, const std::string& path) {
  const json* target = Find(edge, "node");
  if (target == nullptr || !target->is_string()) {
    diag_->Add(path, "a connection needs the name of its target node");
    return;
  }
  const std::string& name = target->get_ref<const std::string&>();
  auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    diag_->Add(JoinKey(path, "node"), "connection from " + Quoted(nodes_[from].name) +
                                          " to unknown node " + Quoted(name) +
                                          DidYouMean(name, Names()));
    return;
  }
  size_t to = it->second;
  N8nNode& src = nodes_[from];
  N8nNode& dst = nodes_[to];
  if (!main) {
    if (!IsModelKind(src.kind) || dst.kind != Kind::kChainLlm) {
      diag_->Add(path, "a language model connection must go from a chat/inference model node "
                       "to a Basic LLM Chain, not from " +
                           Quoted(src.name) + " to " + Quoted(dst.name));
      return;
    }
    if (!src.disabled) dst.models.emplace_back(from, path);
    return;
  }
  if (IsModelKind(src.kind)) {
    diag_->Add(path, "model node " + Quoted(src.name) +
                         " can only be connected to the Model input of a Basic LLM Chain");
    return;
  }
  if (dst.kind == Kind::kTrigger || dst.kind == Kind::kNote || IsModelKind(dst.kind)) {
    diag_->Add(JoinKey(path, "node"),
               "node " + Quoted(dst.name) + " (" + dst.type + ") cannot take a main input");
    return;
  }
  if (src.outs.size() <= slot) src.outs.resize(slot + 1);
  src.outs[slot].emplace_back(to, path);
  dst.inputs.emplace_back(from, slot);
}

bool Translator::Order(std::vector<size_t>* order) {
  size_t n = nodes_.size();
  std::vector<size_t> waiting(n, 0);
  for (size_t i = 0; i < n; ++i) waiting[i] = nodes_[i].inputs.size();
  std::deque<size_t> ready;
  for (size_t i = 0; i < n; ++i) {
    if (waiting[i] == 0) ready.push_back(i);
  }
  while (!ready.empty()) {
    size_t i = ready.front();
    ready.pop_front();
    order->push_back(i);
    for (const auto& slot : nodes_[i].outs) {
      for (const auto& [to, path] : slot) {
        if (--waiting[to] == 0) ready.push_back(to);
      }
    }
  }
  if (order->size() == n) return true;
  // Walk back along inputs that are still waiting until a node repeats.
  size_t start = 0;
  while (waiting[start] == 0) ++start;
  std::vector<size_t> seen_at(n, SIZE_MAX);
  std::vector<size_t> walk;
  size_t cur = start;
  while (seen_at[cur] == SIZE_MAX) {
    seen_at[cur] = walk.size();
    walk.push_back(cur);
    for (const auto& [from, slot] : nodes_[cur].inputs) {
      if (waiting[from] > 0) {
        cur = from;
        break;
      }
    }
  }
  std::vector<size_t> cycle(walk.begin() + static_cast<std::ptrdiff_t>(seen_at[cur]), walk.end());
  std::reverse(cycle.begin(), cycle.end());  // in flow order
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  std::string text = "cycle in connections: ";
  for (size_t i : cycle) text += nodes_[i].name + " -> ";
  text += nodes_[cycle.front()].name;
  diag_->AddAtKey(JoinKey("connections", nodes_[cycle.front()].name), text);
  return false;
}

void Translator::NameTasks() {
  std::set<std::string> used;
  for (N8nNode& node : nodes_) {
    if (!node.valid || node.disabled || !IsTaskKind(node.kind)) continue;
    std::string base = Slug(node.name, "node");
    std::string name = base;
    for (int k = 2; used.count(name) > 0; ++k) name = base + "-" + std::to_string(k);
    used.insert(name);
    node.task = name;
  }
  // The published importer names its graph nodes after the n8n nodes, so a Set node's
  // JSON refers to upstream tasks by n8n name ({"node": "Inference A"} in a template
  // column, `${Inference A.items.0.output}`); those names are translated with the tasks.
  for (const N8nNode& node : nodes_) {
    if (!node.task.empty() && node.task != node.name && used.count(node.name) == 0) {
      renamed_[node.name] = node.task;
    }
  }
}

void Translator::RenameReferences(json* spec) {
  if (renamed_.empty()) return;
  if (auto data = spec->find("data"); data != spec->end()) RenameNodeKeys(&*data);
  RenamePlaceholders(spec);
}

void Translator::RenameNodeKeys(json* value) {
  if (value->is_array()) {
    for (json& item : *value) RenameNodeKeys(&item);
    return;
  }
  if (!value->is_object()) return;
  for (auto it = value->begin(); it != value->end(); ++it) {
    if (it.key() == "node" && it->is_string()) {
      auto found = renamed_.find(it->get_ref<const std::string&>());
      if (found != renamed_.end()) *it = found->second;
    } else {
      RenameNodeKeys(&*it);
    }
  }
}

void Translator::RenamePlaceholders(json* value) {
  if (value->is_array() || value->is_object()) {
    for (json& item : *value) RenamePlaceholders(&item);
    return;
  }
  if (!value->is_string()) return;
  const std::string& text = value->get_ref<const std::string&>();
  if (text.find("${") == std::string::npos) return;
  std::string out;
  size_t pos = 0;
  bool changed = false;
  while (true) {
    size_t open = text.find("${", pos);
    size_t close = open == std::string::npos ? open : text.find('}', open + 2);
    if (close == std::string::npos) break;
    std::string inner = text.substr(open + 2, close - open - 2);
    size_t dot = inner.find('.');
    auto found = dot == std::string::npos ? renamed_.end() : renamed_.find(inner.substr(0, dot));
    out.append(text, pos, open - pos);
    if (found != renamed_.end()) {
      out += "${" + found->second + inner.substr(dot) + "}";
      changed = true;
    } else {
      out.append(text, open, close + 1 - open);
    }
    pos = close + 1;
  }
  if (!changed) return;
  out.append(text, pos, std::string::npos);
  *value = std::move(out);
}

std::string Translator::RouteKey(const Route& r) {
  std::string key = std::to_string(r.task) + "|" + std::to_string(r.cond);
  for (const SetField& f : r.fields) key += "|" + f.name + "=" + f.value.dump();
  return key;
}

void Translator::AddRoute(N8nNode& node, Route route, std::set<std::string>* seen) {
  work_ += 1 + route.fields.size();
  if (OverBudget()) return;
  if (!seen->insert(RouteKey(route)).second) return;
  if (node.in_routes.size() >= kMaxRoutes) {
    diag_->Add(node.path, "too many distinct paths lead into node " + Quoted(node.name) +
                              " (limit " + std::to_string(kMaxRoutes) + ")");
    return;
  }
  node.in_routes.push_back(std::move(route));
}

std::vector<Route> Translator::OutRoutes(size_t n, size_t slot) const {
  const N8nNode& node = nodes_[n];
  if (node.kind == Kind::kTrigger && !node.disabled) return {Route{}};
  if (!node.task.empty()) {
    Route r;
    r.task = static_cast<int>(n);
    return {r};
  }
  if (node.disabled) {  // passes its input through its first output
    if (slot != 0) return {};
    return node.in_routes;
  }
  if (node.kind == Kind::kSet) {
    std::vector<Route> out = node.in_routes;
    // A Set node nothing leads into (the published exports wire section nodes straight
    // into their task) starts a way of its own, as a trigger would.
    if (node.inputs.empty()) out.push_back(Route{});
    for (Route& r : out) {
      for (const SetField& f : node.own_fields) {
        auto same = std::find_if(r.fields.begin(), r.fields.end(),
                                 [&](const SetField& g) { return g.name == f.name; });
        if (same != r.fields.end()) r.fields.erase(same);
        r.fields.push_back(f);
      }
    }
    return out;
  }
  if (node.kind == Kind::kIf) {
    int cond = slot == 0 ? node.cond_true : slot == 1 ? node.cond_false : -1;
    if (cond < 0) return {};
    std::vector<Route> out = node.in_routes;
    for (Route& r : out) {
      if (r.cond >= 0) {
        r.cond = -2;  // nested conditions: reported where they arrive
      } else {
        r.cond = cond;
      }
    }
    return out;
  }
  return {};
}

void Translator::Visit(size_t n) {
  N8nNode& node = nodes_[n];
  std::set<std::string> seen;
  for (const auto& [from, slot] : node.inputs) {
    for (Route& r : OutRoutes(from, slot)) AddRoute(node, std::move(r), &seen);
  }
  if (node.disabled || !node.valid) return;
  if (node.kind == Kind::kSet) ReadSetFields(n);
  if (node.kind == Kind::kIf) ReadIf(n);
}

bool Translator::OverBudget() {
  if (work_ <= kMaxWork) return false;
  if (!budget_reported_) {
    budget_reported_ = true;
    diag_->Add("nodes", "the n8n workflow is too large or too interconnected to translate "
                        "(work limit " + std::to_string(kMaxWork) + " reached)");
  }
  return true;
}

}  // namespace flowmesh::spec::n8n_internal
