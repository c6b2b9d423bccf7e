// The workflow model and the native-format parser (apiVersion: flowmesh/v1).
// Parsing turns a YAML/JSON document into a validated list of tasks with their
// dependencies; every problem found is reported with its path and line:column.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::spec {

struct SpecError {
  std::string path;  // "spec.graph.nodes[2].dependsOn[0]"; "" for the document
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown
  std::string message;

  std::string ToString() const;  // "spec.graph.nodes[2].dependsOn[0] (line 14, column 9): …"
  nlohmann::json ToJson() const;  // {path, line, column, message}
};

struct TaskDef {
  std::string node_name;  // graph node / stage name ("main" for a single-task spec)
  std::string task_name;  // "<metadata.name>:<node_name>"
  std::string task_type;
  std::string category;   // inference | training | other
  std::vector<std::string> depends_on;  // node names
  nlohmann::json spec;    // merged task spec (top-level spec deep-merged, node keys win)
  int max_attempts = 3;
  double timeout_seconds = 0;
  nlohmann::json condition;                   // {node, field, equals}; null when none
  std::vector<std::string> selected_workers;  // schedule_hint.selected_worker for this task
  int epoch = -1;  // index into WorkflowDef::epochs; -1 when node_execution_order omits it
};

struct WorkflowDef {
  std::string name;
  nlohmann::json metadata;
  std::vector<TaskDef> tasks;  // in a topological order
  // metadata.annotations.schedule_hint, validated against the DAG.
  std::vector<std::vector<std::string>> epochs;  // node_execution_order (a flat list: one each)
  bool schedule_in_epoch_order = false;          // node_schedule_in_epoch_order
  std::vector<std::string> selected_workers;     // selected_worker (global part)
  // Non-fatal findings: unknown keys kept in the free-form sections of the published format
  // (executor options, training config, data extras), deprecated spellings. Returned by
  // submit and validate and printed by `flowmesh workflow validate`; never a reason to refuse.
  std::vector<SpecError> warnings;
};

enum class Format { kNative, kN8n };

// Task types of the published format.
const std::vector<std::string>& KnownTaskTypes();
std::string CategoryForTaskType(const std::string& task_type);

// Limits on one document; each error caused by a limit names it ("limit max_tasks=10000").
struct ParseOptions {
  size_t max_bytes = 16 * 1024 * 1024;  // size of the text
  int max_depth = 128;                  // nesting of mappings/sequences
  size_t max_nodes = 1000000;           // YAML values, after alias expansion
  size_t max_tasks = 20000;             // stages / graph nodes
  size_t max_errors = 500;              // problems reported before giving up
};

// Parses and validates. On failure returns InvalidArgument and fills `errors` with every
// problem found (never just the first).
Result<WorkflowDef> ParseWorkflow(const std::string& text, Format format,
                                  std::vector<SpecError>* errors);
Result<WorkflowDef> ParseWorkflow(const std::string& text, Format format,
                                  const ParseOptions& options, std::vector<SpecError>* errors);

}  // namespace flowmesh::spec
