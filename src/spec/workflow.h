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
};

struct WorkflowDef {
  std::string name;
  nlohmann::json metadata;
  std::vector<TaskDef> tasks;  // in a topological order
};

enum class Format { kNative, kN8n };

// Task types of the published format.
const std::vector<std::string>& KnownTaskTypes();
std::string CategoryForTaskType(const std::string& task_type);

// Parses and validates. On failure returns InvalidArgument and fills `errors` with every
// problem found (never just the first).
Result<WorkflowDef> ParseWorkflow(const std::string& text, Format format,
                                  std::vector<SpecError>* errors);

}  // namespace flowmesh::spec
