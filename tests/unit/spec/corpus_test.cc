// Runs every document of tests/data/workflows/{valid,invalid}/ through ParseWorkflow and
// compares the outcome exactly with the document's `.expected.json`:
//   valid:   {"tasks": [{"name", "type", "dependsOn", ["epoch"], ["selectedWorkers"],
//             ["condition"]}...] in topological order, ["epochs"], ["scheduleInEpochOrder"]}
//   invalid: {"errors": [{"path", "line", "column", "message"}...]}
//   published/: documents written to the published FlowMesh 0.1.x schema, one per feature
//            it accepts; {"tasks", "warnings", "specs": {node: normalised task spec}}
//   published/refused: documents the published parser refuses too; {"errors"}, each with
//            its path and line
// FLOWMESH_UPDATE_CORPUS=1 rewrites the expectations (review the diff before committing).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "spec/workflow.h"

namespace flowmesh::spec {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kCorpus = fs::path(FLOWMESH_SOURCE_DIR) / "tests/data/workflows";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<fs::path> Documents(const std::string& kind) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(kCorpus / kind)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 5 && (name.ends_with(".yaml") || name.ends_with(".yml") ||
                            (name.ends_with(".json") && !name.ends_with(".expected.json")))) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path ExpectedPath(const fs::path& doc) {
  fs::path p = doc;
  p.replace_extension(".expected.json");
  return p;
}

json Describe(const WorkflowDef& def) {
  json tasks = json::array();
  for (const TaskDef& t : def.tasks) {
    json task = {{"name", t.node_name}, {"type", t.task_type}, {"dependsOn", t.depends_on}};
    if (t.epoch >= 0) task["epoch"] = t.epoch;
    if (!t.selected_workers.empty()) task["selectedWorkers"] = t.selected_workers;
    if (!t.condition.is_null()) task["condition"] = t.condition;
    tasks.push_back(std::move(task));
  }
  json out = {{"tasks", std::move(tasks)}};
  if (!def.epochs.empty()) out["epochs"] = def.epochs;
  if (def.schedule_in_epoch_order) out["scheduleInEpochOrder"] = true;
  return out;
}

// Published documents: the DAG, the warnings and what every executor is handed.
json DescribeFully(const WorkflowDef& def) {
  json out = Describe(def);
  json warnings = json::array();
  for (const SpecError& w : def.warnings) warnings.push_back(w.ToJson());
  out["warnings"] = std::move(warnings);
  json specs = json::object();
  for (const TaskDef& t : def.tasks) specs[t.node_name] = t.spec;
  out["specs"] = std::move(specs);
  return out;
}

json RunDocument(const fs::path& doc, bool fully = false) {
  std::vector<SpecError> errors;
  Format format = doc.extension() == ".json" ? Format::kN8n : Format::kNative;
  Result<WorkflowDef> result = ParseWorkflow(ReadFile(doc), format, &errors);
  if (result.ok()) return fully ? DescribeFully(result.value()) : Describe(result.value());
  json list = json::array();
  for (const SpecError& e : errors) list.push_back(e.ToJson());
  return json{{"errors", std::move(list)}};
}

bool Updating() {
  const char* v = std::getenv("FLOWMESH_UPDATE_CORPUS");
  return v != nullptr && std::string(v) == "1";
}

void Check(const std::string& kind, size_t at_least) {
  std::vector<fs::path> docs = Documents(kind);
  EXPECT_GE(docs.size(), at_least);
  bool refused = kind == "invalid" || kind == "published/refused";
  for (const fs::path& doc : docs) {
    SCOPED_TRACE(doc.filename().string());
    json got = RunDocument(doc, kind == "published");
    if (Updating()) {
      std::ofstream(ExpectedPath(doc)) << got.dump(2) << "\n";
      continue;
    }
    ASSERT_TRUE(fs::exists(ExpectedPath(doc))) << "missing " << ExpectedPath(doc);
    json want = json::parse(ReadFile(ExpectedPath(doc)));
    EXPECT_EQ(got.contains("errors"), refused) << got.dump(2);
    EXPECT_EQ(got, want) << "got:\n" << got.dump(2) << "\nwant:\n" << want.dump(2);
  }
}

TEST(SpecCorpus, ValidDocumentsGiveTheExpectedDag) { Check("valid", 12); }

TEST(SpecCorpus, InvalidDocumentsGiveExactlyTheExpectedErrors) { Check("invalid", 25); }

TEST(SpecCorpus, PublishedFormatDocumentsAreAcceptedWithTheExpectedSpecs) {
  Check("published", 14);
}

TEST(SpecCorpus, DocumentsThePublishedParserRefusesAreRefusedWithPathAndLine) {
  Check("published/refused", 10);
  for (const fs::path& doc : Documents("published/refused")) {
    SCOPED_TRACE(doc.filename().string());
    json got = RunDocument(doc);
    ASSERT_TRUE(got.contains("errors"));
    ASSERT_FALSE(got["errors"].empty());
    for (const json& e : got["errors"]) {
      EXPECT_GT(e["line"].get<int>(), 0) << e.dump();
      EXPECT_FALSE(e["path"].get<std::string>().empty() && e["line"].get<int>() == 0) << e.dump();
    }
  }
}

}  // namespace
}  // namespace flowmesh::spec
