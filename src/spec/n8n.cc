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
#include "spec/source_doc.h"

namespace flowmesh::spec {
namespace {

using nlohmann::json;

constexpr size_t kMaxName = 128;
constexpr size_t kMaxRoutes = 256;  // distinct paths reaching one node
constexpr size_t kMaxNodes = 10000;
// Bounds the translation's own work (paths, Set fields carried along them, upstream
// searches) so that a hostile export cannot make it quadratic in time or memory.
constexpr size_t kMaxWork = 20000000;
constexpr std::string_view kOpenAiUrl = "https://api.openai.com/v1";

enum class Kind {
  kTrigger,
  kNote,
  kSet,
  kIf,
  kChainLlm,
  kHfModel,
  kOpenAiChatModel,
  kOpenAi,
  kHttp,
  kUnsupported,
};

Kind KindOf(const std::string& type) {
  static const std::unordered_map<std::string, Kind> kKinds = {
      {"n8n-nodes-base.manualTrigger", Kind::kTrigger},
      {"n8n-nodes-base.webhook", Kind::kTrigger},
      {"n8n-nodes-base.scheduleTrigger", Kind::kTrigger},
      {"n8n-nodes-base.start", Kind::kTrigger},
      {"n8n-nodes-base.stickyNote", Kind::kNote},
      {"n8n-nodes-base.set", Kind::kSet},
      {"n8n-nodes-base.if", Kind::kIf},
      {"n8n-nodes-base.httpRequest", Kind::kHttp},
      {"@n8n/n8n-nodes-langchain.chainLlm", Kind::kChainLlm},
      {"@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference", Kind::kHfModel},
      {"@n8n/n8n-nodes-langchain.lmChatOpenAi", Kind::kOpenAiChatModel},
      {"@n8n/n8n-nodes-langchain.openAi", Kind::kOpenAi},
      {"n8n-nodes-base.openAi", Kind::kOpenAi},
  };
  auto it = kKinds.find(type);
  return it == kKinds.end() ? Kind::kUnsupported : it->second;
}

const std::vector<std::string>& SupportedTypes() {
  static const std::vector<std::string> kTypes = {
      "n8n-nodes-base.manualTrigger",
      "n8n-nodes-base.webhook",
      "n8n-nodes-base.scheduleTrigger",
      "n8n-nodes-base.start",
      "n8n-nodes-base.set",
      "n8n-nodes-base.if",
      "n8n-nodes-base.httpRequest",
      "n8n-nodes-base.openAi",
      "@n8n/n8n-nodes-langchain.chainLlm",
      "@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference",
      "@n8n/n8n-nodes-langchain.lmChatOpenAi",
      "@n8n/n8n-nodes-langchain.openAi",
  };
  return kTypes;
}

std::string_view ShortType(std::string_view type) {
  size_t dot = type.rfind('.');
  return dot == std::string_view::npos ? type : type.substr(dot + 1);
}

// " (did you mean '…'?)" comparing only the part after the package name.
std::string SuggestType(const std::string& type) {
  std::string_view word = ShortType(type);
  if (word.size() > 128) return "";
  const std::string* best = nullptr;
  size_t best_distance = SIZE_MAX;
  for (const std::string& candidate : SupportedTypes()) {
    size_t d = EditDistance(word, ShortType(candidate));
    if (d < best_distance) {
      best_distance = d;
      best = &candidate;
    }
  }
  if (best == nullptr ||
      best_distance > std::max<size_t>(1, word.size() / 4)) {
    return "";
  }
  return " (did you mean '" + *best + "'?)";
}

bool IsTaskKind(Kind k) {
  return k == Kind::kChainLlm || k == Kind::kOpenAi || k == Kind::kHttp;
}
bool IsModelKind(Kind k) { return k == Kind::kHfModel || k == Kind::kOpenAiChatModel; }

std::string Quoted(const std::string& s) {
  return "'" + (s.size() > 200 ? s.substr(0, 200) + "..." : s) + "'";
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

// "Basic LLM Chain" -> "basic-llm-chain": a valid native node name.
std::string Slug(const std::string& name, std::string_view fallback) {
  std::string out;
  for (char c : name) {
    if (IsNameChar(c) && static_cast<unsigned char>(c) < 0x80) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= kMaxName - 8) break;
  }
  while (!out.empty() && (out.back() == '-' || out.back() == '_')) out.pop_back();
  if (out.empty() || !std::isalnum(static_cast<unsigned char>(out[0]))) {
    out = std::string(fallback) + (out.empty() ? "" : "-" + out);
  }
  return out;
}

const json* Find(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string StringAt(const json& object, const char* key, const std::string& fallback = "") {
  const json* v = Find(object, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
}

// n8n "resource locator" values: "gpt-4o" or {"__rl": true, "value": "gpt-4o", "mode": "list"}.
std::string LocatorValue(const json* v) {
  if (v == nullptr) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return StringAt(*v, "value");
  return "";
}

// One step of an n8n data path: a key or an index.
struct Segment {
  std::string key;
  std::optional<size_t> index;
};

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
}

// Parses `.a.b[0]["c d"]` (all of `s`). False when it is anything else.
bool ParsePath(std::string_view s, std::vector<Segment>* out) {
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '.') {
      size_t start = ++i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      if (i == start) return false;
      out->push_back(Segment{std::string(s.substr(start, i - start)), std::nullopt});
    } else if (s[i] == '[') {
      ++i;
      if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
        char quote = s[i++];
        size_t end = s.find(quote, i);
        if (end == std::string_view::npos || end + 1 >= s.size() || s[end + 1] != ']') return false;
        out->push_back(Segment{std::string(s.substr(i, end - i)), std::nullopt});
        i = end + 2;
      } else {
        size_t start = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        if (i == start || i - start > 9 || i >= s.size() || s[i] != ']') return false;
        out->push_back(Segment{"", std::stoul(std::string(s.substr(start, i - start)))});
        ++i;
      }
    } else {
      return false;
    }
  }
  return true;
}

// Native reference path ("items[0].output"), or "" when a key cannot be written in one.
std::string NativePath(const std::vector<Segment>& path) {
  std::string out;
  for (const Segment& seg : path) {
    if (seg.index.has_value()) {
      if (out.empty()) return "";  // a reference starts with a key
      out += "[" + std::to_string(*seg.index) + "]";
      continue;
    }
    if (seg.key.empty() || !std::all_of(seg.key.begin(), seg.key.end(), IsNameChar)) return "";
    if (!out.empty()) out += '.';
    out += seg.key;
  }
  return out;
}

// Where an n8n expression takes its data from.
struct ExprSource {
  bool direct = false;  // $json / $input: the node's own input
  std::string node;     // $('Name') / $node["Name"]
  std::vector<Segment> path;
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// Recognises `$json.a`, `$input.item.json.a`, `$('Node').item.json.a`,
// `$('Node').first().json.a`, `$node["Node"].json.a`.
std::optional<ExprSource> ParseSource(std::string_view e) {
  ExprSource src;
  std::string_view rest;
  if (StartsWith(e, "$json")) {
    src.direct = true;
    rest = e.substr(5);
  } else if (StartsWith(e, "$input.")) {
    src.direct = true;
    rest = e.substr(6);
    for (std::string_view acc : {".item.json", ".first().json", ".last().json"}) {
      if (StartsWith(rest, acc)) {
        rest = rest.substr(acc.size());
        goto parsed;
      }
    }
    return std::nullopt;
  } else if (StartsWith(e, "$(") || StartsWith(e, "$node[")) {
    bool call = e[1] == '(';
    size_t i = call ? 2 : 6;
    if (i >= e.size() || (e[i] != '\'' && e[i] != '"')) return std::nullopt;
    char quote = e[i++];
    size_t end = e.find(quote, i);
    if (end == std::string_view::npos || end + 1 >= e.size()) return std::nullopt;
    if (e[end + 1] != (call ? ')' : ']')) return std::nullopt;
    src.node = std::string(e.substr(i, end - i));
    rest = e.substr(end + 2);
    const std::vector<std::string_view> accessors =
        call ? std::vector<std::string_view>{".item.json", ".first().json", ".last().json"}
             : std::vector<std::string_view>{".json"};
    for (std::string_view acc : accessors) {
      if (StartsWith(rest, acc)) {
        rest = rest.substr(acc.size());
        goto parsed;
      }
    }
    return std::nullopt;
  } else {
    return std::nullopt;
  }
parsed:
  if (!ParsePath(rest, &src.path) || src.path.empty()) return std::nullopt;
  return src;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

const json* Walk(const json& value, const std::vector<Segment>& path, size_t from) {
  const json* cur = &value;
  for (size_t i = from; i < path.size(); ++i) {
    if (path[i].index.has_value()) {
      if (!cur->is_array() || *path[i].index >= cur->size()) return nullptr;
      cur = &(*cur)[*path[i].index];
    } else {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(path[i].key);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    }
  }
  return cur;
}

// JSON text inside a parameter, parsed only when it nests no deeper than the loader allows
// (deeper values would make later recursive walks unsafe).
json ParseLimited(const std::string& s) {
  constexpr int kMaxDepth = 64;
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return json(json::value_t::discarded);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return json::parse(s, nullptr, false);
}

std::string AsText(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The fields an n8n Set node assigns, in order: name -> (value, path of the value).
struct SetField {
  std::string name;
  json value;
  std::string path;
};

// A way into a node: from an upstream task (or a trigger), through Set / IF / disabled
// nodes that add fields or a condition on the way.
struct Route {
  int task = -1;                  // n8n index of the upstream task; -1 from a trigger
  std::vector<SetField> fields;   // later fields win
  int cond = -1;                  // index into Translator::conds_
};

struct Cond {
  json value;         // {node, field, equals}
  std::string error;  // non-empty: this branch cannot be translated
  std::string path;   // where to report `error`
};

struct N8nNode {
  std::string path;  // "nodes[3]"
  std::string name;
  std::string type;
  Kind kind = Kind::kUnsupported;
  bool disabled = false;
  bool valid = false;
  json params = json::object();
  json credentials = json::object();
  std::string notes_task_type;  // taskType in the node's notes ({"taskType": "sft"}), if any
  std::string task;  // native node name, for tasks
  std::vector<std::pair<size_t, size_t>> inputs;                 // (source, output slot)
  std::vector<std::vector<std::pair<size_t, std::string>>> outs;  // per slot: (target, path)
  std::vector<std::pair<size_t, std::string>> models;            // ai_languageModel sources
  std::vector<Route> in_routes;
  std::vector<SetField> own_fields;  // Set nodes: after expression resolution
  int cond_true = -1, cond_false = -1;
};

class Translator {
 public:
  Translator(const SourceDoc& doc, Diagnostics* diag) : root_(doc.root()), diag_(diag) {}

  std::optional<N8nTranslation> Run() {
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

 private:
  bool ReadNodes() {
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

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [name, index] : by_name_) names.push_back(name);
    return names;
  }

  void ReadConnections() {
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

  void ReadEdge(size_t from, bool main, size_t slot, const json& edge, const std::string& path) {
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

  // Kahn over main edges; a cycle is named from the node where it is first met.
  bool Order(std::vector<size_t>* order) {
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

  void NameTasks() {
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

  // `{node: <n8n name>}` in data (at any depth: list sources, columns, template columns,
  // params, image_embedding) and `${<n8n name>.…}` in any string -> the task's name.
  void RenameReferences(json* spec) {
    if (renamed_.empty()) return;
    if (auto data = spec->find("data"); data != spec->end()) RenameNodeKeys(&*data);
    RenamePlaceholders(spec);
  }

  void RenameNodeKeys(json* value) {
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

  void RenamePlaceholders(json* value) {
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

  static std::string RouteKey(const Route& r) {
    std::string key = std::to_string(r.task) + "|" + std::to_string(r.cond);
    for (const SetField& f : r.fields) key += "|" + f.name + "=" + f.value.dump();
    return key;
  }

  void AddRoute(N8nNode& node, Route route, std::set<std::string>* seen) {
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

  // The routes leaving `n` through output `slot`.
  std::vector<Route> OutRoutes(size_t n, size_t slot) const {
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

  void Visit(size_t n) {
    N8nNode& node = nodes_[n];
    std::set<std::string> seen;
    for (const auto& [from, slot] : node.inputs) {
      for (Route& r : OutRoutes(from, slot)) AddRoute(node, std::move(r), &seen);
    }
    if (node.disabled || !node.valid) return;
    if (node.kind == Kind::kSet) ReadSetFields(n);
    if (node.kind == Kind::kIf) ReadIf(n);
  }

  // ---- expressions -------------------------------------------------------------------

  // Is `ancestor` upstream of `n` along main connections?
  bool IsUpstream(size_t ancestor, size_t n) const {
    std::vector<bool> seen(nodes_.size(), false);
    std::vector<size_t> stack = {n};
    while (!stack.empty()) {
      size_t cur = stack.back();
      stack.pop_back();
      for (const auto& [from, slot] : nodes_[cur].inputs) {
        if (from == ancestor) return true;
        if (!seen[from]) {
          seen[from] = true;
          stack.push_back(from);
          if (++work_ > kMaxWork) return false;
        }
      }
    }
    return false;
  }

  // Translates one `{{ … }}` expression seen at node `n`. nullopt: keep it as text.
  // `extra_deps` collects upstream tasks named with $('Node').
  std::optional<json> MapExpression(size_t n, std::string_view expr,
                                    std::set<size_t>* extra_deps) const {
    std::optional<ExprSource> src = ParseSource(Trim(expr));
    if (!src.has_value()) return std::nullopt;
    const N8nNode& node = nodes_[n];
    if (src->direct) {
      // A field a Set node assigned on every way in.
      if (!src->path.front().index.has_value() && !node.in_routes.empty()) {
        const json* value = nullptr;
        bool all = true;
        for (const Route& r : node.in_routes) {
          auto f = std::find_if(r.fields.rbegin(), r.fields.rend(), [&](const SetField& g) {
            return g.name == src->path.front().key;
          });
          if (f == r.fields.rend() || (value != nullptr && *value != f->value)) {
            all = false;
            break;
          }
          value = &f->value;
        }
        if (all && value != nullptr) {
          if (consumed_ != nullptr) consumed_->insert(src->path.front().key);
          const json* at = Walk(*value, src->path, 1);
          if (at != nullptr) return *at;
          return std::nullopt;
        }
      }
      std::set<int> tasks;
      for (const Route& r : node.in_routes) tasks.insert(r.task);
      if (tasks.size() != 1 || *tasks.begin() < 0) return std::nullopt;
      std::string path = NativePath(src->path);
      if (path.empty()) return std::nullopt;
      return json("${" + nodes_[static_cast<size_t>(*tasks.begin())].task + "." + path + "}");
    }
    auto it = by_name_.find(src->node);
    if (it == by_name_.end() || !IsUpstream(it->second, n)) return std::nullopt;
    const N8nNode& named = nodes_[it->second];
    if (named.disabled) return std::nullopt;
    if (named.kind == Kind::kSet) {
      for (auto f = named.own_fields.rbegin(); f != named.own_fields.rend(); ++f) {
        if (src->path.front().index.has_value() || f->name != src->path.front().key) continue;
        if (consumed_ != nullptr) consumed_->insert(f->name);
        const json* at = Walk(f->value, src->path, 1);
        if (at != nullptr) return *at;
        return std::nullopt;
      }
      return std::nullopt;
    }
    if (named.task.empty()) return std::nullopt;
    std::string path = NativePath(src->path);
    if (path.empty()) return std::nullopt;
    if (extra_deps != nullptr) extra_deps->insert(it->second);
    return json("${" + named.task + "." + path + "}");
  }

  // An n8n parameter value: strings starting with '=' are expressions whose `{{ … }}`
  // parts become `${node.path}` references where they name upstream data.
  json Resolve(size_t n, const json& value, std::set<size_t>* extra_deps) const {
    if (value.is_object()) {
      json out = json::object();
      for (auto it = value.begin(); it != value.end(); ++it) {
        out[it.key()] = Resolve(n, *it, extra_deps);
      }
      return out;
    }
    if (value.is_array()) {
      json out = json::array();
      for (const json& v : value) out.push_back(Resolve(n, v, extra_deps));
      return out;
    }
    if (!value.is_string()) return value;
    const std::string& s = value.get_ref<const std::string&>();
    if (s.empty() || s[0] != '=') return value;
    std::string_view body = std::string_view(s).substr(1);
    std::string_view whole = Trim(body);
    if (StartsWith(whole, "{{") && whole.size() >= 4 &&
        whole.substr(whole.size() - 2) == "}}" &&
        whole.find("{{", 2) == std::string_view::npos) {
      std::optional<json> mapped =
          MapExpression(n, whole.substr(2, whole.size() - 4), extra_deps);
      if (mapped.has_value()) return *mapped;
    }
    std::string out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t open = body.find("{{", pos);
      if (open == std::string_view::npos) break;
      size_t close = body.find("}}", open + 2);
      if (close == std::string_view::npos) break;
      out += body.substr(pos, open - pos);
      std::optional<json> mapped = MapExpression(n, body.substr(open + 2, close - open - 2),
                                                 extra_deps);
      if (mapped.has_value()) {
        out += AsText(*mapped);
      } else {
        out += body.substr(open, close + 2 - open);
      }
      pos = close + 2;
    }
    out += body.substr(pos);
    return json(out);
  }

  // ---- Set ---------------------------------------------------------------------------

  // A Set value by its declared type: numbers and booleans may arrive as strings, objects
  // and arrays as JSON text.
  static json Typed(const json& value, const std::string& type) {
    if (!value.is_string()) return value;
    const std::string& s = value.get_ref<const std::string&>();
    if (type == "number" || type == "numberValue") {
      json parsed = ParseLimited(s);
      return parsed.is_number() ? parsed : value;
    }
    if (type == "boolean" || type == "booleanValue") {
      if (s == "true") return true;
      if (s == "false") return false;
      return value;
    }
    if (type == "object" || type == "array" || type == "objectValue" || type == "arrayValue") {
      json parsed = ParseLimited(s);
      return parsed.is_discarded() ? value : parsed;
    }
    return value;
  }

  void AddField(size_t n, const json& name, const json& value, const std::string& type,
                const std::string& path) {
    if (!name.is_string() || name.get_ref<const std::string&>().empty()) {
      diag_->Add(path, "a Set field needs a name");
      return;
    }
    json resolved = Resolve(n, value, nullptr);
    nodes_[n].own_fields.push_back(
        SetField{name.get<std::string>(), Typed(resolved, type), JoinKey(path, "value")});
  }

  void ReadSetFields(size_t n) {
    const N8nNode& node = nodes_[n];
    const json& p = node.params;
    std::string base = JoinKey(node.path, "parameters");
    std::string mode = StringAt(p, "mode", "manual");
    if (mode == "raw") {
      const json* raw = Find(p, "jsonOutput");
      json parsed = raw != nullptr ? Typed(Resolve(n, *raw, nullptr), "object") : json();
      if (!parsed.is_object()) {
        diag_->Add(JoinKey(base, "jsonOutput"),
                   "Set node " + Quoted(node.name) + ": jsonOutput must be a JSON object");
        return;
      }
      // The published importer reads a raw Set node by its own name: "Data…" holds the
      // data section, "Resource…" the resources and so on. That applies when no key of the
      // JSON names a section itself.
      std::string section = SectionOfSetNode(node.name);
      bool keys_name_sections = false;
      for (auto it = parsed.begin(); it != parsed.end(); ++it) {
        keys_name_sections = keys_name_sections || !SectionOfSetNode(it.key()).empty();
      }
      if (!section.empty() && !keys_name_sections) {
        nodes_[n].own_fields.push_back(SetField{section, parsed, JoinKey(base, "jsonOutput")});
        return;
      }
      for (auto it = parsed.begin(); it != parsed.end(); ++it) {
        nodes_[n].own_fields.push_back(SetField{it.key(), *it, JoinKey(base, "jsonOutput")});
      }
      return;
    }
    // typeVersion 3.3+: assignments.assignments[{name, value, type}]
    if (const json* a = Find(p, "assignments"); a != nullptr) {
      const json* list = Find(*a, "assignments");
      if (list != nullptr && list->is_array()) {
        for (size_t i = 0; i < list->size(); ++i) {
          const json& item = (*list)[i];
          std::string path = JoinIndex(JoinKey(JoinKey(base, "assignments"), "assignments"), i);
          if (!item.is_object()) continue;
          AddField(n, item.value("name", json()), item.value("value", json()),
                   StringAt(item, "type", "string"), path);
        }
      }
    }
    // typeVersion 3.0-3.2: fields.values[{name, type, stringValue|numberValue|…}]
    if (const json* f = Find(p, "fields"); f != nullptr) {
      const json* list = Find(*f, "values");
      if (list != nullptr && list->is_array()) {
        for (size_t i = 0; i < list->size(); ++i) {
          const json& item = (*list)[i];
          std::string path = JoinIndex(JoinKey(JoinKey(base, "fields"), "values"), i);
          if (!item.is_object()) continue;
          std::string type = StringAt(item, "type", "stringValue");
          AddField(n, item.value("name", json()), item.value(type, json()), type, path);
        }
      }
    }
    // typeVersion 1-2: values.{string,number,boolean}[{name, value}]
    if (const json* v = Find(p, "values"); v != nullptr && v->is_object()) {
      for (const char* type : {"string", "number", "boolean"}) {
        const json* list = Find(*v, type);
        if (list == nullptr || !list->is_array()) continue;
        for (size_t i = 0; i < list->size(); ++i) {
          const json& item = (*list)[i];
          std::string path = JoinIndex(JoinKey(JoinKey(base, "values"), type), i);
          if (!item.is_object()) continue;
          AddField(n, item.value("name", json()), item.value("value", json()), type, path);
        }
      }
    }
  }

  static bool IsDataFragment(const std::string& name) {
    return StartsWith(name, "Data") || StartsWith(name, "Input") || StartsWith(name, "Format");
  }

  // The fragment name a raw Set node called `name` stands for ("" when none): Data, Input
  // and Format -> data; Resource; Training; Runtime -> model.vllm; Omni; Checkpoint.
  static std::string SectionOfSetNode(const std::string& name) {
    static const std::vector<std::pair<std::string, std::string>> kNames = {
        {"Data", "Data"},         {"Input", "Data"},          {"Format", "Data"},
        {"Resource", "Resource"}, {"Training", "Training"},   {"Runtime", "Runtime.vllm"},
        {"Omni", "Omni"},         {"Checkpoint", "Checkpoint"}};
    for (const auto& [prefix, fragment] : kNames) {
      if (StartsWith(name, prefix)) return fragment;
    }
    return "";
  }

  // Data*/Input*/Format* -> data, Resource* -> resources, Training* -> training,
  // Runtime* -> model (engine options), Omni* -> omni. A key after the prefix and a separator
  // (`Training.learning_rate`) sets that key; otherwise an object value is merged in and
  // (for data) strings and lists become list items.
  void ApplyFragment(const SetField& f, json* spec) {
    static const std::vector<std::pair<std::string, std::string>> kPrefixes = {
        {"Data", "data"},         {"Input", "data"},     {"Format", "data"},
        {"Resource", "resources"}, {"Training", "training"}, {"Runtime", "model"},
        {"Omni", "omni"}};
    for (const auto& [prefix, section] : kPrefixes) {
      if (!StartsWith(f.name, prefix)) continue;
      std::string rest = f.name.substr(prefix.size());
      if (rest == "s" || StartsWith(rest, "s.") || StartsWith(rest, "s_") ||
          StartsWith(rest, "s:")) {
        rest = rest.substr(1);
      }
      json& target = (*spec)[section];
      if (!target.is_object()) target = json::object();
      if (!rest.empty() && (rest[0] == '.' || rest[0] == '_' || rest[0] == ':')) {
        json* cur = &target;
        size_t start = 1;
        while (true) {
          size_t dot = rest.find('.', start);
          std::string key = rest.substr(start, dot == std::string::npos ? dot : dot - start);
          if (key.empty()) {
            diag_->Add(f.path, "Set field " + Quoted(f.name) + " has an empty key");
            return;
          }
          if (dot == std::string::npos) {
            (*cur)[key] = f.value;
            return;
          }
          json& next = (*cur)[key];
          if (!next.is_object()) next = json::object();
          cur = &next;
          start = dot + 1;
        }
      }
      if (f.value.is_object()) {
        MergeInto(&target, f.value);
      } else if (section == "data" && (f.value.is_string() || f.value.is_array())) {
        if (!target.contains("type")) target["type"] = "list";
        json& items = target["items"];
        if (!items.is_array()) items = json::array();
        if (f.value.is_array()) {
          for (const json& v : f.value) items.push_back(v);
        } else {
          items.push_back(f.value);
        }
      } else {
        diag_->Add(f.path, "Set field " + Quoted(f.name) + " maps to " + section +
                               " and needs an object value or a key after the prefix (e.g. " +
                               prefix + ".key)");
      }
      return;
    }
  }

  static void MergeInto(json* base, const json& over) {
    if (!base->is_object() || !over.is_object()) {
      *base = over;
      return;
    }
    for (auto it = over.begin(); it != over.end(); ++it) {
      auto existing = base->find(it.key());
      if (existing != base->end() && existing->is_object() && it->is_object()) {
        MergeInto(&*existing, *it);
      } else {
        (*base)[it.key()] = *it;
      }
    }
  }

  // ---- IF ----------------------------------------------------------------------------

  int AddCond(json value, std::string error, std::string path) {
    conds_.push_back(Cond{std::move(value), std::move(error), std::move(path)});
    return static_cast<int>(conds_.size()) - 1;
  }

  void ReadIf(size_t n) {
    N8nNode& node = nodes_[n];
    std::string base = JoinKey(node.path, "parameters.conditions");
    const json* conds = Find(node.params, "conditions");
    std::string label = "IF node " + Quoted(node.name);
    auto fail = [&](const std::string& path, const std::string& message) {
      diag_->Add(path, label + ": " + message);
    };
    if (conds == nullptr || !conds->is_object()) {
      fail(node.path, "has no conditions");
      return;
    }
    json left, right;
    std::string type, op;
    std::string item_path;
    if (const json* list = Find(*conds, "conditions"); list != nullptr) {  // typeVersion 2
      if (!list->is_array() || list->empty()) {
        fail(JoinKey(base, "conditions"), "has no conditions");
        return;
      }
      if (list->size() > 1) {
        fail(JoinKey(base, "conditions"),
             std::to_string(list->size()) + " conditions combined with '" +
                 StringAt(*conds, "combinator", "and") +
                 "' cannot be translated; a task condition tests one field (split it into "
                 "one IF per test)");
        return;
      }
      const json& c = (*list)[0];
      item_path = JoinIndex(JoinKey(base, "conditions"), 0);
      left = c.value("leftValue", json());
      right = c.value("rightValue", json());
      const json* oper = Find(c, "operator");
      type = oper != nullptr ? StringAt(*oper, "type", "string") : "string";
      op = oper != nullptr ? StringAt(*oper, "operation", "equals") : "equals";
      const json* options = Find(*conds, "options");
      if (type == "string" && options != nullptr && options->value("caseSensitive", true) == false) {
        fail(JoinKey(JoinKey(base, "options"), "caseSensitive"),
             "a case-insensitive comparison cannot be translated (conditions compare exactly)");
        return;
      }
    } else {  // typeVersion 1: {string|number|boolean: [{value1, operation, value2}]}
      size_t count = 0;
      for (const char* t : {"string", "number", "boolean", "dateTime"}) {
        const json* list = Find(*conds, t);
        if (list == nullptr || !list->is_array()) continue;
        for (size_t i = 0; i < list->size(); ++i) {
          if (count++ > 0) continue;
          const json& c = (*list)[i];
          item_path = JoinIndex(JoinKey(base, t), i);
          type = t;
          left = c.value("value1", json());
          right = c.value("value2", json());
          op = StringAt(c, "operation", type == "number" ? "smaller" : "equal");
          if (op == "equal") op = "equals";
          if (type == "boolean" && op == "equals" && c.find("value2") == c.end()) right = false;
        }
      }
      if (count == 0) {
        fail(base, "has no conditions");
        return;
      }
      if (count > 1) {
        fail(base, std::to_string(count) +
                       " conditions cannot be translated; a task condition tests one field "
                       "(split it into one IF per test)");
        return;
      }
    }
    json equals;
    if (op == "equals" && (type == "string" || type == "number" || type == "boolean")) {
      json r = Resolve(n, right, nullptr);
      if (r.is_string() && r.get_ref<const std::string&>().find("{{") != std::string::npos) {
        fail(JoinKey(item_path, "rightValue"),
             "the value compared against must be a constant, got " + AsText(right));
        return;
      }
      equals = Typed(r, type);
      if (type == "number" && !equals.is_number()) {
        fail(JoinKey(item_path, "rightValue"), "expects a number, got " + AsText(right));
        return;
      }
      if (type == "boolean" && !equals.is_boolean()) {
        fail(JoinKey(item_path, "rightValue"), "expects true or false, got " + AsText(right));
        return;
      }
    } else if (type == "boolean" && (op == "true" || op == "false")) {
      equals = op == "true";
    } else {
      fail(JoinKey(item_path, "operator"),
           "operator '" + op + "' on " + type +
               " cannot be translated; a task condition only tests that a field equals a "
               "value (string/number/boolean 'is equal to', boolean 'is true'/'is false')");
      return;
    }
    std::set<size_t> extra;
    json l = Resolve(n, left, &extra);
    std::string ref = l.is_string() ? l.get<std::string>() : "";
    if (!StartsWith(ref, "${") || ref.back() != '}' || ref.find("${", 2) != std::string::npos) {
      fail(JoinKey(item_path, "leftValue"),
           "the tested value must be a field of an upstream task's result, such as "
           "{{ $json.items[0].output }}, got " +
               AsText(left));
      return;
    }
    std::string inner = ref.substr(2, ref.size() - 3);
    size_t dot = inner.find('.');
    std::string field = inner.substr(dot + 1);
    std::string dotted;  // items[0].output -> items.0.output
    for (char c : field) {
      if (c == '[') {
        dotted += '.';
      } else if (c != ']') {
        dotted += c;
      }
    }
    json value = {{"node", inner.substr(0, dot)}, {"field", dotted}, {"equals", equals}};
    node.cond_true = AddCond(value, "", "");
    if (equals.is_boolean()) {
      json negated = value;
      negated["equals"] = !equals.get<bool>();
      node.cond_false = AddCond(negated, "", "");
    } else {
      node.cond_false = AddCond(
          json(), label + ": its false branch (output 1) cannot be translated: a condition "
                          "can only test that " + dotted + " equals " + equals.dump() +
                          ", not that it differs",
          node.path);
    }
  }

  // ---- tasks -------------------------------------------------------------------------

  std::string CredentialRef(const N8nNode& node, const char* type) const {
    // Only the credential's display name is used; ids and anything else stay behind.
    const json* cred = Find(node.credentials, type);
    if (cred == nullptr) return "";
    std::string name = StringAt(*cred, "name");
    std::string clean;
    for (char c : name) {
      if (c != '{' && c != '}' && c != '$' && static_cast<unsigned char>(c) >= 0x20) clean += c;
    }
    return clean.empty() ? "" : "{{credential:" + clean + "}}";
  }

  // An OpenAI-compatible chat completion call as an `api` task.
  json OpenAiChat(const N8nNode& model_node, const std::string& model, const json& options,
                  const json& messages, const char* cred_type) const {
    std::string base(kOpenAiUrl);
    if (std::string url = StringAt(options, "baseURL"); !url.empty()) base = url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    json body = {{"model", model}, {"messages", messages}};
    static const std::vector<std::pair<const char*, const char*>> kOptions = {
        {"temperature", "temperature"},
        {"topP", "top_p"},
        {"frequencyPenalty", "frequency_penalty"},
        {"presencePenalty", "presence_penalty"},
        {"maxTokens", "max_tokens"}};
    for (const auto& [from, to] : kOptions) {
      const json* v = Find(options, from);
      if (v == nullptr || !v->is_number()) continue;
      if (std::string(from) == "maxTokens" && v->get<double>() < 0) continue;  // -1: no limit
      body[to] = *v;
    }
    const json* format = Find(options, "responseFormat");
    if ((format != nullptr && format->is_string() && format->get<std::string>() == "json_object") ||
        options.value("jsonOutput", false) == true) {
      body["response_format"] = {{"type", "json_object"}};
    }
    json api = {{"url", base + "/chat/completions"},
                {"method", "POST"},
                {"headers", {{"Content-Type", "application/json"}}},
                {"body", body},
                {"response", {{"parse_json", true}}}};
    if (std::string ref = CredentialRef(model_node, cred_type); !ref.empty()) {
      api["headers"]["Authorization"] = "Bearer " + ref;
    }
    if (const json* retries = Find(options, "maxRetries"); retries && retries->is_number_integer()) {
      api["retries"] = *retries;
    }
    json spec = {{"taskType", "api"}, {"api", std::move(api)}};
    if (const json* t = Find(options, "timeout"); t && t->is_number() && t->get<double>() > 0) {
      spec["timeoutSeconds"] = t->get<double>() / 1000.0;
    }
    return spec;
  }

  static std::string RoleOf(const std::string& template_type) {
    if (template_type == "AIMessagePromptTemplate") return "assistant";
    if (template_type == "HumanMessagePromptTemplate") return "user";
    return "system";
  }

  json ChainLlm(size_t n, std::set<size_t>* extra, bool has_data) {
    const N8nNode& node = nodes_[n];
    const json& p = node.params;
    std::string label = "Basic LLM Chain " + Quoted(node.name);
    if (node.models.empty()) {
      diag_->Add(node.path, label +
                                " has no language model connected (connect a Hugging Face "
                                "Inference Model or an OpenAI Chat Model to its Model input)");
      return json::object();
    }
    if (node.models.size() > 1) {
      diag_->Add(node.models[1].second, label + " has more than one language model connected");
      return json::object();
    }
    const N8nNode& model = nodes_[node.models[0].first];
    json messages = json::array();
    if (const json* mv = Find(p, "messages"); mv != nullptr) {
      const json* list = Find(*mv, "messageValues");
      if (list != nullptr && list->is_array()) {
        for (const json& m : *list) {
          if (!m.is_object()) continue;
          json content = Resolve(n, m.value("message", json("")), extra);
          messages.push_back(
              {{"role", RoleOf(StringAt(m, "type", "SystemMessagePromptTemplate"))},
               {"content", AsText(content)}});
        }
      }
    }
    json prompt;
    std::string prompt_type = StringAt(p, "promptType", "");
    if (const json* text = Find(p, "text"); text != nullptr && prompt_type != "auto") {
      prompt = Resolve(n, *text, extra);
    } else if (const json* old = Find(p, "prompt"); old != nullptr) {
      prompt = Resolve(n, *old, extra);
    } else {
      // "Take from previous node automatically": the input's chatInput field.
      json implicit = Resolve(n, json("={{ $json.chatInput }}"), extra);
      if (AsText(implicit).find("{{") == std::string::npos) prompt = implicit;
    }
    if (!prompt.is_null()) {
      messages.push_back({{"role", "user"}, {"content", AsText(prompt)}});
    } else if (!has_data) {
      diag_->Add(JoinKey(node.path, "parameters"),
                 label + " has no prompt: set its Prompt to 'Define below' and give the text, "
                         "or feed it a Set node with a Data field");
      return json::object();
    }
    json options = model.params.value("options", json::object());
    if (!options.is_object()) options = json::object();
    if (model.kind == Kind::kOpenAiChatModel) {
      std::string id = LocatorValue(Find(model.params, "model"));
      if (id.empty()) id = "gpt-4o-mini";
      return OpenAiChat(model, id, options, messages, "openAiApi");
    }
    // Hugging Face: a local inference task.
    std::string id = LocatorValue(Find(model.params, "model"));
    if (id.empty()) {
      diag_->Add(JoinKey(model.path, "parameters"),
                 "Hugging Face Inference Model " + Quoted(model.name) + " names no model");
      return json::object();
    }
    std::string task_type = node.notes_task_type.empty() ? "inference" : node.notes_task_type;
    json spec = {{"taskType", task_type},
                 {"model", {{"source", {{"type", "huggingface"}, {"identifier", id}}}}}};
    json inference = json::object();
    // Data fields the prompt did not read itself (those stay rows of their own).
    bool rows_elsewhere = false;
    for (const Route& r : node.in_routes) {
      for (const SetField& f : r.fields) {
        if (IsDataFragment(f.name) && (consumed_ == nullptr || consumed_->count(f.name) == 0)) {
          rows_elsewhere = true;
        }
      }
    }
    if (rows_elsewhere && !prompt.is_null() && messages.size() == 1) {
      // A Data Set node gives the rows; the chain's prompt instructs the model about
      // each of them (the published importer's reading).
      inference["system_prompt"] = AsText(prompt);
    } else if (!prompt.is_null()) {
      spec["data"] = {{"type", "list"}, {"items", json::array({messages})}};
    }
    static const std::vector<std::pair<const char*, const char*>> kOptions = {
        {"maxTokens", "max_tokens"},
        {"temperature", "temperature"},
        {"topP", "top_p"},
        {"topK", "top_k"},
        {"frequencyPenalty", "frequency_penalty"},
        {"presencePenalty", "presence_penalty"}};
    for (const auto& [from, to] : kOptions) {
      const json* v = Find(options, from);
      if (v != nullptr && v->is_number()) inference[to] = *v;
    }
    if (!inference.empty()) spec["inference"] = std::move(inference);
    return spec;
  }

  json OpenAiNode(size_t n, std::set<size_t>* extra) {
    const N8nNode& node = nodes_[n];
    const json& p = node.params;
    std::string base = JoinKey(node.path, "parameters");
    bool langchain = StartsWith(node.type, "@n8n/");
    std::string resource = StringAt(p, "resource", langchain ? "text" : "text");
    std::string operation = StringAt(p, "operation", langchain ? "message" : "complete");
    json messages = json::array();
    std::string model;
    // typeVersion 2.x keeps the prompt in responses.values ("Generate a response").
    const json* responses = langchain ? Find(p, "responses") : nullptr;
    bool v2 = responses != nullptr && responses->is_object();
    if (langchain) {
      if (!v2 && (resource != "text" || operation != "message")) {
        diag_->Add(base, "OpenAI node " + Quoted(node.name) + ": only 'Message a model' (text) "
                         "can be translated, not " + resource + "/" + operation);
        return json::object();
      }
      model = LocatorValue(Find(p, "modelId"));
      const json* mv = v2 ? responses : Find(p, "messages");
      const json* list = mv != nullptr ? Find(*mv, "values") : nullptr;
      if (list != nullptr && list->is_array()) {
        for (const json& m : *list) {
          if (!m.is_object()) continue;
          messages.push_back({{"role", StringAt(m, "role", "user")},
                              {"content", AsText(Resolve(n, m.value("content", json("")), extra))}});
        }
      }
    } else {
      if (resource != "chat" && !(resource == "text" && operation == "complete")) {
        diag_->Add(base, "OpenAI node " + Quoted(node.name) + ": only chat and text completion "
                         "can be translated, not " + resource + "/" + operation);
        return json::object();
      }
      model = StringAt(p, "model", resource == "chat" ? "gpt-3.5-turbo" : "gpt-3.5-turbo-instruct");
      if (resource == "chat") {
        const json* pr = Find(p, "prompt");
        const json* list = pr != nullptr ? Find(*pr, "messages") : nullptr;
        if (list != nullptr && list->is_array()) {
          for (const json& m : *list) {
            if (!m.is_object()) continue;
            messages.push_back(
                {{"role", StringAt(m, "role", "user")},
                 {"content", AsText(Resolve(n, m.value("content", json("")), extra))}});
          }
        }
      } else if (const json* pr = Find(p, "prompt"); pr != nullptr) {
        messages.push_back({{"role", "user"}, {"content", AsText(Resolve(n, *pr, extra))}});
      }
    }
    if (langchain && v2 && !messages.empty()) {
      // As the published importer does: the upstream task's answer follows the prompt
      // unless the prompt already refers to it.
      for (const Route& r : node.in_routes) {
        if (r.task < 0) continue;
        const N8nNode& up = nodes_[static_cast<size_t>(r.task)];
        std::string& content = messages.back()["content"].get_ref<std::string&>();
        if (content.find("${" + up.task + ".") != std::string::npos) break;
        std::string path = up.kind == Kind::kChainLlm && up.models.size() == 1 &&
                                   nodes_[up.models[0].first].kind != Kind::kOpenAiChatModel
                               ? "items.0.output"
                               : "items.0.text";
        content = "The previous stage's response is as follows. " + content + "\n${" + up.task +
                  "." + path + "}";
        break;
      }
    }
    if (model.empty()) {
      diag_->Add(base, "OpenAI node " + Quoted(node.name) + " names no model");
      return json::object();
    }
    if (messages.empty()) {
      diag_->Add(base, "OpenAI node " + Quoted(node.name) + " has no messages");
      return json::object();
    }
    json options = p.value("options", json::object());
    if (!options.is_object()) options = json::object();
    if (p.value("jsonOutput", false) == true) options["jsonOutput"] = true;
    return OpenAiChat(node, model, options, messages, "openAiApi");
  }

  static std::string UrlEncode(const std::string& s) {
    static const char* kHex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
          c == '$' || c == '{' || c == '}') {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    return out;
  }

  // name/value pairs from {parameters: [{name, value}]} (v3+) or {parameter: [...]} (v1-2).
  json Pairs(size_t n, const json* holder, std::set<size_t>* extra) const {
    json out = json::object();
    if (holder == nullptr) return out;
    for (const char* key : {"parameters", "parameter"}) {
      const json* list = Find(*holder, key);
      if (list == nullptr || !list->is_array()) continue;
      for (const json& item : *list) {
        if (!item.is_object()) continue;
        std::string name = StringAt(item, "name");
        if (name.empty()) continue;
        out[name] = Resolve(n, item.value("value", json("")), extra);
      }
    }
    return out;
  }

  json Http(size_t n, std::set<size_t>* extra) {
    const N8nNode& node = nodes_[n];
    const json& p = node.params;
    std::string base = JoinKey(node.path, "parameters");
    json url = Resolve(n, p.value("url", json("")), extra);
    if (!url.is_string() || url.get_ref<const std::string&>().empty()) {
      diag_->Add(JoinKey(base, "url"), "HTTP Request " + Quoted(node.name) + " has no URL");
      return json::object();
    }
    std::string method = StringAt(p, "method", StringAt(p, "requestMethod", "GET"));
    json api = {{"url", url}, {"method", method}};
    std::string query;
    if (p.value("sendQuery", false) == true || Find(p, "queryParametersUi") != nullptr) {
      json q = Pairs(n, Find(p, "queryParameters"), extra);
      q.update(Pairs(n, Find(p, "queryParametersUi"), extra));
      for (auto it = q.begin(); it != q.end(); ++it) {
        query += (query.empty() ? "" : "&") + UrlEncode(it.key()) + "=" + UrlEncode(AsText(*it));
      }
    }
    if (!query.empty()) {
      std::string u = url.get<std::string>();
      api["url"] = u + (u.find('?') == std::string::npos ? "?" : "&") + query;
    }
    json headers = json::object();
    if (p.value("sendHeaders", false) == true || Find(p, "headerParametersUi") != nullptr) {
      if (StringAt(p, "specifyHeaders") == "json") {
        json h = Typed(Resolve(n, p.value("jsonHeaders", json("{}")), extra), "object");
        if (!h.is_object()) {
          diag_->Add(JoinKey(base, "jsonHeaders"),
                     "HTTP Request " + Quoted(node.name) + ": headers must be a JSON object");
        } else {
          headers.update(h);
        }
      } else {
        headers.update(Pairs(n, Find(p, "headerParameters"), extra));
        headers.update(Pairs(n, Find(p, "headerParametersUi"), extra));
      }
    }
    bool send_body = p.value("sendBody", false) == true || Find(p, "bodyParametersUi") != nullptr ||
                     Find(p, "bodyParametersJson") != nullptr;
    if (send_body) {
      std::string content = StringAt(p, "contentType", "json");
      std::string specify = StringAt(p, "specifyBody", "keypair");
      if (content == "raw") {
        api["body"] = Resolve(n, p.value("body", json("")), extra);
        if (std::string type = StringAt(p, "rawContentType"); !type.empty()) {
          headers["Content-Type"] = type;
        }
      } else if (specify == "json" || Find(p, "bodyParametersJson") != nullptr) {
        const json* raw = Find(p, "jsonBody");
        if (raw == nullptr) raw = Find(p, "bodyParametersJson");
        json body = raw != nullptr ? Resolve(n, *raw, extra) : json::object();
        api["body"] = Typed(body, "object");
      } else {
        json body = Pairs(n, Find(p, "bodyParameters"), extra);
        body.update(Pairs(n, Find(p, "bodyParametersUi"), extra));
        api["body"] = body;
        if (content == "form-urlencoded") {
          headers["Content-Type"] = "application/x-www-form-urlencoded";
        } else if (content == "multipart-form-data") {
          headers["Content-Type"] = "multipart/form-data";
        }
      }
    }
    std::string auth = StringAt(p, "authentication", "none");
    if (auth != "none") {
      std::string cred_type = StringAt(p, auth == "predefinedCredentialType" ? "nodeCredentialType"
                                                                             : "genericAuthType");
      if (cred_type.empty() && node.credentials.is_object() && !node.credentials.empty()) {
        cred_type = node.credentials.begin().key();
      }
      if (std::string ref = CredentialRef(node, cred_type.c_str()); !ref.empty()) {
        headers["Authorization"] = ref;
      }
    }
    if (!headers.empty()) api["headers"] = headers;
    json spec = {{"taskType", "api"}, {"api", std::move(api)}};
    const json* options = Find(p, "options");
    if (options != nullptr) {
      const json* timeout = Find(*options, "timeout");
      if (timeout != nullptr && timeout->is_number() && timeout->get<double>() > 0) {
        spec["timeoutSeconds"] = timeout->get<double>() / 1000.0;
      }
    }
    return spec;
  }

  json MakeTask(size_t n) {
    N8nNode& node = nodes_[n];
    // Dependencies, Set fragments and the condition carried by the ways in.
    std::vector<std::string> deps;
    std::set<size_t> dep_set;
    int cond = -1;
    bool mixed = false;
    bool has_data = false;
    for (size_t i = 0; i < node.in_routes.size(); ++i) {
      const Route& r = node.in_routes[i];
      if (r.task >= 0 && dep_set.insert(static_cast<size_t>(r.task)).second) {
        deps.push_back(nodes_[static_cast<size_t>(r.task)].task);
      }
      for (const SetField& f : r.fields) {
        has_data = has_data || IsDataFragment(f.name);
      }
      if (i == 0) {
        cond = r.cond;
      } else if (r.cond != cond) {
        mixed = true;
      }
    }
    if (cond == -2) {
      diag_->Add(node.path, "node " + Quoted(node.name) +
                                " sits behind more than one IF; a task takes a single condition");
    } else if (mixed) {
      diag_->Add(node.path, "node " + Quoted(node.name) +
                                " is reached both through an IF branch and another way; a "
                                "condition applies to the whole task");
    }
    std::set<size_t> extra;
    std::set<std::string> consumed;
    consumed_ = &consumed;
    json own;
    switch (node.kind) {
      case Kind::kChainLlm:
        own = ChainLlm(n, &extra, has_data);
        break;
      case Kind::kOpenAi:
        own = OpenAiNode(n, &extra);
        break;
      default:
        own = Http(n, &extra);
        break;
    }
    consumed_ = nullptr;
    json spec = json::object();
    for (const Route& r : node.in_routes) {
      for (const SetField& f : r.fields) {
        if (f.name == "Checkpoint") {
          // A Checkpoint Set node after a training node: load what that node trained.
          if (r.task < 0) {
            diag_->Add(f.path, "a Checkpoint Set node must follow a task node (the training "
                               "whose final model to load)");
            continue;
          }
          const std::string& trained = nodes_[static_cast<size_t>(r.task)].task;
          spec["checkpoint"] = {
              {"load", {{"type", "http"}, {"url", "${" + trained + ".final_model_archive}"}}}};
          continue;
        }
        if (consumed.count(f.name) == 0) ApplyFragment(f, &spec);
      }
    }
    MergeInto(&spec, own);
    RenameReferences(&spec);
    if (cond >= 0 && !mixed) {
      const Cond& c = conds_[static_cast<size_t>(cond)];
      if (!c.error.empty()) {
        diag_->Add(c.path, c.error);
      } else {
        spec["condition"] = c.value;
        std::string target = c.value["node"].get<std::string>();
        for (size_t i = 0; i < nodes_.size(); ++i) {
          if (nodes_[i].task == target && !dep_set.count(i)) extra.insert(i);
        }
      }
    }
    for (size_t e : extra) {
      if (dep_set.insert(e).second) deps.push_back(nodes_[e].task);
    }
    json entry = {{"name", node.task}};
    if (!deps.empty()) entry["dependsOn"] = deps;
    entry["spec"] = std::move(spec);
    return entry;
  }

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

  bool OverBudget() {
    if (work_ <= kMaxWork) return false;
    if (!budget_reported_) {
      budget_reported_ = true;
      diag_->Add("nodes", "the n8n workflow is too large or too interconnected to translate "
                          "(work limit " + std::to_string(kMaxWork) + " reached)");
    }
    return true;
  }
};

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
