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

std::string NativeParser::Locate(const Node& node, const std::string& rel) const {
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

void NativeParser::NameAsWritten(const std::string& rel, const std::string& path,
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

void NativeParser::ValidateTaskSpec(Node* node_ptr, const NameIndex& by_name) {
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

void NativeParser::WarnUntypedRows(const Node& node) {
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

bool NativeParser::IsDependency(const Node& node, const std::string& name) const {
  return std::find(node.deps.begin(), node.deps.end(), name) != node.deps.end();
}

void NativeParser::CheckUpstream(const Node& node, const std::string& name, const std::string& what,
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

void NativeParser::ValidateCondition(const Node& node, const NameIndex& by_name) {
  auto condition = node.spec.find("condition");
  if (condition == node.spec.end() || !condition->is_object()) return;
  auto target = condition->find("node");
  if (target == condition->end() || !target->is_string()) return;
  CheckUpstream(node, target->get<std::string>(), "condition.node",
                Locate(node, ".condition.node"), by_name);
}

void NativeParser::ValidateInputs(const Node& node, const NameIndex& by_name) {
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

void NativeParser::ValidateReferences(const Node& node, const json& value, std::string* rel_buffer,
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

}  // namespace flowmesh::spec::native_internal
