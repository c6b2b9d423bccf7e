// n8n import: translates an n8n workflow export (the JSON the n8n editor writes) into a
// native flowmesh/v1 document, which is then parsed and validated by the native parser.
// Problems found while translating point at the n8n JSON (`nodes[3].type`, line:column);
// problems the native validator finds are mapped back to the n8n node they came from.
// Credentials are referenced by their n8n name only; no credential id or secret is ever
// copied into the translated spec or into an error message. Stateless and thread-safe.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "spec/workflow.h"

namespace flowmesh::spec {

struct N8nTranslation {
  nlohmann::json document;  // apiVersion: flowmesh/v1, spec.graph.nodes
  // Native node name -> the n8n node name it came from.
  std::map<std::string, std::string> node_origin;
};

// Translates only. On failure returns InvalidArgument and appends every problem found.
Result<N8nTranslation> TranslateN8n(const std::string& text, std::vector<SpecError>* errors);

// Translates, then parses the result as a native document (all native validation applies).
Result<WorkflowDef> ParseN8nWorkflow(const std::string& text, std::vector<SpecError>* errors);

}  // namespace flowmesh::spec
