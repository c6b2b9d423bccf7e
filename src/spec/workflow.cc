#include "spec/workflow.h"

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
#include "spec/n8n.h"
#include "spec/source_doc.h"
#include "spec/task_schema.h"

namespace flowmesh::spec {

using nlohmann::json;

std::string SpecError::ToString() const {
  std::string out = path;
  if (line > 0) {
    if (!out.empty()) out += ' ';
    out += "(line " + std::to_string(line) + ", column " + std::to_string(column) + ")";
  }
  if (!out.empty()) out += ": ";
  out += message;
  return out;
}

json SpecError::ToJson() const {
  return json{{"path", path}, {"line", line}, {"column", column}, {"message", message}};
}

const std::vector<std::string>& KnownTaskTypes() {
  // The published TaskType list (src/shared/tasks/task_type.py) plus python and serve,
  // which its later releases added, and image_classification_training, the name its
  // executor registry gives image classification.
  static const std::vector<std::string> kTypes = {
      "echo",          "data_profiling",   "data_retrieval",
      "api",           "inference",        "embedding",
      "rag",           "agent",            "sft",
      "lora_sft",      "dpo",              "ppo",
      "diffusion",     "image_classification", "image_classification_training",
      "omni_text2image", "omni_text2speech", "omni_text2audio",
      "omni_text2video", "omni_text2general", "ssh",
      "python",        "serve"};
  return kTypes;
}

std::string CategoryForTaskType(const std::string& task_type) {
  if (task_type == "inference" || task_type == "embedding") return "inference";
  if (task_type == "sft" || task_type == "lora_sft" || task_type == "dpo" || task_type == "ppo" ||
      task_type == "image_classification" || task_type == "image_classification_training") {
    return "training";
  }
  return "other";
}

namespace {

constexpr std::string_view kApiVersion = "flowmesh/v1";
constexpr size_t kMaxNameLength = 128;

const std::vector<std::string>& RootKeys() {
  static const std::vector<std::string> kKeys = {"apiVersion", "kind", "metadata", "spec"};
  return kKeys;
}

const std::vector<std::string>& EntryKeys() {
  static const std::vector<std::string> kKeys = {"name", "dependsOn", "spec"};
  return kKeys;
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string Quote(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return "'" + text + "'";
}

bool IsNodeNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Node names end up in task names (`<workflow>:<node>`) and in `${node.path}` references,
// so they may not hold ':' or '.'.
bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !IsNodeNameChar(name[0])) return false;
  return std::all_of(name.begin(), name.end(), IsNodeNameChar);
}

bool IsValidWorkflowName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !IsNodeNameChar(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsNodeNameChar(c) || c == '.'; });
}

// The deep merge of `base` under `over`, done in place in `over`: objects merge
// recursively, anything else in `over` wins over what is in `base`.
void MergeUnder(json* over, const json& base) {
  json::object_t& out = over->get_ref<json::object_t&>();
  for (const auto& [key, value] : base.get_ref<const json::object_t&>()) {
    auto existing = out.find(key);
    if (existing == out.end()) {
      out.emplace(key, value);
    } else if (existing->second.is_object() && value.is_object()) {
      MergeUnder(&existing->second, value);
    }
  }
}


// Node name -> index into the parser's node list.
using NameIndex = std::unordered_map<std::string, size_t>;

// One stage / graph node (or the single task) while it is being parsed.
struct Node {
  std::string name;
  bool has_name = false;  // name is a string (valid or not)
  size_t index = 0;       // document order
  std::string path;       // the entry ("spec.graph.nodes[2]"; "spec" for a single task)
  std::string spec_path;  // the node's own spec ("" when it has none)
  std::string deps_path;  // the dependsOn list that declared its dependencies
  std::vector<std::string> deps;
  std::vector<std::string> dep_paths;
  json spec;  // merged (always set to an object when the node is read)
  bool duplicate = false;
};

// A `${stage.path}` reference found in a string value.
struct Reference {
  std::string stage;
  std::string text;
};

std::vector<Reference> FindReferences(const std::string& s) {
  std::vector<Reference> refs;
  size_t pos = 0;
  while ((pos = s.find("${", pos)) != std::string::npos) {
    size_t end = s.find('}', pos + 2);
    if (end == std::string::npos) break;
    std::string_view inner(s.data() + pos + 2, end - pos - 2);
    size_t dot = inner.find('.');
    // `${HOME}` and other dot-less forms are left alone (shell variables in commands).
    if (dot != std::string_view::npos && dot > 0 && IsValidNodeName(inner.substr(0, dot))) {
      refs.push_back(Reference{std::string(inner.substr(0, dot)), s.substr(pos, end - pos + 1)});
    }
    pos = end + 1;
  }
  return refs;
}

// Parses and validates one native document. Single-threaded, one use.
class NativeParser {
 public:
  // Node specs are moved out of `root` while it is read.
  NativeParser(const SourceDoc& doc, json* root, const ParseOptions& options, Diagnostics* diag,
               Diagnostics* warnings)
      : doc_(doc), root_(*root), options_(options), diag_(diag), warn_(warnings) {}

  std::optional<WorkflowDef> Parse() {
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

 private:
  void CheckRootKeys() {
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

  void ParseMetadata(WorkflowDef* def) {
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

  // Fills nodes_ from whichever shape `spec` has. False when there is nothing to validate.
  bool CollectNodes() {
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

  void ReadEntry(json& entry, const std::string& path, size_t index) {
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

  // dependsOn may sit on the entry or inside its spec; both are honoured.
  // `take`: move the names out of the document (the holder is not part of any task spec).
  void ReadDependsOn(json* holder_ptr, const std::string& holder_path, Node* node, bool take) {
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

  NameIndex IndexNames() {
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

  void CheckDependencies(const NameIndex& by_name) {
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

  // Where `rel` (".resources.hardware.cpu") of a node's merged spec came from.
  // A field of an executor section may have been written flat (`.ssh.ttlSeconds` as
  // `.ttlSeconds`); then the error points at what the user wrote.
  std::string Locate(const Node& node, const std::string& rel) const {
    if (!node.spec_path.empty() && doc_.Has(node.spec_path + rel)) return node.spec_path + rel;
    if (doc_.Has("spec" + rel)) return "spec" + rel;
    for (std::string_view section : {".ssh.", ".python.", ".serve.", ".rag."}) {
      if (rel.compare(0, section.size(), section) != 0) continue;
      std::string flat = rel.substr(section.size() - 1);
      if (!node.spec_path.empty() && doc_.Has(node.spec_path + flat)) {
        return node.spec_path + flat;
      }
      if (doc_.Has("spec" + flat)) return "spec" + flat;
    }
    return (node.spec_path.empty() ? node.path : node.spec_path) + rel;
  }

  // A message about `.ssh.accessMode` that Locate found written flat (`spec.accessMode`)
  // names the field as the author wrote it.
  static void NameAsWritten(const std::string& rel, const std::string& path,
                            std::string* message) {
    for (std::string_view section : {".ssh.", ".python.", ".serve.", ".rag."}) {
      if (rel.compare(0, section.size(), section) != 0) continue;
      if (path.find(std::string(section)) != std::string::npos) return;  // written nested
      std::string nested = rel.substr(1);
      if (message->compare(0, nested.size(), nested) == 0) {
        message->replace(0, nested.size(), rel.substr(section.size()));
      }
      return;
    }
  }

  void ValidateTaskSpec(Node* node_ptr, const NameIndex& by_name) {
    Node& node = *node_ptr;
    json& spec = node.spec;
    if (!spec.is_object()) return;  // reported when the entry was read
    std::string label = node.has_name ? "'" + node.name + "'" : node.path;
    // taskType
    auto type = spec.find("taskType");
    if (type == spec.end() || type->is_null()) {
      diag_->Add(node.spec_path.empty() ? node.path : node.spec_path,
                 "missing taskType for " + label + "; known: " + Join(KnownTaskTypes(), ", "));
    } else if (!type->is_string() ||
               std::find(KnownTaskTypes().begin(), KnownTaskTypes().end(),
                         type->get_ref<const std::string&>()) == KnownTaskTypes().end()) {
      std::string word = type->is_string() ? type->get<std::string>() : type->dump();
      diag_->Add(Locate(node, ".taskType"), "unknown taskType " + Quote(*type) +
                                                DidYouMean(word, KnownTaskTypes()) +
                                                "; known: " + Join(KnownTaskTypes(), ", "));
    }
    std::vector<SchemaIssue> issues;
    ValidateTaskFields(&spec, &issues);
    for (SchemaIssue& issue : issues) {
      std::string path = Locate(node, issue.rel);
      NameAsWritten(issue.rel, path, &issue.message);
      Diagnostics* to = issue.warning ? warn_ : diag_;
      if (issue.at_key) {
        to->AddAtKey(path, std::move(issue.message));
      } else {
        to->Add(path, std::move(issue.message));
      }
    }
    WarnUntypedRows(node);
    ValidateInputs(node, by_name);
    ValidateCondition(node, by_name);
    std::string rel;
    ValidateReferences(node, spec, &rel, by_name);
  }

  // Data without a type is the published training form; the executors that take rows
  // (echo, data_profiling, inference, embedding) need one, or the task fails at dispatch.
  void WarnUntypedRows(const Node& node) {
    static const std::set<std::string> kRowTypes = {"echo", "data_profiling", "inference",
                                                    "embedding"};
    auto type = node.spec.find("taskType");
    auto data = node.spec.find("data");
    if (type == node.spec.end() || !type->is_string() || data == node.spec.end() ||
        !data->is_object() || data->contains("type") ||
        kRowTypes.count(type->get_ref<const std::string&>()) == 0) {
      return;
    }
    warn_->Add(Locate(node, ".data"),
               "data has no type; taskType " + type->get<std::string>() +
                   " reads rows from data of type list, dataset, graph_template or dataframe "
                   "(the task will fail at dispatch)");
  }

  bool IsDependency(const Node& node, const std::string& name) const {
    return std::find(node.deps.begin(), node.deps.end(), name) != node.deps.end();
  }

  void CheckUpstream(const Node& node, const std::string& name, const std::string& what,
                     const std::string& path, const NameIndex& by_name) {
    if (IsDependency(node, name)) return;
    std::string label = node.has_name ? "'" + node.name + "'" : node.path;
    if (by_name.count(name) == 0) {
      diag_->Add(path, what + " names unknown node '" + name + "'");
    } else {
      diag_->Add(path, what + " names '" + name + "', which is not a dependency of " + label +
                           " (add it to dependsOn)");
    }
  }

  // Types and required keys are checked by the schema; here: condition.node must be a
  // dependency.
  void ValidateCondition(const Node& node, const NameIndex& by_name) {
    auto condition = node.spec.find("condition");
    if (condition == node.spec.end() || !condition->is_object()) return;
    auto target = condition->find("node");
    if (target == condition->end() || !target->is_string()) return;
    CheckUpstream(node, target->get<std::string>(), "condition.node",
                  Locate(node, ".condition.node"), by_name);
  }

  // ssh.inputs[i].stage and python.inputs[i] (a name or {stage}) name upstream stages.
  void ValidateInputs(const Node& node, const NameIndex& by_name) {
    for (const char* section : {"ssh", "python"}) {
      auto holder = node.spec.find(section);
      if (holder == node.spec.end() || !holder->is_object()) continue;
      auto inputs = holder->find("inputs");
      if (inputs == holder->end() || !inputs->is_array()) continue;
      for (size_t i = 0; i < inputs->size(); ++i) {
        const json& input = (*inputs)[i];
        std::string rel = JoinIndex(std::string(".") + section + ".inputs", i);
        const json* stage = &input;
        if (input.is_object()) {
          auto it = input.find("stage");
          if (it == input.end()) continue;
          stage = &*it;
          rel += ".stage";
        }
        if (!stage->is_string() || IsWholeReference(stage->get_ref<const std::string&>())) {
          continue;
        }
        CheckUpstream(node, stage->get<std::string>(), std::string(section) + " input",
                      Locate(node, rel), by_name);
      }
    }
  }

  // `${stage.path}` in any string, and `{node, path}` data references. `rel_buffer` holds
  // the path of `value` relative to the task spec; it is extended and restored in place.
  void ValidateReferences(const Node& node, const json& value, std::string* rel_buffer,
                          const NameIndex& by_name) {
    const std::string& rel = *rel_buffer;
    const size_t rel_size = rel_buffer->size();
    if (value.is_string()) {
      const std::string& text = value.get_ref<const std::string&>();
      if (text.find("${") == std::string::npos) return;
      for (const Reference& ref : FindReferences(text)) {
        if (IsDependency(node, ref.stage)) continue;
        CheckUpstream(node, ref.stage, "reference " + ref.text, Locate(node, rel), by_name);
      }
    } else if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        *rel_buffer += '[';
        *rel_buffer += std::to_string(i);
        *rel_buffer += ']';
        ValidateReferences(node, value[i], rel_buffer, by_name);
        rel_buffer->resize(rel_size);
      }
    } else if (value.is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it) {
        *rel_buffer += '.';
        *rel_buffer += it.key();
        ValidateReferences(node, *it, rel_buffer, by_name);
        rel_buffer->resize(rel_size);
      }
    }
    // Data rows taken from upstream results: data.items[i] = {node, path} and
    // data.template.columns[i] = {label, node, path}.
    if (rel == ".data" && value.is_object()) {
      auto check_list = [&](const json* list, const std::string& list_rel) {
        if (list == nullptr || !list->is_array()) return;
        for (size_t i = 0; i < list->size(); ++i) {
          const json& item = (*list)[i];
          if (!item.is_object()) continue;
          auto ref = item.find("node");
          if (ref == item.end() || !ref->is_string()) continue;
          if (IsDependency(node, ref->get_ref<const std::string&>())) continue;
          std::string item_rel = JoinIndex(list_rel, i) + ".node";
          CheckUpstream(node, ref->get<std::string>(), "data reference", Locate(node, item_rel),
                        by_name);
        }
      };
      auto items = value.find("items");
      check_list(items == value.end() ? nullptr : &*items, ".data.items");
      auto columns = value.find("columns");
      check_list(columns == value.end() ? nullptr : &*columns, ".data.columns");
      auto list_node = value.find("node");  // {type: list, node, path}
      if (list_node != value.end() && list_node->is_string() &&
          !IsDependency(node, list_node->get_ref<const std::string&>())) {
        CheckUpstream(node, list_node->get<std::string>(), "data list",
                      Locate(node, ".data.node"), by_name);
      }
      auto tmpl = value.find("template");
      if (tmpl != value.end() && tmpl->is_object()) {
        auto columns = tmpl->find("columns");
        check_list(columns == tmpl->end() ? nullptr : &*columns, ".data.template.columns");
      }
    }
  }

  // Kahn's algorithm, taking ready nodes in document order. Nodes left over sit on or
  // behind a cycle; each cycle is named.
  std::vector<size_t> TopologicalOrder(const NameIndex& by_name) {
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

  // Iterative DFS along dependency edges among `left`; every back edge closes a cycle.
  void ReportCycles(const std::vector<std::vector<size_t>>& deps, const std::vector<bool>& left) {
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

  // `cycle` follows dependsOn edges; it is named in run order ("a -> b": b waits on a),
  // starting at the node that comes first in the document.
  void ReportCycle(std::vector<size_t> cycle) {
    std::reverse(cycle.begin(), cycle.end());
    std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
    std::string text = "cycle: ";
    for (size_t i : cycle) text += nodes_[i].name + " -> ";
    text += nodes_[cycle.front()].name;
    const Node& first = nodes_[cycle.front()];
    diag_->Add(first.deps_path.empty() ? first.path : first.deps_path, text);
  }

  // metadata.annotations.schedule_hint: epochs checked against the graph, worker pinning.
  void ParseScheduleHint(const NameIndex& by_name, WorkflowDef* def) {
    auto metadata = root_.find("metadata");
    if (metadata == root_.end() || !metadata->is_object()) return;
    auto annotations = metadata->find("annotations");
    if (annotations == metadata->end() || !annotations->is_object()) return;
    auto hint = annotations->find("schedule_hint");
    if (hint == annotations->end() || hint->is_null()) return;
    const std::string base = "metadata.annotations.schedule_hint";
    static const std::vector<std::string> kKeys = {
        "node_execution_order", "node_schedule_in_epoch_order", "selected_worker"};
    if (!hint->is_object()) {
      diag_->Add(base, "schedule_hint must be a mapping with " + Join(kKeys, ", "));
      return;
    }
    for (auto kv = hint->begin(); kv != hint->end(); ++kv) {
      if (std::find(kKeys.begin(), kKeys.end(), kv.key()) != kKeys.end()) continue;
      diag_->AddAtKey(JoinKey(base, kv.key()), "unknown key '" + kv.key() + "' in schedule_hint" +
                                                   DidYouMean(kv.key(), kKeys) +
                                                   "; allowed: " + Join(kKeys, ", "));
    }
    auto order = hint->find("node_execution_order");
    if (order != hint->end() && !order->is_null()) {
      ParseExecutionOrder(*order, JoinKey(base, "node_execution_order"), by_name, def);
    }
    auto in_order = hint->find("node_schedule_in_epoch_order");
    if (in_order != hint->end() && !in_order->is_null()) {
      if (in_order->is_boolean()) {
        def->schedule_in_epoch_order = in_order->get<bool>();
      } else {
        diag_->Add(JoinKey(base, "node_schedule_in_epoch_order"),
                   "node_schedule_in_epoch_order must be true or false, got " + Quote(*in_order));
      }
    }
    auto selected = hint->find("selected_worker");
    if (selected != hint->end() && !selected->is_null()) {
      ParseSelectedWorker(*selected, JoinKey(base, "selected_worker"), by_name, def);
    }
  }

  std::vector<std::string> KnownNames(const NameIndex& by_name) const {
    std::vector<std::string> names;
    names.reserve(by_name.size());
    for (const auto& entry : by_name) names.push_back(entry.first);
    std::sort(names.begin(), names.end());  // suggestions do not depend on hash order
    return names;
  }

  void ParseExecutionOrder(const json& order, const std::string& path,
                           const NameIndex& by_name, WorkflowDef* def) {
    const char* kShape = "node_execution_order must be a list of node names or a list of lists "
                         "of node names (epochs)";
    if (!order.is_array()) {
      diag_->Add(path, std::string(kShape) + ", got " + Quote(order));
      return;
    }
    std::vector<std::vector<std::string>> epochs;
    std::map<std::string, std::string> where;  // node -> path of its entry
    auto take = [&](const json& name, const std::string& name_path, size_t epoch) {
      if (!name.is_string()) {
        diag_->Add(name_path, "node_execution_order entries must be node names, got " +
                                  Quote(name));
        return;
      }
      const std::string& text = name.get_ref<const std::string&>();
      if (by_name.count(text) == 0) {
        diag_->Add(name_path, "node_execution_order names unknown node '" + text + "'" +
                                  DidYouMean(text, KnownNames(by_name)));
        return;
      }
      auto [it, inserted] = where.emplace(text, name_path);
      if (!inserted) {
        diag_->Add(name_path, "node '" + text + "' appears twice in node_execution_order (first at " +
                                  it->second + ")");
        return;
      }
      epoch_of_[text] = static_cast<int>(epoch);
      epochs[epoch].push_back(text);
    };
    for (size_t i = 0; i < order.size(); ++i) {
      const json& entry = order[i];
      std::string entry_path = JoinIndex(path, i);
      epochs.emplace_back();
      if (entry.is_array()) {
        if (entry.empty()) diag_->Add(entry_path, "epoch " + std::to_string(i) + " is empty");
        for (size_t j = 0; j < entry.size(); ++j) take(entry[j], JoinIndex(entry_path, j), i);
      } else {
        take(entry, entry_path, i);
      }
    }
    // A node may share an epoch with a dependency (it still waits for it), never precede it.
    for (const auto& [name, epoch] : epoch_of_) {
      const Node& node = nodes_[by_name.at(name)];
      for (const std::string& dep : node.deps) {
        auto dep_epoch = epoch_of_.find(dep);
        if (dep_epoch == epoch_of_.end() || dep_epoch->second <= epoch) continue;
        diag_->Add(where[name], "node_execution_order puts '" + name + "' in epoch " +
                                    std::to_string(epoch) + ", before its dependency '" + dep +
                                    "' in epoch " + std::to_string(dep_epoch->second));
      }
    }
    def->epochs = std::move(epochs);
  }

  // A worker id/alias, or a non-empty list of them.
  std::optional<std::vector<std::string>> WorkerList(const json& value, const std::string& path) {
    std::vector<std::string> out;
    if (value.is_string() && !value.get_ref<const std::string&>().empty()) {
      out.push_back(value.get<std::string>());
      return out;
    }
    if (value.is_array()) {
      bool ok = true;
      for (size_t i = 0; i < value.size(); ++i) {
        if (value[i].is_string() && !value[i].get_ref<const std::string&>().empty()) {
          out.push_back(value[i].get<std::string>());
        } else {
          diag_->Add(JoinIndex(path, i), "worker entries must be worker ids or aliases, got " +
                                             Quote(value[i]));
          ok = false;
        }
      }
      if (ok) return out;
      return std::nullopt;
    }
    diag_->Add(path, "expected a worker id or alias, or a list of them, got " + Quote(value));
    return std::nullopt;
  }

  void ParseSelectedWorker(const json& value, const std::string& path,
                           const NameIndex& by_name, WorkflowDef* def) {
    if (!value.is_object()) {
      if (auto workers = WorkerList(value, path)) def->selected_workers = std::move(*workers);
      return;
    }
    static const std::vector<std::string> kKeys = {"global", "selected"};
    for (auto kv = value.begin(); kv != value.end(); ++kv) {
      if (std::find(kKeys.begin(), kKeys.end(), kv.key()) != kKeys.end()) continue;
      diag_->AddAtKey(JoinKey(path, kv.key()), "unknown key '" + kv.key() + "' in selected_worker" +
                                                   DidYouMean(kv.key(), kKeys) +
                                                   "; allowed: global, selected");
    }
    auto global = value.find("global");
    if (global != value.end() && !global->is_null()) {
      if (auto workers = WorkerList(*global, JoinKey(path, "global"))) {
        def->selected_workers = std::move(*workers);
      }
    }
    auto selected = value.find("selected");
    if (selected == value.end() || selected->is_null()) return;
    std::string selected_path = JoinKey(path, "selected");
    if (!selected->is_object()) {
      diag_->Add(selected_path, "selected_worker.selected must be a mapping of node names to "
                                "workers, got " + Quote(*selected));
      return;
    }
    for (auto kv = selected->begin(); kv != selected->end(); ++kv) {
      std::string entry_path = JoinKey(selected_path, kv.key());
      if (by_name.count(kv.key()) == 0) {
        diag_->AddAtKey(entry_path, "selected_worker.selected names unknown node '" + kv.key() +
                                        "'" + DidYouMean(kv.key(), KnownNames(by_name)));
        continue;
      }
      if (auto workers = WorkerList(*kv, entry_path)) selected_by_node_[kv.key()] = *workers;
    }
  }

  // Moves the node's spec and dependencies into the task.
  TaskDef MakeTask(Node* node_ptr, const WorkflowDef& def) const {
    Node& node = *node_ptr;
    TaskDef task;
    task.node_name = node.name;
    task.task_name = def.name + ":" + node.name;
    task.task_type = node.spec.value("taskType", "");
    task.category = CategoryForTaskType(task.task_type);
    task.depends_on = std::move(node.deps);
    task.spec = std::move(node.spec);
    const json& spec = task.spec;
    for (const char* key : {"maxAttempts", "max_attempts"}) {
      auto it = spec.find(key);
      if (it != spec.end() && it->is_number_integer()) {
        task.max_attempts = static_cast<int>(it->get<int64_t>());
      }
    }
    auto timeout = spec.find("timeoutSeconds");
    if (timeout != spec.end() && timeout->is_number()) {
      task.timeout_seconds = timeout->get<double>();
    }
    auto condition = spec.find("condition");
    if (condition != spec.end() && condition->is_object()) task.condition = *condition;
    auto selected = selected_by_node_.find(node.name);
    task.selected_workers =
        selected != selected_by_node_.end() ? selected->second : def.selected_workers;
    auto epoch = epoch_of_.find(node.name);
    if (epoch != epoch_of_.end()) task.epoch = epoch->second;
    return task;
  }

  const SourceDoc& doc_;
  json& root_;
  const ParseOptions& options_;
  Diagnostics* diag_;
  Diagnostics* warn_;
  json shared_ = json::object();  // top-level spec keys merged into every node
  std::vector<Node> nodes_;
  std::map<std::string, int> epoch_of_;  // schedule_hint.node_execution_order
  std::map<std::string, std::vector<std::string>> selected_by_node_;
};

Status Fail(std::vector<SpecError> found, std::vector<SpecError>* errors) {
  std::string message = std::to_string(found.size()) +
                        (found.size() == 1 ? " problem" : " problems") + " in workflow";
  if (!found.empty()) message += ": " + found.front().ToString();
  if (errors != nullptr) {
    for (SpecError& e : found) errors->push_back(std::move(e));
  }
  return InvalidArgument(std::move(message));
}

// One parse + validation over a loaded document. Errors go to `diag`.
// Consumes the document's tree (marks stay).
std::optional<WorkflowDef> ValidateDocument(SourceDoc* doc, const ParseOptions& options,
                                            std::vector<SpecError> load_errors,
                                            Diagnostics* diag, Diagnostics* warnings) {
  for (SpecError& e : load_errors) diag->AddAt(e.path, Mark{e.line, e.column}, e.message);
  json root = doc->TakeRoot();
  NativeParser parser(*doc, &root, options, diag, warnings);
  return parser.Parse();
}

Result<WorkflowDef> ParseNative(const std::string& text, const ParseOptions& options,
                                std::vector<SpecError>* errors) {
  LoadLimits limits;
  limits.max_bytes = options.max_bytes;
  limits.max_depth = options.max_depth;
  limits.max_nodes = options.max_nodes;
  // First pass without source marks: recording line:column for every value costs more than
  // the rest of the parse, and a valid document never needs them.
  limits.record_marks = false;
  std::vector<SpecError> load_errors;
  Result<SourceDoc> doc = LoadYaml(text, limits, &load_errors);
  if (doc.ok()) {
    Diagnostics diag(&doc.value(), options.max_errors);
    Diagnostics warnings(&doc.value(), options.max_errors);
    std::optional<WorkflowDef> def =
        ValidateDocument(&doc.value(), options, std::move(load_errors), &diag, &warnings);
    if (diag.empty() && def.has_value() && warnings.empty()) return std::move(*def);
  }
  // Something is wrong, or worth a warning: parse again with marks so that every error and
  // warning has its line:column (and problems in shared spec keys are attributed to where
  // they were written).
  limits.record_marks = true;
  load_errors.clear();
  Result<SourceDoc> marked = LoadYaml(text, limits, &load_errors);
  if (!marked.ok()) return Fail(std::move(load_errors), errors);
  Diagnostics diag(&marked.value(), options.max_errors);
  Diagnostics warnings(&marked.value(), options.max_errors);
  std::optional<WorkflowDef> def =
      ValidateDocument(&marked.value(), options, std::move(load_errors), &diag, &warnings);
  if (diag.empty() && def.has_value()) {
    // Valid with warnings (the marked pass gives them their line:column).
    def->warnings = warnings.Take();
    return std::move(*def);
  }
  std::vector<SpecError> found = diag.Take();
  if (found.empty()) found.push_back(SpecError{"", 0, 0, "workflow is invalid"});
  return Fail(std::move(found), errors);
}

}  // namespace

Result<WorkflowDef> ParseWorkflow(const std::string& text, Format format,
                                  std::vector<SpecError>* errors) {
  return ParseWorkflow(text, format, ParseOptions{}, errors);
}

Result<WorkflowDef> ParseWorkflow(const std::string& text, Format format,
                                  const ParseOptions& options, std::vector<SpecError>* errors) {
  try {
    switch (format) {
      case Format::kNative:
        return ParseNative(text, options, errors);
      case Format::kN8n:
        return ParseN8nWorkflow(text, errors);  // translates, then ParseWorkflow(kNative)
    }
    return Fail({SpecError{"", 0, 0, "unknown workflow format"}}, errors);
  } catch (const std::exception& e) {
    // Library code below us (json, std) may throw; never let it cross this boundary.
    return Fail({SpecError{"", 0, 0, std::string("could not parse workflow: ") + e.what()}},
                errors);
  }
}

}  // namespace flowmesh::spec
