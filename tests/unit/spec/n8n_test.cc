// n8n import: every export under tests/data/workflows/n8n/ is translated and parsed;
// `<name>.expected.json` holds the exact translated document and the resulting task list,
// `<name>.errors.json` the exact error list. Set FLOWMESH_REGENERATE=1 to rewrite them
// (then review the diff).
#include "spec/n8n.h"

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

const fs::path kDir = fs::path(FLOWMESH_SOURCE_DIR) / "tests/data/workflows/n8n";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Regenerate() {
  const char* v = std::getenv("FLOWMESH_REGENERATE");
  return v != nullptr && std::string(v) == "1";
}

json TaskSummary(const WorkflowDef& def) {
  json tasks = json::array();
  for (const TaskDef& t : def.tasks) {
    json task = {{"name", t.task_name}, {"taskType", t.task_type}, {"dependsOn", t.depends_on}};
    auto cond = t.spec.find("condition");
    if (cond != t.spec.end()) task["condition"] = *cond;
    tasks.push_back(std::move(task));
  }
  return tasks;
}

json ErrorList(const std::vector<SpecError>& errors) {
  json out = json::array();
  for (const SpecError& e : errors) out.push_back(e.ToJson());
  return out;
}

std::vector<fs::path> Exports() {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(kDir)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".json") continue;
    if (name.find(".expected.") != std::string::npos || name.find(".errors.") != std::string::npos)
      continue;
    out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path Sibling(const fs::path& path, const std::string& suffix) {
  return path.parent_path() / (path.stem().string() + suffix);
}

TEST(N8nCorpus, EveryExportTranslatesOrFailsExactlyAsRecorded) {
  std::vector<fs::path> exports = Exports();
  ASSERT_GE(exports.size(), 10u);
  size_t valid = 0, invalid = 0;
  for (const fs::path& path : exports) {
    SCOPED_TRACE(path.filename().string());
    std::string text = ReadFile(path);
    fs::path expected_path = Sibling(path, ".expected.json");
    fs::path errors_path = Sibling(path, ".errors.json");
    std::vector<SpecError> errors;
    Result<WorkflowDef> def = ParseWorkflow(text, Format::kN8n, &errors);
    if (Regenerate()) {
      if (def.ok()) {
        std::vector<SpecError> ignored;
        Result<N8nTranslation> tr = TranslateN8n(text, &ignored);
        ASSERT_TRUE(tr.ok());
        json expected = {{"document", tr.value().document}, {"tasks", TaskSummary(def.value())}};
        std::ofstream(expected_path) << expected.dump(2) << "\n";
      } else {
        std::ofstream(errors_path) << ErrorList(errors).dump(2) << "\n";
      }
    }
    if (fs::exists(expected_path)) {
      ++valid;
      ASSERT_TRUE(def.ok()) << def.status().ToString() << "\n" << ErrorList(errors).dump(2);
      json expected = json::parse(ReadFile(expected_path));
      std::vector<SpecError> translate_errors;
      Result<N8nTranslation> tr = TranslateN8n(text, &translate_errors);
      ASSERT_TRUE(tr.ok());
      EXPECT_EQ(tr.value().document, expected["document"]) << tr.value().document.dump(2);
      EXPECT_EQ(TaskSummary(def.value()), expected["tasks"]) << TaskSummary(def.value()).dump(2);
    } else {
      ++invalid;
      ASSERT_TRUE(fs::exists(errors_path)) << "no .expected.json or .errors.json";
      ASSERT_FALSE(def.ok());
      EXPECT_EQ(def.status().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(ErrorList(errors), json::parse(ReadFile(errors_path)))
          << ErrorList(errors).dump(2);
    }
  }
  EXPECT_GE(valid, 6u);
  EXPECT_GE(invalid, 4u);
}

// Credential ids (and anything but the credential's display name) never reach the
// translated spec, the parsed tasks or error messages.
TEST(N8nCredentials, OnlyTheNameIsReferenced) {
  for (const fs::path& path : Exports()) {
    SCOPED_TRACE(path.filename().string());
    std::string text = ReadFile(path);
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.contains("nodes") || !doc["nodes"].is_array()) continue;
    std::vector<std::string> secrets;
    for (const json& node : doc["nodes"]) {
      if (!node.is_object() || !node.contains("credentials")) continue;
      for (const auto& [type, cred] : node["credentials"].items()) {
        for (const auto& [key, value] : cred.items()) {
          if (key != "name" && value.is_string() && value.get<std::string>().size() > 2) {
            secrets.push_back(value.get<std::string>());
          }
        }
      }
    }
    std::vector<SpecError> errors;
    Result<WorkflowDef> def = ParseWorkflow(text, Format::kN8n, &errors);
    std::string everything = ErrorList(errors).dump() + def.status().ToString();
    if (def.ok()) {
      for (const TaskDef& t : def.value().tasks) everything += t.spec.dump();
    }
    for (const std::string& secret : secrets) {
      EXPECT_EQ(everything.find(secret), std::string::npos) << secret;
    }
  }
}

TEST(N8nCredentials, SecretFieldsInAHandEditedExportAreNotCopied) {
  std::string text = R"({"name": "leak", "nodes": [
    {"parameters": {}, "id": "1", "name": "Start", "type": "n8n-nodes-base.manualTrigger",
     "typeVersion": 1, "position": [0, 0]},
    {"parameters": {"modelId": {"__rl": true, "value": "gpt-4o", "mode": "list"},
                    "messages": {"values": [{"content": "hi"}]}, "options": {}},
     "id": "2", "name": "Ask", "type": "@n8n/n8n-nodes-langchain.openAi", "typeVersion": 1.8,
     "position": [200, 0],
     "credentials": {"openAiApi": {"id": "cred-77", "name": "Team key",
                                   "apiKey": "sk-live-SECRET-123"}}}],
    "connections": {"Start": {"main": [[{"node": "Ask", "type": "main", "index": 0}]]}}})";
  std::vector<SpecError> errors;
  Result<WorkflowDef> def = ParseWorkflow(text, Format::kN8n, &errors);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  std::string dumped = def.value().tasks.at(0).spec.dump();
  EXPECT_EQ(dumped.find("sk-live-SECRET-123"), std::string::npos);
  EXPECT_EQ(dumped.find("cred-77"), std::string::npos);
  EXPECT_EQ(def.value().tasks[0].spec["api"]["headers"]["Authorization"],
            "Bearer {{credential:Team key}}");
}

TEST(N8nImport, MalformedJsonReportsLineAndColumn) {
  std::vector<SpecError> errors;
  Result<WorkflowDef> def =
      ParseWorkflow("{\n  \"name\": \"x\",\n  \"nodes\": [\n    {\"name\": \"a\",, }\n  ]\n}\n",
                    Format::kN8n, &errors);
  ASSERT_FALSE(def.ok());
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].line, 4);
  EXPECT_GT(errors[0].column, 0);
}

TEST(N8nImport, NotAnObject) {
  std::vector<SpecError> errors;
  ASSERT_FALSE(ParseWorkflow("[1, 2]", Format::kN8n, &errors).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "an n8n export must be a JSON object with nodes and connections");
}

TEST(N8nImport, ExpressionsBecomeReferencesOnlyForUpstreamTasks) {
  std::string text = R"({"name": "refs", "nodes": [
    {"parameters": {}, "id": "1", "name": "Go", "type": "n8n-nodes-base.manualTrigger",
     "typeVersion": 1, "position": [0, 0]},
    {"parameters": {"url": "https://a.example.com/x"}, "id": "2", "name": "Up Stream",
     "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [200, 0]},
    {"parameters": {"url": "https://b.example.com/y"}, "id": "3", "name": "Side",
     "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [200, 200]},
    {"parameters": {"method": "POST", "url": "={{ $json.next_url }}",
       "sendBody": true, "bodyParameters": {"parameters": [
         {"name": "whole", "value": "={{ $json.data }}"},
         {"name": "mixed", "value": "=id={{ $json.items[2].id }}!"},
         {"name": "named", "value": "={{ $('Up Stream').first().json.a.b }}"},
         {"name": "not_upstream", "value": "={{ $('Side').item.json.z }}"},
         {"name": "code", "value": "={{ $json.a.toUpperCase() }}"},
         {"name": "literal", "value": "{{ $json.a }}"}]}},
     "id": "4", "name": "Down", "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2,
     "position": [400, 0]}],
    "connections": {
      "Go": {"main": [[{"node": "Up Stream", "type": "main", "index": 0},
                       {"node": "Side", "type": "main", "index": 0}]]},
      "Up Stream": {"main": [[{"node": "Down", "type": "main", "index": 0}]]}}})";
  std::vector<SpecError> errors;
  Result<N8nTranslation> tr = TranslateN8n(text, &errors);
  ASSERT_TRUE(tr.ok()) << tr.status().ToString();
  const json& down = tr.value().document["spec"]["graph"]["nodes"][2];
  EXPECT_EQ(down["name"], "down");
  EXPECT_EQ(down["dependsOn"], json({"up-stream"}));
  EXPECT_EQ(down["spec"]["api"]["url"], "${up-stream.next_url}");
  const json& body = down["spec"]["api"]["body"];
  EXPECT_EQ(body["whole"], "${up-stream.data}");
  EXPECT_EQ(body["mixed"], "id=${up-stream.items[2].id}!");
  EXPECT_EQ(body["named"], "${up-stream.a.b}");
  EXPECT_EQ(body["not_upstream"], "{{ $('Side').item.json.z }}");
  EXPECT_EQ(body["code"], "{{ $json.a.toUpperCase() }}");
  EXPECT_EQ(body["literal"], "{{ $json.a }}");
  EXPECT_EQ(tr.value().node_origin.at("up-stream"), "Up Stream");
  EXPECT_TRUE(ParseWorkflow(text, Format::kN8n, &errors).ok());
}

TEST(N8nImport, NamedUpstreamThatIsNotADirectInputBecomesADependency) {
  std::string text = R"({"name": "chain", "nodes": [
    {"parameters": {"url": "https://a.example.com"}, "id": "1", "name": "A",
     "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [0, 0]},
    {"parameters": {"url": "https://b.example.com"}, "id": "2", "name": "B",
     "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [200, 0]},
    {"parameters": {"url": "=https://c.example.com/{{ $('A').item.json.id }}"}, "id": "3",
     "name": "C", "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [400, 0]}],
    "connections": {"A": {"main": [[{"node": "B", "type": "main", "index": 0}]]},
                    "B": {"main": [[{"node": "C", "type": "main", "index": 0}]]}}})";
  std::vector<SpecError> errors;
  Result<WorkflowDef> def = ParseWorkflow(text, Format::kN8n, &errors);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  ASSERT_EQ(def.value().tasks.size(), 3u);
  EXPECT_EQ(def.value().tasks[2].depends_on, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(def.value().tasks[2].spec["api"]["url"], "https://c.example.com/${a.id}");
}

TEST(N8nImport, DuplicateSlugsGetSuffixes) {
  std::string text = R"({"name": "dups", "nodes": [
    {"parameters": {"url": "https://a.example.com"}, "id": "1", "name": "Fetch data",
     "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [0, 0]},
    {"parameters": {"url": "https://b.example.com"}, "id": "2", "name": "Fetch  Data!",
     "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [0, 200]}],
    "connections": {}})";
  std::vector<SpecError> errors;
  Result<WorkflowDef> def = ParseWorkflow(text, Format::kN8n, &errors);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  ASSERT_EQ(def.value().tasks.size(), 2u);
  EXPECT_EQ(def.value().tasks[0].task_name, "dups:fetch-data");
  EXPECT_EQ(def.value().tasks[1].task_name, "dups:fetch-data-2");
}

}  // namespace
}  // namespace flowmesh::spec
