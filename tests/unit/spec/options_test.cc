// The executor option tables (spec/executor_options.cc) against what is derived from them:
// the submit-time validator's messages, docs/executor-options.md and the executor sections
// of docs/workflow.schema.json. With FLOWMESH_UPDATE_DOCS=1 the two documents are rewritten
// from the table instead (scripts/docs-options).
#include "spec/options.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "spec/executor_options.h"
#include "spec/task_schema.h"

namespace flowmesh::spec {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const std::string kSource = FLOWMESH_SOURCE_DIR;

bool Updating() {
  const char* v = std::getenv("FLOWMESH_UPDATE_DOCS");
  return v != nullptr && std::string(v) == "1";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The compact style of docs/workflow.schema.json: one property per line.
std::string Inline(const ordered_json& v) {
  std::string out;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      out += (out.empty() ? "" : ", ") + json(it.key()).dump() + ": " + Inline(*it);
    }
    return "{" + out + "}";
  }
  if (v.is_array()) {
    for (const auto& item : v) out += (out.empty() ? "" : ", ") + Inline(item);
    return "[" + out + "]";
  }
  return v.dump();
}

std::string SchemaBlock(const ordered_json& schema, const std::string& indent) {
  std::string in = indent + "  ";
  std::string out = "{\n";
  for (const char* key : {"$comment", "type"}) {
    out += in + json(key).dump() + ": " + schema[key].dump() + ",\n";
  }
  out += in + "\"properties\": {\n";
  const ordered_json& properties = schema["properties"];
  for (auto it = properties.begin(); it != properties.end(); ++it) {
    out += in + "  " + json(it.key()).dump() + ": " + Inline(*it) +
           (std::next(it) == properties.end() ? "\n" : ",\n");
  }
  out += in + "}";
  if (schema.contains("additionalProperties")) {
    out += ",\n" + in + "\"additionalProperties\": " + schema["additionalProperties"].dump();
  }
  return out + "\n" + indent + "}";
}

// [begin, end) of the JSON object that starts at `open` (a '{'), strings skipped.
size_t ObjectEnd(const std::string& text, size_t open) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = open; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return std::string::npos;
}

TEST(ExecutorOptions, DocsTableIsCurrent) {
  std::string path = kSource + "/docs/executor-options.md";
  std::string want = OptionsMarkdown(ExecutorSections());
  if (Updating()) {
    std::ofstream(path) << want;
    GTEST_SKIP() << "rewrote " << path;
  }
  EXPECT_EQ(ReadFile(path), want) << "docs/executor-options.md is stale: run scripts/docs-options";
}

// Each executor section of the task spec's schema is the one generated from its table.
TEST(ExecutorOptions, JsonSchemaSectionsAreCurrent) {
  std::string path = kSource + "/docs/workflow.schema.json";
  std::string text = ReadFile(path);
  if (Updating()) {
    for (const OptionSection* section : ExecutorSections()) {
      const std::string key = "        \"" + std::string(section->name) + "\": ";
      size_t at = text.find(key);
      ASSERT_NE(at, std::string::npos) << section->name;
      size_t open = at + key.size();
      size_t end = ObjectEnd(text, open);
      ASSERT_NE(end, std::string::npos);
      text.replace(open, end - open, SchemaBlock(OptionsJsonSchema(*section), "        "));
    }
    std::ofstream(path) << text;
    GTEST_SKIP() << "rewrote " << path;
  }
  json schema = json::parse(text);
  for (const OptionSection* section : ExecutorSections()) {
    EXPECT_EQ(schema["$defs"]["taskSpec"]["properties"][std::string(section->name)],
              json::parse(OptionsJsonSchema(*section).dump()))
        << section->name << ": docs/workflow.schema.json is stale: run scripts/docs-options";
  }
}

// Every option the validator knows comes from the tables, with the tables' words: a value of
// the wrong type is refused at the option's own path with Describe's text.
TEST(ExecutorOptions, ValidatorRefusesWithTheTablesWords) {
  int checked = 0;
  for (const OptionSection* section : ExecutorSections()) {
    for (const Option& option : section->options) {
      if (option.type == OptionType::kAny || option.type == OptionType::kSection ||
          option.type == OptionType::kStageInputs) {
        continue;
      }
      json bad = json::object();
      if (option.type == OptionType::kMapping || option.type == OptionType::kStringMap ||
          option.type == OptionType::kScalarMap) {
        bad = 5;
      }
      std::string name(section->name);
      json spec = {{"taskType", name}, {name, {{option.name, bad}}}};
      std::vector<SchemaIssue> issues;
      ValidateTaskFields(&spec, &issues);
      ASSERT_EQ(issues.size(), 1u) << name << "." << option.name;
      EXPECT_FALSE(issues[0].warning);
      EXPECT_EQ(issues[0].rel, "." + name + "." + std::string(option.name));
      EXPECT_NE(issues[0].message.find(" must be " + Describe(option) + ", got "),
                std::string::npos)
          << issues[0].message;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

// A bound changed in a table is the bound everywhere: the validator, ResolveSection (what
// executors read) and the JSON Schema all read the declaration.
TEST(ExecutorOptions, SectionBoundsReachValidatorAndExecutor) {
  const OptionSection* serve = FindSection("serve");
  ASSERT_NE(serve, nullptr);
  const Option* port = FindOption(*serve, "port");
  ASSERT_NE(port, nullptr);
  EXPECT_EQ(Describe(*port), "an integer from 1 to 65535");
  json spec = {{"taskType", "serve"}, {"serve", {{"port", 70000}}}};
  std::vector<SchemaIssue> issues;
  ValidateTaskFields(&spec, &issues);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].message, "serve.port must be an integer from 1 to 65535, got '70000'");
  json section = {{"port", 70000}};
  EXPECT_EQ(ResolveSection(*serve, &section), issues[0].message);
  EXPECT_EQ(OptionsJsonSchema(*serve)["properties"]["port"]["maximum"], 65535);
  EXPECT_EQ(OptionsJsonSchema(*serve)["additionalProperties"], false);
}

// The options the published format writes flat are the tables' `flat` ones.
TEST(ExecutorOptions, FlatKeysComeFromTheTables) {
  for (const OptionSection* section : ExecutorSections()) {
    for (const Option& option : section->options) {
      if (!option.flat) continue;
      std::string name(section->name);
      json spec = {{"taskType", name}, {option.name, nullptr}};
      std::vector<SchemaIssue> issues;
      NormaliseTaskSpec(&spec, &issues);
      EXPECT_TRUE(issues.empty()) << name << "." << option.name;
      EXPECT_FALSE(spec.contains(option.name)) << name << "." << option.name;
      EXPECT_TRUE(spec[name].contains(option.name)) << name << "." << option.name;
    }
  }
  json spec = {{"taskType", "serve"}, {"network", "none"}};  // python's, not serve's
  std::vector<SchemaIssue> issues;
  NormaliseTaskSpec(&spec, &issues);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].message, "'network' is a field of taskType python, not of 'serve'");
}

TEST(ExecutorOptions, EchoDefaultsComeFromTheTable) {
  json echo = {{"fail_attempts", "2"}};
  ASSERT_EQ(ResolveSection(EchoSection(), &echo), std::nullopt);
  EXPECT_EQ(echo["fail_attempts"], 2);
  EXPECT_EQ(echo["sleep_seconds"], 0);
  json absent;
  ASSERT_EQ(ResolveSection(EchoSection(), &absent), std::nullopt);
  EXPECT_EQ(absent["fail_attempts"], 0);
  json bad = {{"sleep_seconds", -1}};
  EXPECT_EQ(ResolveSection(EchoSection(), &bad),
            "echo.sleep_seconds must be a number >= 0, got '-1'");
}

TEST(ExecutorOptions, BoundsAreTheDeclaredOnes) {
  const Option* temperature = FindInferenceOption("temperature");
  ASSERT_NE(temperature, nullptr);
  EXPECT_EQ(Describe(*temperature), "a number from 0 to 2");
  EXPECT_EQ(Describe(*FindInferenceOption("max_tokens")), "an integer from 1 to 1048576");
  EXPECT_EQ(Describe(*FindInferenceOption("presence_penalty")), "a number from -2 to 2");
  EXPECT_EQ(FindInferenceOption("max_new_tokens")->alias_of, "max_tokens");
  EXPECT_EQ(FindInferenceOption("bogus"), nullptr);
}

TEST(ExecutorOptions, ResolvingFillsAliasesAndDefaults) {
  json section = {{"max_new_tokens", "7"}, {"stream", "no"}, {"bogus", 1}};
  ASSERT_EQ(ResolveInferenceSection(&section), std::nullopt);
  EXPECT_EQ(section["max_tokens"], 7);
  EXPECT_EQ(section["stream"], false);
  EXPECT_EQ(section["temperature"], 1);
  EXPECT_EQ(section["bogus"], 1);
  json both = {{"max_tokens", 5}, {"max_new_tokens", 9}};
  ASSERT_EQ(ResolveInferenceSection(&both), std::nullopt);
  EXPECT_EQ(both["max_tokens"], 5);
  json over = {{"min_tokens", 300}};  // the default max_tokens is 256
  EXPECT_EQ(ResolveInferenceSection(&over),
            "inference.min_tokens must be at most max_tokens (256), got 300");
}

TEST(ExecutorOptions, CrossRuleIsReportedAtSubmitWithItsKey) {
  json spec = {{"taskType", "inference"}, {"inference", {{"min_tokens", 9}, {"max_tokens", 3}}}};
  std::vector<SchemaIssue> issues;
  ValidateTaskFields(&spec, &issues);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].rel, ".inference.min_tokens");
  EXPECT_EQ(issues[0].message, "inference.min_tokens must be at most max_tokens (3), got 9");
  // A reference stands for a value known only at dispatch: no rule is applied to it.
  spec = {{"taskType", "inference"},
          {"inference", {{"min_tokens", 9}, {"max_tokens", "${a.n}"}}}};
  issues.clear();
  ValidateTaskFields(&spec, &issues);
  EXPECT_TRUE(issues.empty());
}

}  // namespace
}  // namespace flowmesh::spec
