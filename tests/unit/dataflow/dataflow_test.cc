// fm_dataflow: references, conditions and data materialisation, with exact expectations.
// Dataset fixtures live in tests/data/datasets; the http:// case uses a real fm_http server
// on port 0.
#include "dataflow/dataflow.h"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <nlohmann/json.hpp>
#include <memory>
#include <random>
#include <string>

#include "common/process.h"
#include "http/http.h"
#include "support/temp_dir.h"

namespace flowmesh::dataflow {
namespace {

using nlohmann::json;

const std::string kDatasets = std::string(FLOWMESH_SOURCE_DIR) + "/tests/data/datasets";

// The upstream results most tests use: an inference result, a training result and a
// skipped node.
Upstream SampleUpstream() {
  Upstream up;
  up["draft"] = json::parse(R"({
    "items": [
      {"input": "q1", "output": "The water cycle.", "finish_reason": "stop",
       "usage": {"prompt_tokens": 5, "completion_tokens": 4}},
      {"input": "q2", "output": "Evaporation.", "finish_reason": "length",
       "usage": {"prompt_tokens": 6, "completion_tokens": 2}}
    ],
    "model": "qwen",
    "usage": {"prompt_tokens": 11, "completion_tokens": 6},
    "score": 1,
    "ratio": 0.5,
    "ok": true,
    "matrix": [[1, 2], [3, 4], [5, 6]]
  })");
  up["train"] = json::parse(R"({"final_lora_archive": "cas://abc", "metrics": {"loss": 0.25}})");
  up["gate"] = json{{"skipped", true}};
  return up;
}

template <typename T>
T ValueOrDie(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return T{};
  return std::move(r).value();
}

// ---- LookupPath ----

TEST(LookupPathTest, DotBracketAndMixedIndices) {
  Upstream up = SampleUpstream();
  const json& r = up["draft"];
  EXPECT_EQ(ValueOrDie(LookupPath(r, "items.0.output")), json("The water cycle."));
  EXPECT_EQ(ValueOrDie(LookupPath(r, "items[1].output")), json("Evaporation."));
  EXPECT_EQ(ValueOrDie(LookupPath(r, "matrix[2][1]")), json(6));
  EXPECT_EQ(ValueOrDie(LookupPath(r, "matrix.1.0")), json(3));
  EXPECT_EQ(ValueOrDie(LookupPath(r, "usage")), r["usage"]);
  EXPECT_EQ(ValueOrDie(LookupPath(r, "")), r);
  EXPECT_EQ(ValueOrDie(LookupPath(r, "items.*.output")),
            json::parse(R"(["The water cycle.", "Evaporation."])"));
  EXPECT_EQ(ValueOrDie(LookupPath(r, "items[*].usage.completion_tokens")), json::parse("[4, 2]"));
}

TEST(LookupPathTest, NotFoundNamesTheMissingSegment) {
  json r = SampleUpstream()["draft"];
  auto missing = LookupPath(r, "items.0.outptu");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "path 'items.0.outptu': no field 'outptu' in 'items.0'");

  EXPECT_EQ(LookupPath(r, "itemz").status().message(),
            "path 'itemz': no field 'itemz' at the top level");
  auto range = LookupPath(r, "items[5].output");
  EXPECT_EQ(range.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(range.status().message(),
            "path 'items[5].output': index 5 out of range in 'items' (2 elements)");
  EXPECT_EQ(LookupPath(r, "items.first").status().message(),
            "path 'items.first': 'first' is not an index into the array in 'items'");
  EXPECT_EQ(LookupPath(r, "model.name").status().message(),
            "path 'model.name': cannot look up 'name' in string in 'model'");
  EXPECT_EQ(LookupPath(r, "usage[0]").status().message(),
            "path 'usage[0]': cannot look up '[0]' in object in 'usage'");
}

TEST(LookupPathTest, MalformedPathsAreInvalidArgument) {
  json r = SampleUpstream()["draft"];
  for (const char* path : {"a..b", "a.", ".a", "a[1", "a[x]", "a[1]b", "a.[0]"}) {
    auto res = LookupPath(r, path);
    EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument) << path;
    EXPECT_EQ(res.status().message().rfind(std::string("malformed path '") + path + "'", 0), 0u)
        << res.status().message();
  }
}

// ---- ResolveReferences ----

TEST(ResolveReferencesTest, WholeStringReferencesKeepTheirType) {
  json spec = json::parse(R"({
    "taskType": "inference",
    "a": "${draft.usage}",
    "b": "${draft.score}",
    "c": "${draft.ratio}",
    "d": "${draft.ok}",
    "e": "${draft.items[0].output}",
    "f": ["${draft.matrix.1}", {"g": "${train}"}],
    "h": 7
  })");
  json out = ValueOrDie(ResolveReferences(spec, SampleUpstream()));
  EXPECT_EQ(out, json::parse(R"({
    "taskType": "inference",
    "a": {"prompt_tokens": 11, "completion_tokens": 6},
    "b": 1,
    "c": 0.5,
    "d": true,
    "e": "The water cycle.",
    "f": [[3, 4], {"g": {"final_lora_archive": "cas://abc", "metrics": {"loss": 0.25}}}],
    "h": 7
  })"));
  EXPECT_TRUE(out["b"].is_number_integer());
  EXPECT_TRUE(out["d"].is_boolean());
}

TEST(ResolveReferencesTest, EmbeddedReferencesUseStringForms) {
  json spec = {{"prompt", "Check: ${draft.items.0.output} (score ${draft.score}, usage "
                          "${draft.usage}, adapter ${train.final_lora_archive})"}};
  json out = ValueOrDie(ResolveReferences(spec, SampleUpstream()));
  EXPECT_EQ(out["prompt"],
            "Check: The water cycle. (score 1, usage {\"completion_tokens\":6,\"prompt_tokens\":"
            "11}, adapter cas://abc)");
}

TEST(ResolveReferencesTest, EscapesShellVariablesAndKeys) {
  json spec = json::parse(R"({
    "ssh": {"command": "echo ${HOME} $${draft.score} ${draft.score}", "env": "${PATH}"},
    "literal": "$${draft.model}",
    "unterminated": "${draft.model",
    "${draft.model}": "key stays",
    "empty": "${}"
  })");
  json out = ValueOrDie(ResolveReferences(spec, SampleUpstream()));
  EXPECT_EQ(out["ssh"]["command"], "echo ${HOME} ${draft.score} 1");
  EXPECT_EQ(out["ssh"]["env"], "${PATH}");
  EXPECT_EQ(out["literal"], "${draft.model}");
  EXPECT_EQ(out["unterminated"], "${draft.model");
  EXPECT_EQ(out["${draft.model}"], "key stays");
  EXPECT_EQ(out["empty"], "${}");
}

TEST(ResolveReferencesTest, UnknownNodeNamesReferenceAndLocation) {
  json spec = json::parse(R"({"api": {"url": "http://x/${fetch.items.0.output}"}})");
  auto res = ResolveReferences(spec, SampleUpstream());
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(res.status().message(),
            "reference ${fetch.items.0.output} at spec.api.url: node 'fetch' is not an upstream "
            "result (known: draft, gate, train)");
}

TEST(ResolveReferencesTest, UnresolvedPathNamesReferenceLocationAndSegment) {
  json spec = json::parse(R"({"api": {"headers": ["a", "${draft.items.3.output}"]}})");
  auto res = ResolveReferences(spec, SampleUpstream());
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(res.status().message(),
            "reference ${draft.items.3.output} at spec.api.headers[1]: path 'items.3.output': "
            "index 3 out of range in 'items' (2 elements)");
}

TEST(ResolveReferencesTest, WholeResultAndSkippedUpstream) {
  Upstream up = SampleUpstream();
  json out = ValueOrDie(ResolveReferences(json{{"prev", "${gate}"}, {"t", "${train}"}}, up));
  EXPECT_EQ(out["prev"], json({{"skipped", true}}));
  EXPECT_EQ(out["t"]["metrics"]["loss"], 0.25);

  auto res = ResolveReferences(json{{"x", "${gate.items.0.output}"}}, up);
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(res.status().message(),
            "reference ${gate.items.0.output} at spec.x: path 'items.0.output': no field 'items' "
            "at the top level (node 'gate' was skipped)");

  auto malformed = ResolveReferences(json{{"x", "${draft.}"}}, up);
  EXPECT_EQ(malformed.status().message(),
            "reference ${draft.} at spec.x: malformed path '.': empty segment");
}

// ---- ConditionMet ----

TEST(ConditionMetTest, ComparesByJsonEqualityWithTolerance) {
  Upstream up = SampleUpstream();
  auto met = [&](const char* text) {
    return ValueOrDie(ConditionMet(json::parse(text), up));
  };
  EXPECT_TRUE(met(R"({"node": "draft", "field": "items.0.finish_reason", "equals": "stop"})"));
  EXPECT_FALSE(met(R"({"node": "draft", "field": "items.1.finish_reason", "equals": "stop"})"));
  EXPECT_TRUE(met(R"({"node": "draft", "field": "score", "equals": 1.0})"));
  EXPECT_TRUE(met(R"({"node": "draft", "field": "ratio", "equals": 0.5})"));
  EXPECT_FALSE(met(R"({"node": "draft", "field": "score", "equals": 2})"));
  EXPECT_TRUE(met(R"({"node": "draft", "field": "ok", "equals": "true"})"));
  EXPECT_TRUE(met(R"({"node": "draft", "field": "ok", "equals": "True"})"));
  EXPECT_FALSE(met(R"({"node": "draft", "field": "ok", "equals": "false"})"));
  EXPECT_TRUE(met(R"({"node": "draft", "field": "ok", "equals": true})"));
  EXPECT_FALSE(met(R"({"node": "draft", "field": "ok", "equals": 1})"));
  EXPECT_FALSE(met(R"({"node": "draft", "field": "score", "equals": "1"})"));
  EXPECT_TRUE(met(R"({"node": "draft", "field": "matrix[0]", "equals": [1.0, 2]})"));
  EXPECT_TRUE(met(R"({"node": "train", "field": "metrics", "equals": {"loss": 0.25}})"));
}

TEST(ConditionMetTest, MissingFieldIsNotMetMissingNodeIsAnError) {
  Upstream up = SampleUpstream();
  EXPECT_FALSE(ValueOrDie(ConditionMet(
      json::parse(R"({"node": "draft", "field": "items.9.output", "equals": "x"})"), up)));
  // A skipped upstream has no fields: the condition is simply not met.
  EXPECT_FALSE(ValueOrDie(ConditionMet(
      json::parse(R"({"node": "gate", "field": "items.0.output", "equals": "x"})"), up)));
  EXPECT_TRUE(ValueOrDie(
      ConditionMet(json::parse(R"({"node": "gate", "field": "skipped", "equals": true})"), up)));

  auto res = ConditionMet(json::parse(R"({"node": "nope", "field": "a", "equals": 1})"), up);
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(res.status().message(),
            "condition.node: node 'nope' is not an upstream result (known: draft, gate, train)");
  EXPECT_EQ(ConditionMet(json::parse(R"({"field": "a", "equals": 1})"), up).status().message(),
            "condition.node must name an upstream node");
  EXPECT_EQ(ConditionMet(json::parse(R"({"node": "draft", "field": "a"})"), up).status().message(),
            "condition.equals is missing");
  EXPECT_EQ(ConditionMet(json::parse(R"({"node": "draft", "field": "a..b", "equals": 1})"), up)
                .status()
                .message(),
            "condition.field: malformed path 'a..b': empty segment");
}

// ---- MaterializeData: list ----

TEST(MaterializeListTest, StringsChatListsAndReferences) {
  json data = json::parse(R"({
    "type": "list",
    "items": [
      "plain",
      "About: ${draft.model}",
      [{"role": "system", "content": "Be brief."},
       {"role": "user", "content": "${draft.items.1.output}"}],
      {"node": "draft", "path": "items.0.output"},
      {"node": "draft", "path": "usage"},
      {"node": "draft", "path": "items"},
      {"node": "train"}
    ]
  })");
  json out = ValueOrDie(MaterializeData(data, SampleUpstream(), {}));
  EXPECT_EQ(out, json::parse(R"({
    "type": "list",
    "source_type": "list",
    "items": [
      "plain",
      "About: qwen",
      [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Evaporation."}],
      "The water cycle.",
      {"prompt_tokens": 11, "completion_tokens": 6},
      [{"input": "q1", "output": "The water cycle.", "finish_reason": "stop",
        "usage": {"prompt_tokens": 5, "completion_tokens": 4}},
       {"input": "q2", "output": "Evaporation.", "finish_reason": "length",
        "usage": {"prompt_tokens": 6, "completion_tokens": 2}}],
      {"final_lora_archive": "cas://abc", "metrics": {"loss": 0.25}}
    ]
  })"));
}

TEST(MaterializeListTest, ErrorsNameTheItem) {
  Upstream up = SampleUpstream();
  auto bad_ref = MaterializeData(
      json::parse(R"({"type": "list", "items": ["a", {"node": "draft", "path": "items.7"}]})"), up,
      {});
  EXPECT_EQ(bad_ref.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_ref.status().message(),
            "data reference {node: draft, path: items.7} at data.items[1]: path 'items.7': index "
            "7 out of range in 'items' (2 elements)");
  auto unknown = MaterializeData(
      json::parse(R"({"type": "list", "items": [{"node": "ghost", "path": "x"}]})"), up, {});
  EXPECT_EQ(unknown.status().message(),
            "data reference {node: ghost, path: x} at data.items[0]: node 'ghost' is not an "
            "upstream result (known: draft, gate, train)");
  auto bad_chat = MaterializeData(
      json::parse(R"({"type": "list",
                      "items": [[{"role": "user", "content": "hi"}, {"content": "x"}]]})"),
      up, {});
  EXPECT_EQ(bad_chat.status().message(), "data.items[0][1]: a chat message needs role and content");
  auto bad_type = MaterializeData(json::parse(R"({"type": "table"})"), up, {});
  EXPECT_EQ(bad_type.status().message(),
            "data.type: unknown data type 'table' (known: list, graph_template, dataframe, "
            "dataset)");
}

TEST(MaterializeListTest, MaxRows) {
  DataOptions opts;
  opts.max_rows = 2;
  auto res = MaterializeData(json::parse(R"({"type": "list", "items": ["a", "b", "c"]})"), {},
                             opts);
  EXPECT_EQ(res.status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(res.status().message(), "data: 3 rows exceed max_rows (2)");
}

// ---- MaterializeData: graph_template ----

TEST(GraphTemplateTest, ExampleFromWorkflowsDoc) {
  json data = json::parse(R"({
    "type": "graph_template",
    "template": {
      "text": "Is this summary correct? {draft}",
      "columns": [{"label": "draft", "node": "draft", "path": "items.0.output"}]
    }
  })");
  json out = ValueOrDie(MaterializeData(data, SampleUpstream(), {}));
  EXPECT_EQ(out["type"], "list");
  EXPECT_EQ(out["source_type"], "graph_template");
  EXPECT_EQ(out["items"], json::parse(R"(["Is this summary correct? The water cycle."])"));
  EXPECT_EQ(out["template"], data["template"]);  // other keys are kept
}

TEST(GraphTemplateTest, ListColumnsBroadcastWithScalars) {
  json data = json::parse(R"J({
    "type": "graph_template",
    "template": {
      "text": "[{model}] {{{q}}} -> {a} ({n})",
      "columns": [
        {"label": "q", "expr": "${draft.items.*.input}"},
        {"label": "a", "expr": "draft.items[*].output"},
        {"label": "model", "expr": "draft.model"},
        {"label": "n", "node": "draft", "path": "items.*.usage.completion_tokens"}
      ],
      "options": {"stop": ["\n"]}
    }
  })J");
  json out = ValueOrDie(MaterializeData(data, SampleUpstream(), {}));
  EXPECT_EQ(out["items"], json::parse(R"J([
    "[qwen] {q1} -> The water cycle. (4)",
    "[qwen] {q2} -> Evaporation. (2)"
  ])J"));
  EXPECT_EQ(out["template"]["options"], json::parse(R"({"stop": ["\n"]})"));
}

TEST(GraphTemplateTest, LengthMismatchNamesColumnsAndLengths) {
  json data = json::parse(R"({
    "type": "graph_template",
    "template": {
      "text": "{a} {b}",
      "columns": [
        {"label": "a", "node": "draft", "path": "items.*.output"},
        {"label": "b", "node": "draft", "path": "matrix"}
      ]
    }
  })");
  auto res = MaterializeData(data, SampleUpstream(), {});
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(res.status().message(),
            "data: list columns must have the same length to broadcast, got a=2, b=3");
}

TEST(GraphTemplateTest, DefaultsForMissingAndSkippedValues) {
  json data = json::parse(R"({
    "type": "graph_template",
    "template": {
      "text": "{x}|{y}|{z}",
      "columns": [
        {"label": "x", "node": "gate", "path": "items.0.output", "default": "n/a"},
        {"label": "y", "expr": "${draft.missing}", "default": ["d1", "d2"]},
        {"label": "z", "node": "draft", "path": "score", "default": 99}
      ]
    }
  })");
  json out = ValueOrDie(MaterializeData(data, SampleUpstream(), {}));
  EXPECT_EQ(out["items"], json::parse(R"(["n/a|d1|1", "n/a|d2|1"])"));

  data["template"]["columns"][0].erase("default");
  auto res = MaterializeData(data, SampleUpstream(), {});
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(res.status().message(),
            "node 'gate' path 'items.0.output' at data.template.columns[0]: path "
            "'items.0.output': no field 'items' at the top level (node 'gate' was skipped) and "
            "the column has no default");
}

TEST(GraphTemplateTest, UnknownNodeIsAnErrorEvenWithDefault) {
  json data = json::parse(R"({
    "type": "graph_template",
    "template": {"text": "{x}", "columns": [{"label": "x", "expr": "ghost.items", "default": 1}]}
  })");
  auto res = MaterializeData(data, SampleUpstream(), {});
  EXPECT_EQ(res.status().message(),
            "expr 'ghost.items' at data.template.columns[0]: node 'ghost' is not an upstream "
            "result (known: draft, gate, train)");
}

TEST(GraphTemplateTest, NoListColumnGivesOneRowAndBroadcastFalseKeepsAList) {
  json data = json::parse(R"({
    "type": "graph_template",
    "template": {
      "name": "classify",
      "columns": [
        {"label": "text", "node": "draft", "path": "items.0.output"},
        {"label": "labels", "value": ["good", "bad"], "broadcast": false}
      ]
    }
  })");
  json out = ValueOrDie(MaterializeData(data, SampleUpstream(), {}));
  EXPECT_EQ(out["items"],
            json::array({"Classify: The water cycle.\nLabels: [\"good\",\"bad\"]"}));
}

TEST(GraphTemplateTest, BuiltinNames) {
  json data = json::parse(R"({
    "type": "graph_template",
    "template": {"name": "qa", "columns": [{"label": "question", "expr": "draft.items.*.input"}]}
  })");
  EXPECT_EQ(ValueOrDie(MaterializeData(data, SampleUpstream(), {}))["items"],
            json::parse(R"(["Question: q1\nAnswer:", "Question: q2\nAnswer:"])"));
  data["template"] = json::parse(
      R"({"name": "summarize",
          "columns": [{"label": "text", "expr": "${draft.items.1.output}"}]})");
  EXPECT_EQ(ValueOrDie(MaterializeData(data, SampleUpstream(), {}))["items"],
            json::array({"Summarize the following text:\nEvaporation."}));

  data["template"] = json::parse(R"({"name": "translate", "columns": []})");
  auto res = MaterializeData(data, SampleUpstream(), {});
  EXPECT_EQ(res.status().message(),
            "data.template.name: unknown template 'translate' (known: classify, qa, summarize)");
}

TEST(GraphTemplateTest, ChatMessagesPerRow) {
  json data = json::parse(R"({
    "type": "graph_template",
    "template": {
      "messages": [
        {"role": "system", "content": "You grade answers from ${draft.model}."},
        {"role": "user", "content": "Q: {q}\nA: {a}"}
      ],
      "columns": [
        {"label": "q", "expr": "draft.items.*.input"},
        {"label": "a", "expr": "draft.items.*.output"}
      ]
    }
  })");
  json out = ValueOrDie(MaterializeData(data, SampleUpstream(), {}));
  EXPECT_EQ(out["items"], json::parse(R"([
    [{"role": "system", "content": "You grade answers from qwen."},
     {"role": "user", "content": "Q: q1\nA: The water cycle."}],
    [{"role": "system", "content": "You grade answers from qwen."},
     {"role": "user", "content": "Q: q2\nA: Evaporation."}]
  ])"));
}

TEST(GraphTemplateTest, SlotErrors) {
  Upstream up = SampleUpstream();
  auto make = [](const std::string& text) {
    json data = json::parse(R"({"type": "graph_template",
      "template": {"columns": [{"label": "a", "expr": "draft.model"}]}})");
    data["template"]["text"] = text;
    return data;
  };
  EXPECT_EQ(MaterializeData(make("{a} {b}"), up, {}).status().message(),
            "data.template.text: slot {b} has no column (columns: a)");
  EXPECT_EQ(MaterializeData(make("{a"), up, {}).status().message(),
            "data.template.text: '{' at offset 0 has no closing '}' (write '{{' for a literal "
            "brace)");
  EXPECT_EQ(MaterializeData(make("a}"), up, {}).status().message(),
            "data.template.text: single '}' at offset 1 (write '}}' for a literal brace)");
  // Text substituted from a reference is not read as slots.
  EXPECT_EQ(ValueOrDie(MaterializeData(make("{a} ${train.metrics}"), up, {}))["items"],
            json::array({"qwen {\"loss\":0.25}"}));

  json two = make("{a}");
  two["template"]["name"] = "qa";
  EXPECT_EQ(MaterializeData(two, up, {}).status().message(),
            "data.template needs exactly one of name, text, messages");
  json dup = make("{a}");
  dup["template"]["columns"].push_back({{"label", "a"}, {"value", 1}});
  EXPECT_EQ(MaterializeData(dup, up, {}).status().message(),
            "data.template.columns[1].label: duplicate column 'a'");
}

// ---- MaterializeData: dataframe ----

TEST(DataframeTest, ColumnsObjectAndListForms) {
  json data = json::parse(R"({
    "type": "dataframe",
    "columns": {"city": ["Paris", "Rome"], "lang": "English"},
    "messages": [{"role": "user", "content": "Describe {city} in {lang}."}]
  })");
  json expected = json::parse(R"([
    [{"role": "user", "content": "Describe Paris in English."}],
    [{"role": "user", "content": "Describe Rome in English."}]
  ])");
  json out = ValueOrDie(MaterializeData(data, {}, {}));
  EXPECT_EQ(out["items"], expected);
  EXPECT_EQ(out["source_type"], "dataframe");

  data["columns"] = json::parse(
      R"([{"name": "city", "values": ["Paris", "Rome"]}, {"name": "lang", "values": "English"}])");
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, {}))["items"], expected);

  data["columns"] = json::parse(R"({"city": ["Paris", "Rome"], "lang": ["en", "it", "fr"]})");
  EXPECT_EQ(MaterializeData(data, {}, {}).status().message(),
            "data: list columns must have the same length to broadcast, got city=2, lang=3");
}

// ---- MaterializeData: dataset ----

TEST(DatasetTest, JsonlDefaultColumnAndRelativePath) {
  DataOptions opts;
  opts.data_dir = kDatasets;
  json out = ValueOrDie(
      MaterializeData(json::parse(R"({"type": "dataset", "name": "greek.jsonl"})"), {}, opts));
  EXPECT_EQ(out["items"], json::parse(R"(["alpha", "beta", "gamma", "delta", "epsilon", "zeta",
                                          "eta", "theta", "iota", "kappa"])"));
  EXPECT_EQ(out["source_type"], "dataset");
  EXPECT_EQ(out["name"], "greek.jsonl");

  json labels = ValueOrDie(MaterializeData(
      json::parse(R"({"type": "dataset", "url": "greek.jsonl", "column": "label",
                      "split": "train[:3]"})"),
      {}, opts));
  EXPECT_EQ(labels["items"], json::parse("[1, 2, 3]"));
}

TEST(DatasetTest, JsonlChatColumnAndFileUrl) {
  json data = {{"type", "dataset"},
               {"url", "file://" + kDatasets + "/chat.jsonl"},
               {"column", "messages"}};
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, {}))["items"], json::parse(R"([
    [{"role": "user", "content": "hello"}], [{"role": "user", "content": "bye"}]
  ])"));
}

TEST(DatasetTest, CsvQuotingAndColumns) {
  DataOptions opts;
  opts.data_dir = kDatasets;
  json data = json::parse(R"({"type": "dataset", "url": "qa.csv", "column": "question"})");
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, opts))["items"],
            json::parse(R"(["What is 2+2?", "Say \"hi\"", "Line one\nline two", "plain"])"));
  data["column"] = "answer";
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, opts))["items"],
            json::parse(R"(["4", "hi, there", "multi", "x"])"));
  data.erase("column");
  EXPECT_EQ(MaterializeData(data, {}, opts).status().message(),
            "data: dataset '" + kDatasets + "/qa.csv' has no column 'text' (columns: id, "
            "question, answer)");
}

TEST(DatasetTest, CsvMalformed) {
  testing::TempDir dir;
  DataOptions opts;
  opts.data_dir = dir.path();
  std::ofstream(dir / "open.csv") << "text\nok\n\"never closed\n";
  std::ofstream(dir / "ragged.csv") << "a,text\n1,x\n2\n";
  std::ofstream(dir / "junk.csv") << "text\n\"quoted\"junk\n";
  auto open = MaterializeData(json{{"type", "dataset"}, {"url", "open.csv"}}, {}, opts);
  EXPECT_EQ(open.status().message(), "data: CSV quoted field opened on line 3 is never closed");
  auto ragged = MaterializeData(json{{"type", "dataset"}, {"url", "ragged.csv"}}, {}, opts);
  EXPECT_EQ(ragged.status().message(),
            "data: dataset '" + dir.path() + "/ragged.csv' line 3 has 1 fields, the header has 2");
  auto junk = MaterializeData(json{{"type", "dataset"}, {"url", "junk.csv"}}, {}, opts);
  EXPECT_EQ(junk.status().message(),
            "data: CSV line 2: unexpected character after a closing quote");
}

TEST(DatasetTest, FormatByContentAndJsonArray) {
  testing::TempDir dir;
  DataOptions opts;
  opts.data_dir = dir.path();
  std::ofstream(dir / "rows.data") << "{\"text\": \"one\"}\n{\"text\": \"two\"}\n";
  std::ofstream(dir / "table.data") << "text,n\r\nthree,3\r\n";
  std::ofstream(dir / "array.json") << R"([{"text": "four"}, {"text": "five"}])";
  std::ofstream(dir / "bad.jsonl") << "{\"text\": \"ok\"}\n{broken\n";
  auto items = [&](const char* name) {
    return ValueOrDie(MaterializeData(json{{"type", "dataset"}, {"url", name}}, {}, opts))["items"];
  };
  EXPECT_EQ(items("rows.data"), json::parse(R"(["one", "two"])"));
  EXPECT_EQ(items("table.data"), json::parse(R"(["three"])"));
  EXPECT_EQ(items("array.json"), json::parse(R"(["four", "five"])"));
  EXPECT_EQ(MaterializeData(json{{"type", "dataset"}, {"url", "bad.jsonl"}}, {}, opts)
                .status()
                .message(),
            "data: dataset '" + dir.path() + "/bad.jsonl' line 2 is not valid JSON");
  EXPECT_EQ(MaterializeData(json{{"type", "dataset"}, {"url", "rows.data"}, {"column", "x"}}, {},
                            opts)
                .status()
                .message(),
            "data: dataset '" + dir.path() + "/rows.data' line 1 has no field 'x' (fields: text)");
}

TEST(DatasetTest, SplitSlices) {
  DataOptions opts;
  opts.data_dir = kDatasets;
  auto items = [&](const std::string& split) {
    json data = {{"type", "dataset"}, {"url", "greek.jsonl"}, {"column", "label"},
                 {"split", split}};
    return ValueOrDie(MaterializeData(data, {}, opts))["items"];
  };
  EXPECT_EQ(items("train"), json::parse("[1,2,3,4,5,6,7,8,9,10]"));
  EXPECT_EQ(items("train[:3]"), json::parse("[1,2,3]"));
  EXPECT_EQ(items("train[7:]"), json::parse("[8,9,10]"));
  EXPECT_EQ(items("test[2:4]"), json::parse("[3,4]"));
  EXPECT_EQ(items("train[10%:30%]"), json::parse("[2,3]"));
  EXPECT_EQ(items("train[:25%]"), json::parse("[1,2,3]"));  // 2.5 rounds to 3
  EXPECT_EQ(items("train[-2:]"), json::parse("[9,10]"));
  EXPECT_EQ(items("train[5:2]"), json::array());
  EXPECT_EQ(items("train[:100]"), json::parse("[1,2,3,4,5,6,7,8,9,10]"));
  for (const char* bad : {"train[", "train[1]", "train[a:b]", "train[:150%]", "a+b", ""}) {
    json data = {{"type", "dataset"}, {"url", "greek.jsonl"}, {"split", bad}};
    auto res = MaterializeData(data, {}, opts);
    EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(res.status().message().find("data.split: "), std::string::npos) << bad;
  }
}

TEST(DatasetTest, ShuffleIsDeterministic) {
  // The engine's output is fixed by the C++ standard ([rand.predef]): the 10000th value of a
  // default-constructed mt19937_64. The expected orders below were computed by an
  // independent Python implementation of MT19937-64 and the documented Fisher–Yates loop.
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ull);

  DataOptions opts;
  opts.data_dir = kDatasets;
  json data = json::parse(R"({"type": "dataset", "url": "greek.jsonl", "column": "label",
                              "shuffle": true, "seed": 42})");
  json first = ValueOrDie(MaterializeData(data, {}, opts))["items"];
  EXPECT_EQ(first, json::parse("[2, 8, 10, 1, 4, 9, 5, 3, 6, 7]"));
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, opts))["items"], first);
  data["seed"] = 7;
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, opts))["items"],
            json::parse("[1, 8, 5, 10, 4, 2, 3, 9, 7, 6]"));
  data.erase("seed");  // default seed 0
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, opts))["items"],
            json::parse("[8, 3, 1, 9, 4, 10, 7, 2, 6, 5]"));
  // Split first, then shuffle, then limit.
  data["seed"] = 42;
  data["split"] = "train[2:8]";  // rows 3..8
  data["limit"] = 4;
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, opts))["items"], json::parse("[6, 4, 8, 5]"));
}

TEST(DatasetTest, Limits) {
  DataOptions opts;
  opts.data_dir = kDatasets;
  opts.max_rows = 4;
  json data = json::parse(R"({"type": "dataset", "url": "greek.jsonl"})");
  auto rows = MaterializeData(data, {}, opts);
  EXPECT_EQ(rows.status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(rows.status().message(), "data: 10 rows exceed max_rows (4)");
  data["limit"] = 4;
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, opts))["items"].size(), 4u);

  opts.max_bytes = 100;
  auto bytes = MaterializeData(data, {}, opts);
  EXPECT_EQ(bytes.status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(bytes.status().message(), "data: dataset '" + kDatasets +
                                          "/greek.jsonl' is 299 bytes, more than max_bytes (100)");
}

TEST(DatasetTest, SourceErrors) {
  DataOptions opts;
  opts.data_dir = kDatasets;
  auto missing = MaterializeData(json::parse(R"({"type": "dataset", "name": "nope.jsonl"})"), {},
                                 opts);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "data.name: dataset file '" + kDatasets + "/nope.jsonl' not found");
  auto s3 = MaterializeData(json::parse(R"({"type": "dataset", "url": "s3://b/k.csv"})"), {},
                            opts);
  EXPECT_EQ(s3.status().message(),
            "data.url: unsupported dataset URL 's3://b/k.csv' (supported: local path, file://, "
            "http://, https://)");
  EXPECT_EQ(MaterializeData(json::parse(R"({"type": "dataset"})"), {}, opts).status().message(),
            "data: a dataset needs url or name (a path or http:// URL)");
}

TEST(DatasetTest, UrlFromUpstreamReference) {
  Upstream up;
  up["prep"] = json{{"path", kDatasets + "/greek.jsonl"}};
  json data = json::parse(R"({"type": "dataset", "url": "${prep.path}", "split": "train[:2]"})");
  json out = ValueOrDie(MaterializeData(data, up, {}));
  EXPECT_EQ(out["items"], json::parse(R"(["alpha", "beta"])"));
  EXPECT_EQ(out["url"], kDatasets + "/greek.jsonl");
}

// A real HTTP server on port 0 serving the fixtures.
class HttpDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_shared<http::Router>();
    router->Add("GET", "/files/greek.jsonl", [](http::Request&) {
      std::ifstream in(kDatasets + "/greek.jsonl");
      std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      http::Response r;
      r.content_type = "application/x-ndjson";
      r.body = body;
      return r;
    });
    router->Add("GET", "/export", [](http::Request& req) {
      http::Response r;
      r.content_type = "text/csv";
      r.body = "text,q\n\"from, csv\"," + req.Query("q") + "\n";
      return r;
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, router);
    ASSERT_TRUE(server_->Start().ok());
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override { server_->Stop(); }

  std::unique_ptr<http::Server> server_;
  std::string base_;
};

TEST_F(HttpDatasetTest, FetchesJsonlAndCsv) {
  json data = {{"type", "dataset"}, {"url", base_ + "/files/greek.jsonl#frag"},
               {"split", "train[-3:]"}};
  EXPECT_EQ(ValueOrDie(MaterializeData(data, {}, {}))["items"],
            json::parse(R"(["theta", "iota", "kappa"])"));
  // No extension: the Content-Type says CSV.
  json csv = {{"type", "dataset"}, {"url", base_ + "/export?q=1"}};
  EXPECT_EQ(ValueOrDie(MaterializeData(csv, {}, {}))["items"], json::array({"from, csv"}));
}

TEST_F(HttpDatasetTest, ErrorsNameTheUrl) {
  json data = {{"type", "dataset"}, {"url", base_ + "/missing.jsonl"}};
  auto res = MaterializeData(data, {}, {});
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(res.status().message(),
            "data.url: GET " + base_ + "/missing.jsonl returned HTTP 404");
  DataOptions small;
  small.max_bytes = 10;
  data["url"] = base_ + "/files/greek.jsonl";
  auto big = MaterializeData(data, {}, small);
  EXPECT_EQ(big.status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(big.status().message(),
            "data: dataset '" + base_ +
                "/files/greek.jsonl' is 299 bytes, more than max_bytes (10)");
}

// ---- PrepareTaskSpec ----

TEST(PrepareTaskSpecTest, ResolvesEverythingAndMaterialisesData) {
  json spec = json::parse(R"({
    "taskType": "inference",
    "model": {"adapters": [{"type": "lora", "path": "${train.final_lora_archive}"}]},
    "inference": {"max_tokens": "${draft.usage.completion_tokens}", "temperature": 0},
    "condition": {"node": "draft", "field": "ok", "equals": true},
    "data": {
      "type": "graph_template",
      "template": {"text": "Check {a}", "columns": [{"label": "a", "expr": "draft.items.*.output"}]}
    }
  })");
  json out = ValueOrDie(PrepareTaskSpec(spec, SampleUpstream(), {}));
  EXPECT_EQ(out["model"]["adapters"][0]["path"], "cas://abc");
  EXPECT_EQ(out["inference"]["max_tokens"], 6);
  EXPECT_EQ(out["condition"], spec["condition"]);
  EXPECT_EQ(out["data"]["type"], "list");
  EXPECT_EQ(out["data"]["source_type"], "graph_template");
  EXPECT_EQ(out["data"]["items"],
            json::parse(R"(["Check The water cycle.", "Check Evaporation."])"));
}

TEST(PrepareTaskSpecTest, ErrorLocationsStartWithSpec) {
  Upstream up = SampleUpstream();
  auto in_data = PrepareTaskSpec(
      json::parse(R"({"taskType": "echo", "data": {"type": "list", "items": ["${draft.nope}"]}})"),
      up, {});
  EXPECT_EQ(in_data.status().message(),
            "reference ${draft.nope} at spec.data.items[0]: path 'nope': no field 'nope' at the "
            "top level");
  auto outside = PrepareTaskSpec(json::parse(R"({"api": {"body": {"q": "${x.y}"}}})"), up, {});
  EXPECT_EQ(outside.status().message(),
            "reference ${x.y} at spec.api.body.q: node 'x' is not an upstream result (known: "
            "draft, gate, train)");
  // A spec without data is only resolved.
  EXPECT_EQ(ValueOrDie(PrepareTaskSpec(json{{"taskType", "echo"}}, up, {})),
            json({{"taskType", "echo"}}));
}

TEST(PrepareTaskSpecTest, RetrievalSourcesKeepTheirTypeAndResolveParams) {
  json spec = json::parse(R"({"taskType": "data_retrieval", "data": {
    "type": "sql", "connection_string": "postgresql://h/${draft.model}",
    "template": "SELECT * FROM t WHERE s = '{s}' LIMIT {n}",
    "params": [{"label": "s", "node": "draft", "path": "items.*.output"},
               {"label": "n", "data": {"type": "list", "items": [1, 2]}},
               {"label": "k", "value": "fixed"}]}})");
  DataOptions opts;
  opts.retrieval_source = true;
  json out = ValueOrDie(PrepareTaskSpec(spec, SampleUpstream(), opts));
  EXPECT_EQ(out["data"]["type"], "sql");  // not materialised into a list
  EXPECT_EQ(out["data"]["connection_string"], "postgresql://h/qwen");
  EXPECT_EQ(out["data"]["template"], spec["data"]["template"]);
  EXPECT_EQ(out["data"]["params"], json::parse(R"([
    {"label": "s", "value": ["The water cycle.", "Evaporation."]},
    {"label": "n", "value": [1, 2]},
    {"label": "k", "value": "fixed"}])"));
  // Any source type reaches the executor, which names what it supports.
  json s3 = ValueOrDie(PrepareTaskSpec(
      json::parse(R"({"taskType": "data_retrieval", "data": {"type": "s3"}})"), {}, opts));
  EXPECT_EQ(s3["data"], json({{"type", "s3"}}));
  auto missing = PrepareTaskSpec(
      json::parse(R"({"data": {"type": "sql", "params": [{"label": "s", "node": "nope"}]}})"),
      SampleUpstream(), opts);
  EXPECT_FALSE(missing.ok());
}

TEST(PrepareTaskSpecTest, PythonInputsCarryTheirUpstreamResults) {
  Upstream up = {{"a", json{{"items", {1}}}}, {"b", json{{"skipped", true}}}};
  json named = ValueOrDie(PrepareTaskSpec(json::parse(R"({"taskType": "python", "python": {
      "code": "x", "inputs": ["a", {"stage": "b", "mountPath": "/mnt/flowmesh/b"}]}})"),
                                          up, {}));
  EXPECT_EQ(named["python"]["inputs"], json::parse(R"([
    {"stage": "a", "result": {"items": [1]}},
    {"stage": "b", "mountPath": "/mnt/flowmesh/b", "result": {"skipped": true}}])"));
  // Without inputs every upstream node is one; other task types are left alone.
  json all =
      ValueOrDie(PrepareTaskSpec(json::parse(R"({"taskType": "python", "python": {}})"), up, {}));
  EXPECT_EQ(all["python"]["inputs"].size(), 2u);
  EXPECT_EQ(all["python"]["inputs"][1]["stage"], "b");
  EXPECT_EQ(ValueOrDie(PrepareTaskSpec(json{{"taskType", "echo"}}, up, {})),
            json({{"taskType", "echo"}}));
}

// A real TLS server: `openssl s_server -WWW` serving the fixtures over https with a
// certificate made for the test.
class HttpsDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl > /dev/null") != 0) GTEST_SKIP() << "no openssl";
    cert_ = dir_ / "cert.pem";
    std::string key = dir_ / "key.pem";
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '" + key +
                      "' -out '" + cert_ + "' > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    port_ = FreePort();
    SpawnOptions so;
    // -WWW serves files relative to the working directory: run it inside the fixtures.
    so.argv = {"/bin/sh", "-c", "cd '" + kDatasets + "' && exec openssl s_server -quiet -WWW -accept " +
                                     std::to_string(port_) + " -cert '" + cert_ + "' -key '" + key + "'"};
    so.log_file = dir_ / "s_server.log";
    auto pid = Spawn(so);
    ASSERT_TRUE(pid.ok()) << pid.status().ToString();
    pid_ = *pid;
    for (int i = 0; i < 200 && !Listening(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    ASSERT_TRUE(Listening());
  }
  void TearDown() override {
    if (pid_ > 0) TerminateProcess(pid_, std::chrono::milliseconds(2000));
  }
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  bool Listening() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    return ok;
  }
  std::string Url(const std::string& file) const {
    return "https://127.0.0.1:" + std::to_string(port_) + "/" + file;
  }

  testing::TempDir dir_;
  std::string cert_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(HttpsDatasetTest, FetchesOverVerifiedTls) {
  DataOptions opts;
  opts.https_ca_file = cert_;
  json data = {{"type", "dataset"}, {"url", Url("greek.jsonl")}, {"split", "train[:2]"}};
  json out = ValueOrDie(MaterializeData(data, {}, opts));
  EXPECT_EQ(out["items"], json::parse(R"(["alpha", "beta"])"));
}

TEST_F(HttpsDatasetTest, UntrustedCertificateAndMissingFileAreClearErrors) {
  json data = {{"type", "dataset"}, {"url", Url("greek.jsonl")}};
  auto untrusted = MaterializeData(data, {}, DataOptions{});
  EXPECT_EQ(untrusted.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(untrusted.status().message().find("data.url: GET " + Url("greek.jsonl") + " failed"),
            std::string::npos)
      << untrusted.status().message();
  DataOptions opts;
  opts.https_ca_file = cert_;
  opts.max_bytes = 10;
  auto big = MaterializeData(data, {}, opts);
  EXPECT_EQ(big.status().code(), StatusCode::kTooLarge) << big.status().message();
}

}  // namespace
}  // namespace flowmesh::dataflow
