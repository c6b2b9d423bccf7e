// The field-by-field schema of a task spec (WORKFLOWS.md "Task spec"): types, ranges,
// enumerations, required fields and closed key sets with "did you mean" suggestions.
// The schema is built once, is immutable and safe to use from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace flowmesh::spec {

// One problem in a task spec. `rel` is relative to the task spec and starts with '.'
// (".inference.max_tokens", ".data.items[2]"); `at_key` marks problems about the key of
// that entry (unknown keys) rather than its value.
struct SchemaIssue {
  std::string rel;
  bool at_key = false;
  std::string message;
  bool warning = false;  // kept and reported, not a reason to refuse the document
};

// Brings the published spellings of a merged task spec to one form (NormaliseTaskSpec),
// then checks every field. Normalising: flat executor keys (`ttlSeconds` of an ssh task)
// move into their section (`ssh.ttlSeconds`); quoted numbers and booleans in typed fields
// ("4") become numbers and booleans; memory sizes drop the B of binary units ("16GiB" ->
// "16Gi"). Unknown keys in the free-form sections (inference, data, training, lora, api,
// rag, agent, postprocess) are kept and reported with `warning` set.
// `taskType`, `dependsOn` and `condition.node` are only type-checked here; their meaning
// (known type, existing dependency) is checked by the parser, which knows the graph.
void ValidateTaskFields(nlohmann::json* spec, std::vector<SchemaIssue>* issues);

// Only the flat-key part of ValidateTaskFields (conflicts and misplaced keys are issues).
void NormaliseTaskSpec(nlohmann::json* spec, std::vector<SchemaIssue>* issues);

// True when `s` is exactly one `${node.path}` reference: such a string stands for a value
// of any JSON type, so a typed field holding one is checked at dispatch instead.
bool IsWholeReference(const std::string& s);

}  // namespace flowmesh::spec
