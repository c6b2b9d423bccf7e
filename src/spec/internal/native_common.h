// Names, node records and reference scanning shared by the parts of the native workflow
// parser (spec/workflow.cc, internal/native_*.cc). Internal to src/spec; pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowmesh::spec::native_internal {

using nlohmann::json;

constexpr std::string_view kApiVersion = "flowmesh/v1";
constexpr size_t kMaxNameLength = 128;

const std::vector<std::string>& RootKeys();

const std::vector<std::string>& EntryKeys();

std::string Join(const std::vector<std::string>& items, std::string_view sep);

std::string Quote(const json& value);

bool IsNodeNameChar(char c);

// Node names end up in task names (`<workflow>:<node>`) and in `${node.path}` references,
// so they may not hold ':' or '.'.
bool IsValidNodeName(std::string_view name);

bool IsValidWorkflowName(std::string_view name);

// The deep merge of `base` under `over`, done in place in `over`: objects merge
// recursively, anything else in `over` wins over what is in `base`.
void MergeUnder(json* over, const json& base);

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

std::vector<Reference> FindReferences(const std::string& s);

}  // namespace flowmesh::spec::native_internal
