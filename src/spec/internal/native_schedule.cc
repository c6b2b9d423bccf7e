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

void NativeParser::ParseScheduleHint(const NameIndex& by_name, WorkflowDef* def) {
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

std::vector<std::string> NativeParser::KnownNames(const NameIndex& by_name) const {
  std::vector<std::string> names;
  names.reserve(by_name.size());
  for (const auto& entry : by_name) names.push_back(entry.first);
  std::sort(names.begin(), names.end());  // suggestions do not depend on hash order
  return names;
}

void NativeParser::ParseExecutionOrder(const json& order, const std::string& path,
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

std::optional<std::vector<std::string>> NativeParser::WorkerList(const json& value, const std::string& path) {
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

void NativeParser::ParseSelectedWorker(const json& value, const std::string& path,
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

TaskDef NativeParser::MakeTask(Node* node_ptr, const WorkflowDef& def) const {
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

}  // namespace flowmesh::spec::native_internal
