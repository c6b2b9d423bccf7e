// Runs every document of tests/data/workflows/{valid,invalid}/ through ParseWorkflow and
// compares the outcome exactly with the document's `.expected.json`:
//   valid:   {"tasks": [{"name", "type", "dependsOn", ["epoch"], ["selectedWorkers"],
//             ["condition"]}...] in topological order, ["epochs"], ["scheduleInEpochOrder"]}
//   invalid: {"errors": [{"path", "line", "column", "message"}...]}
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
    if (name.size() > 5 && (name.ends_with(".yaml") || name.ends_with(".yml"))) {
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

json Run(const fs::path& doc) {
  std::vector<SpecError> errors;
  Result<WorkflowDef> result = ParseWorkflow(ReadFile(doc), Format::kNative, &errors);
  if (result.ok()) return Describe(result.value());
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
  for (const fs::path& doc : docs) {
    SCOPED_TRACE(doc.filename().string());
    json got = Run(doc);
    if (Updating()) {
      std::ofstream(ExpectedPath(doc)) << got.dump(2) << "\n";
      continue;
    }
    ASSERT_TRUE(fs::exists(ExpectedPath(doc))) << "missing " << ExpectedPath(doc);
    json want = json::parse(ReadFile(ExpectedPath(doc)));
    EXPECT_EQ(got.contains("errors"), kind == "invalid") << got.dump(2);
    EXPECT_EQ(got, want) << "got:\n" << got.dump(2) << "\nwant:\n" << want.dump(2);
  }
}

TEST(SpecCorpus, ValidDocumentsGiveTheExpectedDag) { Check("valid", 12); }

TEST(SpecCorpus, InvalidDocumentsGiveExactlyTheExpectedErrors) { Check("invalid", 25); }

}  // namespace
}  // namespace flowmesh::spec
