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
#include "spec/internal/native_parser.h"
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
      "python",        "serve",            "collection"};
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

using native_internal::NativeParser;

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
