// Parses and validates one native document (spec/workflow.h). The members are defined in
// internal/native_parser.cc (entries, dependencies, order), native_checks.cc (task specs,
// references, conditions) and native_schedule.cc (schedule hints, tasks). Single-threaded,
// one use.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/internal/native_common.h"
#include "spec/source_doc.h"
#include "spec/workflow.h"

namespace flowmesh::spec::native_internal {

using nlohmann::json;

class NativeParser {
 public:
  // Node specs are moved out of `root` while it is read.
  NativeParser(const SourceDoc& doc, json* root, const ParseOptions& options, Diagnostics* diag,
               Diagnostics* warnings)
      : doc_(doc), root_(*root), options_(options), diag_(diag), warn_(warnings) {}

  std::optional<WorkflowDef> Parse();

 private:
  void CheckRootKeys();

  void ParseMetadata(WorkflowDef* def);

  // Fills nodes_ from whichever shape `spec` has. False when there is nothing to validate.
  bool CollectNodes();

  void ReadEntry(json& entry, const std::string& path, size_t index);

  // dependsOn may sit on the entry or inside its spec; both are honoured.
  // `take`: move the names out of the document (the holder is not part of any task spec).
  void ReadDependsOn(json* holder_ptr, const std::string& holder_path, Node* node, bool take);

  NameIndex IndexNames();

  void CheckDependencies(const NameIndex& by_name);

  // Where `rel` (".resources.hardware.cpu") of a node's merged spec came from.
  // A field of an executor section may have been written flat (`.ssh.ttlSeconds` as
  // `.ttlSeconds`); then the error points at what the user wrote.
  std::string Locate(const Node& node, const std::string& rel) const;

  // A message about `.ssh.accessMode` that Locate found written flat (`spec.accessMode`)
  // names the field as the author wrote it.
  static void NameAsWritten(const std::string& rel, const std::string& path,
                            std::string* message);

  void ValidateTaskSpec(Node* node_ptr, const NameIndex& by_name);

  // Data without a type is the published training form; the executors that take rows
  // (echo, data_profiling, inference, embedding) need one, or the task fails at dispatch.
  void WarnUntypedRows(const Node& node);

  bool IsDependency(const Node& node, const std::string& name) const;

  void CheckUpstream(const Node& node, const std::string& name, const std::string& what,
                     const std::string& path, const NameIndex& by_name);

  // Types and required keys are checked by the schema; here: condition.node must be a
  // dependency.
  void ValidateCondition(const Node& node, const NameIndex& by_name);

  // ssh.inputs[i].stage and python.inputs[i] (a name or {stage}) name upstream stages.
  void ValidateInputs(const Node& node, const NameIndex& by_name);

  // `${stage.path}` in any string, and `{node, path}` data references. `rel_buffer` holds
  // the path of `value` relative to the task spec; it is extended and restored in place.
  void ValidateReferences(const Node& node, const json& value, std::string* rel_buffer,
                          const NameIndex& by_name);

  // Kahn's algorithm, taking ready nodes in document order. Nodes left over sit on or
  // behind a cycle; each cycle is named.
  std::vector<size_t> TopologicalOrder(const NameIndex& by_name);

  // Iterative DFS along dependency edges among `left`; every back edge closes a cycle.
  void ReportCycles(const std::vector<std::vector<size_t>>& deps, const std::vector<bool>& left);

  // `cycle` follows dependsOn edges; it is named in run order ("a -> b": b waits on a),
  // starting at the node that comes first in the document.
  void ReportCycle(std::vector<size_t> cycle);

  // metadata.annotations.schedule_hint: epochs checked against the graph, worker pinning.
  void ParseScheduleHint(const NameIndex& by_name, WorkflowDef* def);

  std::vector<std::string> KnownNames(const NameIndex& by_name) const;

  void ParseExecutionOrder(const json& order, const std::string& path,
                           const NameIndex& by_name, WorkflowDef* def);

  // A worker id/alias, or a non-empty list of them.
  std::optional<std::vector<std::string>> WorkerList(const json& value, const std::string& path);

  void ParseSelectedWorker(const json& value, const std::string& path,
                           const NameIndex& by_name, WorkflowDef* def);

  // Moves the node's spec and dependencies into the task.
  TaskDef MakeTask(Node* node_ptr, const WorkflowDef& def) const;

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

}  // namespace flowmesh::spec::native_internal
