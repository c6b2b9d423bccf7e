#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "spec/operator.h"
#include "spec/workflow.h"

namespace flowmesh::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Parsed {
  Result<WorkflowDef> result;
  std::vector<SpecError> errors;
};

Parsed Parse(const std::string& text, Format format = Format::kNative) {
  std::vector<SpecError> errors;
  Result<WorkflowDef> result = ParseWorkflow(text, format, &errors);
  return Parsed{std::move(result), std::move(errors)};
}

std::string Dump(const std::vector<SpecError>& errors) {
  std::string out;
  for (const SpecError& e : errors) out += "  " + e.ToString() + "\n";
  return out;
}

// The error at `path` whose message contains `text`, or nullptr.
const SpecError* Find(const std::vector<SpecError>& errors, const std::string& path,
                      const std::string& text) {
  for (const SpecError& e : errors) {
    if (e.path == path && e.message.find(text) != std::string::npos) return &e;
  }
  return nullptr;
}

#define EXPECT_ERROR_AT(parsed, path, text, want_line, want_column)                      \
  do {                                                                                   \
    EXPECT_FALSE((parsed).result.ok());                                                  \
    const SpecError* e_ = Find((parsed).errors, path, text);                             \
    ASSERT_NE(e_, nullptr) << "no error at " << path << " containing '" << text << "'\n" \
                           << Dump((parsed).errors);                                     \
    EXPECT_EQ(e_->line, want_line) << e_->ToString();                                    \
    EXPECT_EQ(e_->column, want_column) << e_->ToString();                                \
  } while (0)

std::vector<std::string> NodeNames(const WorkflowDef& def) {
  std::vector<std::string> names;
  for (const TaskDef& t : def.tasks) names.push_back(t.node_name);
  return names;
}

// ---------------------------------------------------------------------------------------
// Shapes

TEST(SpecShapes, SingleTask) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: hello, owner: alice}
spec:
  taskType: inference
  maxAttempts: 5
  timeoutSeconds: 30.5
  data: {type: list, items: [hi]}
)");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  const WorkflowDef& def = p.result.value();
  EXPECT_EQ(def.name, "hello");
  EXPECT_EQ(def.metadata["owner"], "alice");
  ASSERT_EQ(def.tasks.size(), 1u);
  const TaskDef& t = def.tasks[0];
  EXPECT_EQ(t.node_name, "main");
  EXPECT_EQ(t.task_name, "hello:main");
  EXPECT_EQ(t.task_type, "inference");
  EXPECT_EQ(t.category, "inference");
  EXPECT_TRUE(t.depends_on.empty());
  EXPECT_EQ(t.max_attempts, 5);
  EXPECT_DOUBLE_EQ(t.timeout_seconds, 30.5);
  EXPECT_EQ(t.spec["data"]["items"][0], "hi");
  EXPECT_TRUE(p.errors.empty());
}

TEST(SpecShapes, StagesDependOnThePreviousStageByDefault) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: st}
spec:
  taskType: echo
  stages:
    - name: one
    - name: two
      spec: {taskType: sft}
    - name: three
      dependsOn: []
    - name: four
      spec:
        dependsOn: [one, two]
    - name: five
)");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  const WorkflowDef& def = p.result.value();
  ASSERT_EQ(def.tasks.size(), 5u);
  EXPECT_THAT(NodeNames(def), ElementsAre("one", "two", "three", "four", "five"));
  EXPECT_TRUE(def.tasks[0].depends_on.empty());
  EXPECT_THAT(def.tasks[1].depends_on, ElementsAre("one"));
  EXPECT_TRUE(def.tasks[2].depends_on.empty());  // explicit empty list: no implicit edge
  EXPECT_THAT(def.tasks[3].depends_on, ElementsAre("one", "two"));
  EXPECT_THAT(def.tasks[4].depends_on, ElementsAre("four"));
  EXPECT_EQ(def.tasks[1].task_type, "sft");
  EXPECT_EQ(def.tasks[1].category, "training");
  EXPECT_EQ(def.tasks[0].category, "other");
  EXPECT_EQ(def.tasks[4].task_name, "st:five");
  EXPECT_EQ(def.tasks[0].max_attempts, 3);
  EXPECT_EQ(def.tasks[0].timeout_seconds, 0);
}

TEST(SpecShapes, GraphDiamondInTopologicalOrder) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: diamond}
spec:
  graph:
    nodes:
      - {name: d, dependsOn: [b, c], spec: {taskType: echo}}
      - {name: c, dependsOn: [a], spec: {taskType: echo}}
      - {name: b, dependsOn: [a], spec: {taskType: echo}}
      - {name: a, spec: {taskType: echo}}
)");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  // Ready nodes are taken in document order: after a, c (listed before b) goes first.
  EXPECT_THAT(NodeNames(p.result.value()), ElementsAre("a", "c", "b", "d"));
  EXPECT_THAT(p.result->tasks[3].depends_on, ElementsAre("b", "c"));
}

TEST(SpecShapes, TopologicalOrderIsStable) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: order}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: x, dependsOn: [y]}
      - {name: y}
      - {name: z}
      - {name: w, spec: {dependsOn: [z, x]}}
)");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  EXPECT_THAT(NodeNames(p.result.value()), ElementsAre("y", "x", "z", "w"));
}

TEST(SpecShapes, TopLevelSpecIsDeepMergedNodeKeysWin) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: merge}
spec:
  taskType: inference
  model:
    source: {type: huggingface, identifier: Qwen/Qwen2.5-0.5B}
  resources:
    hardware: {cpu: 2, memory: 8Gi, gpu: {type: any, count: 1}}
  inference: {max_tokens: 64, stop: ["a", "b"]}
  graph:
    nodes:
      - name: n1
        spec:
          resources: {hardware: {cpu: 4, gpu: {count: 2}}}
          inference: {stop: ["c"]}
      - name: n2
        spec:
          taskType: embedding
          model: {source: {identifier: other/model}}
)");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  const TaskDef& n1 = p.result->tasks[0];
  const TaskDef& n2 = p.result->tasks[1];
  EXPECT_EQ(n1.task_type, "inference");
  EXPECT_EQ(n1.spec["resources"]["hardware"]["cpu"], 4);
  EXPECT_EQ(n1.spec["resources"]["hardware"]["memory"], "8Gi");
  EXPECT_EQ(n1.spec["resources"]["hardware"]["gpu"]["type"], "any");
  EXPECT_EQ(n1.spec["resources"]["hardware"]["gpu"]["count"], 2);
  EXPECT_EQ(n1.spec["inference"]["max_tokens"], 64);
  EXPECT_EQ(n1.spec["inference"]["stop"], nlohmann::json::array({"c"}));  // lists replace
  EXPECT_FALSE(n1.spec.contains("graph"));
  EXPECT_EQ(n2.task_type, "embedding");
  EXPECT_EQ(n2.spec["model"]["source"]["type"], "huggingface");
  EXPECT_EQ(n2.spec["model"]["source"]["identifier"], "other/model");
  EXPECT_EQ(n2.spec["resources"]["hardware"]["cpu"], 2);
}

TEST(SpecShapes, JsonIsAccepted) {
  Parsed p = Parse(R"({"apiVersion": "flowmesh/v1", "kind": "Workflow",
 "metadata": {"name": "j"},
 "spec": {"taskType": "echo", "maxAttempts": 2, "data": {"type": "list", "items": ["1", 2]}}})");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  EXPECT_EQ(p.result->tasks[0].max_attempts, 2);
  EXPECT_TRUE(p.result->tasks[0].spec["data"]["items"][0].is_string());
  EXPECT_TRUE(p.result->tasks[0].spec["data"]["items"][1].is_number_integer());
}

TEST(SpecShapes, ScalarTypes) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: scalars}
spec:
  taskType: echo
  echo:
   message:
    int: 42
    neg: -7
    hex: 0x1F
    float: 1.5
    exp: 2e3
    yes_bool: true
    no_bool: False
    nothing: null
    tilde: ~
    empty:
    quoted_int: "42"
    single_quoted_bool: 'true'
    quoted_null: "null"
    word: yes
    version: 1.2.3
    big: 123456789012345678901234567890
    unsigned: 18446744073709551615
    tagged: !!str 12
)");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  const nlohmann::json& v = p.result->tasks[0].spec["echo"]["message"];
  EXPECT_EQ(v["int"], 42);
  EXPECT_TRUE(v["int"].is_number_integer());
  EXPECT_EQ(v["neg"], -7);
  EXPECT_EQ(v["hex"], 31);
  EXPECT_TRUE(v["float"].is_number_float());
  EXPECT_DOUBLE_EQ(v["float"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(v["exp"].get<double>(), 2000);
  EXPECT_EQ(v["yes_bool"], true);
  EXPECT_EQ(v["no_bool"], false);
  EXPECT_TRUE(v["nothing"].is_null());
  EXPECT_TRUE(v["tilde"].is_null());
  EXPECT_TRUE(v["empty"].is_null());
  EXPECT_EQ(v["quoted_int"], "42");
  EXPECT_EQ(v["single_quoted_bool"], "true");
  EXPECT_EQ(v["quoted_null"], "null");
  EXPECT_EQ(v["word"], "yes");  // YAML 1.2: only true/false are booleans
  EXPECT_EQ(v["version"], "1.2.3");
  EXPECT_TRUE(v["big"].is_number_float());
  EXPECT_TRUE(v["unsigned"].is_number_unsigned());
  EXPECT_EQ(v["tagged"], "12");
}

// ---------------------------------------------------------------------------------------
// Errors, each with its path and line:column

TEST(SpecErrors, UnknownRootKeySuggestsTheClosest) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: x}
spce: {taskType: echo}
)");
  EXPECT_EQ(p.result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_ERROR_AT(p, "spce", "did you mean 'spec'?", 4, 1);
  EXPECT_ERROR_AT(p, "", "missing spec", 1, 1);  // the root mapping
}

TEST(SpecErrors, UnknownRootKeyFarFromAnythingHasNoSuggestion) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: x}
spec: {taskType: echo}
zzzzzzzz: 1
)");
  EXPECT_ERROR_AT(p, "zzzzzzzz", "unknown key 'zzzzzzzz'", 5, 1);
  EXPECT_THAT(Find(p.errors, "zzzzzzzz", "unknown")->message,
              ::testing::Not(HasSubstr("did you mean")));
}

TEST(SpecErrors, ApiVersionKindAndMetadata) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v2
kind: Job
metadata:
  owner: bob
spec: {taskType: echo}
)");
  // The published parser takes any string for both: kind informs, another apiVersion is
  // read as flowmesh/v1 (a warning once the document is otherwise valid).
  EXPECT_ERROR_AT(p, "metadata", "missing metadata.name", 4, 3);
  EXPECT_EQ(p.errors.size(), 1u) << Dump(p.errors);
  Parsed ok = Parse(R"(apiVersion: flowmesh/v2
kind: Job
metadata: {name: t}
spec: {taskType: echo}
)");
  ASSERT_TRUE(ok.result.ok()) << Dump(ok.errors);
  ASSERT_EQ(ok.result->warnings.size(), 1u);
  EXPECT_EQ(ok.result->warnings[0].path, "apiVersion");
  EXPECT_THAT(ok.result->warnings[0].message, HasSubstr("read as 'flowmesh/v1'"));
  Parsed bad = Parse("apiVersion: 1\nkind: [x]\nmetadata: {name: t}\nspec: {taskType: echo}\n");
  EXPECT_ERROR_AT(bad, "apiVersion", "must be a string", 1, 13);
  EXPECT_ERROR_AT(bad, "kind", "must be a non-empty string", 2, 7);
}

TEST(SpecErrors, InvalidNames) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: "bad:name"}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: "has.dot"}
      - {dependsOn: []}
      - {name: 12}
)");
  EXPECT_ERROR_AT(p, "metadata.name", "invalid workflow name", 3, 18);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[0].name", "invalid name 'has.dot'", 8, 16);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1]", "missing name", 9, 9);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[2].name", "name must be a string", 10, 16);
}

TEST(SpecErrors, DuplicateUnknownAndSelfDependencies) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: g}
spec:
  taskType: echo
  graph:
    nodes:
      - name: a
      - name: b
        dependsOn: [a, b, nope, bb]
      - name: a
)");
  EXPECT_ERROR_AT(p, "spec.graph.nodes[2].name", "duplicate node name 'a'", 11, 15);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1].dependsOn[1]", "'b' depends on itself", 10, 24);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1].dependsOn[2]", "unknown dependency 'nope'", 10, 27);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1].dependsOn[3]", "did you mean 'b'?", 10, 33);
  EXPECT_EQ(p.errors.size(), 4u) << Dump(p.errors);
}

TEST(SpecErrors, CyclesAreNamed) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: cyc}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: start}
      - {name: a, dependsOn: [start, c]}
      - {name: b, dependsOn: [a]}
      - {name: c, dependsOn: [b]}
      - {name: after, dependsOn: [c]}
      - {name: x, dependsOn: [y]}
      - {name: y, dependsOn: [x]}
)");
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1].dependsOn", "cycle: a -> b -> c -> a", 9, 30);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[5].dependsOn", "cycle: x -> y -> x", 13, 30);
  EXPECT_EQ(p.errors.size(), 2u) << Dump(p.errors);
}

TEST(SpecErrors, StagesCycleViaExplicitDependsOn) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: cyc}
spec:
  taskType: echo
  stages:
    - {name: one, dependsOn: [two]}
    - {name: two}
)");
  const SpecError* e = Find(p.errors, "spec.stages[0].dependsOn", "cycle: one -> two -> one");
  ASSERT_NE(e, nullptr) << Dump(p.errors);
}

TEST(SpecErrors, DependsOnMustBeAList) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: d}
spec:
  taskType: echo
  graph:
    nodes:
      - name: a
      - name: b
        dependsOn: a
      - name: c
        spec: {dependsOn: [a, 3]}
)");
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1].dependsOn", "must be a list", 10, 20);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[2].spec.dependsOn[1]", "must be node names", 12, 31);
}

TEST(SpecErrors, StagesWithGraph) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: both}
spec:
  stages: [{name: a, spec: {taskType: echo}}]
  graph: {nodes: [{name: b, spec: {taskType: echo}}]}
)");
  EXPECT_ERROR_AT(p, "spec.graph", "cannot be combined", 6, 3);
}

TEST(SpecShapes, ListItemsMayBeRowMappings) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: rows}
spec:
  taskType: collection
  model: {source: {type: local, identifier: /models/e.gguf}}
  collection: {name: docs, text_field: body, chunking: {max_tokens: 64, overlap: 8}}
  data: {type: list, items: [{id: a, body: hello, lang: en}, plain text]}
)");
  ASSERT_TRUE(p.result.ok()) << Dump(p.errors);
  const TaskDef& t = p.result.value().tasks[0];
  EXPECT_EQ(t.task_type, "collection");
  EXPECT_TRUE(Deterministic(t.task_type, t.spec));
  EXPECT_EQ(t.spec["data"]["items"][0]["lang"], "en");
  EXPECT_EQ(t.spec["collection"]["chunking"]["overlap"], 8);
}

TEST(SpecErrors, AReferenceItemIsStillChecked) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: refs}
spec:
  taskType: echo
  data: {type: list, items: [{node: 3}]}
)");
  EXPECT_ERROR_AT(p, "spec.data.items[0].node", "must be a string", 6, 37);
}

TEST(SpecErrors, CollectionAndRagSections) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: c}
spec:
  stages:
    - name: a
      spec: {taskType: collection, collection: {name: d, chunking: {max_tokens: 8, overlap: 8}}}
    - name: b
      spec: {taskType: rag, rag: {collection: d, version: 0, generate: {max_tokens: 0}}}
    - name: c
      spec: {taskType: collection, collection: {name: d, metric: hamming}}
)");
  EXPECT_FALSE(p.result.ok());
  EXPECT_NE(Find(p.errors, "spec.stages[0].spec.collection.chunking.overlap", "smaller than max_tokens"),
            nullptr) << Dump(p.errors);
  EXPECT_NE(Find(p.errors, "spec.stages[1].spec.rag.version", ">= 1"), nullptr) << Dump(p.errors);
  EXPECT_NE(Find(p.errors, "spec.stages[1].spec.rag.generate.max_tokens", "from 1"), nullptr)
      << Dump(p.errors);
  EXPECT_NE(Find(p.errors, "spec.stages[2].spec.collection.metric", "one of cosine, ip, l2"), nullptr)
      << Dump(p.errors);
}

TEST(SpecErrors, TaskTypeMissingOrUnknown) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: t}
spec:
  stages:
    - name: a
      spec: {taskType: infernce}
    - name: b
      spec: {data: {type: list, items: [x]}}
)");
  EXPECT_ERROR_AT(p, "spec.stages[0].spec.taskType", "did you mean 'inference'?", 7, 24);
  const SpecError* e = Find(p.errors, "spec.stages[0].spec.taskType", "unknown taskType");
  ASSERT_NE(e, nullptr);
  for (const std::string& known : KnownTaskTypes()) EXPECT_THAT(e->message, HasSubstr(known));
  EXPECT_ERROR_AT(p, "spec.stages[1].spec", "missing taskType for 'b'", 9, 13);
}

TEST(SpecErrors, AttemptsAndTimeouts) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: t}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: a, spec: {max_attempts: 0}}
      - {name: b, spec: {maxAttempts: 101}}
      - {name: c, spec: {maxAttempts: "300"}}
      - {name: d, spec: {max_attempts: 2.5, timeoutSeconds: 0}}
      - {name: e, spec: {timeoutSeconds: -1}}
      - {name: f, spec: {timeoutSeconds: soon}}
      - {name: g, spec: {maxAttempts: 100, timeoutSeconds: 0.5}}
)");
  EXPECT_ERROR_AT(p, "spec.graph.nodes[0].spec.max_attempts", "from 1 to 100", 8, 40);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1].spec.maxAttempts", "from 1 to 100", 9, 39);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[2].spec.maxAttempts", "from 1 to 100", 10, 39);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[3].spec.max_attempts", "from 1 to 100", 11, 40);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[3].spec.timeoutSeconds", "greater than 0", 11, 61);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[4].spec.timeoutSeconds", "greater than 0", 12, 42);
  EXPECT_ERROR_AT(p, "spec.graph.nodes[5].spec.timeoutSeconds", "greater than 0", 13, 42);
  EXPECT_EQ(p.errors.size(), 7u) << Dump(p.errors);
}

TEST(SpecErrors, Resources) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: r}
spec:
  taskType: inference
  resources:
    hardware:
      cpu: 0
      memory: lots
      gpu: {type: any, count: -1}
)");
  EXPECT_ERROR_AT(p, "spec.resources.hardware.cpu", "greater than 0", 8, 12);
  EXPECT_ERROR_AT(p, "spec.resources.hardware.memory", "\"16Gi\"", 9, 15);
  EXPECT_ERROR_AT(p, "spec.resources.hardware.gpu.count", "integer >= 0", 10, 31);

  Parsed ok = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: r}
spec:
  taskType: inference
  resources:
    hardware: {cpu: 0.5, memory: 512Mi, gpu: {type: A100, count: 0, memory: 40Gi}}
)");
  EXPECT_TRUE(ok.result.ok()) << Dump(ok.errors);
  Parsed bytes = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: r}
spec: {taskType: echo, resources: {hardware: {memory: 1073741824, gpu: {count: 1.5}}}}
)");
  EXPECT_ERROR_AT(bytes, "spec.resources.hardware.gpu.count", "integer >= 0", 4, 80);
  EXPECT_EQ(bytes.errors.size(), 1u) << Dump(bytes.errors);
  Parsed wrong_type = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: r}
spec: {taskType: echo, resources: {hardware: [1]}}
)");
  EXPECT_ERROR_AT(wrong_type, "spec.resources.hardware", "must be a mapping", 4, 46);
}

TEST(SpecErrors, ErrorInSharedSpecIsReportedOnceAtItsOrigin) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: shared}
spec:
  taskType: echo
  timeoutSeconds: -5
  stages:
    - {name: a}
    - {name: b}
    - {name: c, spec: {timeoutSeconds: 10}}
)");
  EXPECT_ERROR_AT(p, "spec.timeoutSeconds", "greater than 0", 6, 19);
  EXPECT_EQ(p.errors.size(), 1u) << Dump(p.errors);
}

TEST(SpecErrors, ConditionNodeMustBeADependency) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: cond}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: a}
      - {name: b}
      - name: c
        dependsOn: [a]
        spec:
          condition: {node: b, field: items.0.output, equals: "yes"}
      - name: d
        dependsOn: [a]
        spec:
          condition: {node: a, field: items.0.output, equals: "yes"}
)");
  EXPECT_ERROR_AT(p, "spec.graph.nodes[2].spec.condition.node",
                  "'b', which is not a dependency of 'c'", 13, 29);
  EXPECT_EQ(p.errors.size(), 1u) << Dump(p.errors);
}

TEST(SpecErrors, ReferencesMustNameADependency) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: refs}
spec:
  taskType: lora_sft
  stages:
    - name: lora-train
    - name: merge
      dependsOn: []
      spec:
        model:
          adapters: [{type: lora, url: "${lora-train.final_lora_archive}", name: x}]
    - name: use
      dependsOn: [lora-train]
      spec:
        taskType: ssh
        ssh: {command: "echo ${HOME} ${lora-train.final_lora_archive} ${ghost.x}"}
)");
  EXPECT_ERROR_AT(p, "spec.stages[1].spec.model.adapters[0].url",
                  "'lora-train', which is not a dependency of 'merge'", 12, 40);
  EXPECT_ERROR_AT(p, "spec.stages[2].spec.ssh.command", "unknown node 'ghost'", 17, 24);
  EXPECT_EQ(p.errors.size(), 2u) << Dump(p.errors);
}

TEST(SpecErrors, DataReferencesMustNameADependency) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: refs}
spec:
  taskType: inference
  graph:
    nodes:
      - {name: draft}
      - name: check
        spec:
          data:
            type: graph_template
            template:
              text: "{draft}"
              columns: [{label: draft, node: draft, path: items.0.output}]
)");
  EXPECT_ERROR_AT(p, "spec.graph.nodes[1].spec.data.template.columns[0].node",
                  "not a dependency of 'check'", 15, 46);
}

TEST(SpecErrors, UnknownNodeEntryKey) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: k}
spec:
  stages:
    - name: a
      taskType: echo
      depends_on: []
)");
  EXPECT_ERROR_AT(p, "spec.stages[0].taskType", "task fields go under spec", 7, 7);
  EXPECT_ERROR_AT(p, "spec.stages[0].depends_on", "did you mean 'dependsOn'?", 8, 7);
}

TEST(SpecErrors, EveryProblemIsReportedAtOnce) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: many}
extra: 1
spec:
  graph:
    nodes:
      - {name: a, spec: {taskType: nope}}
      - {name: a, spec: {taskType: echo}}
      - {name: b, dependsOn: [zz], spec: {taskType: echo, maxAttempts: 0}}
      - {name: c, dependsOn: [c], spec: {taskType: echo, resources: {hardware: {cpu: -1}}}}
)");
  ASSERT_FALSE(p.result.ok());
  EXPECT_GE(p.errors.size(), 6u) << Dump(p.errors);
  EXPECT_NE(Find(p.errors, "extra", "unknown key"), nullptr);
  EXPECT_NE(Find(p.errors, "spec.graph.nodes[0].spec.taskType", "unknown taskType"), nullptr);
  EXPECT_NE(Find(p.errors, "spec.graph.nodes[1].name", "duplicate"), nullptr);
  EXPECT_NE(Find(p.errors, "spec.graph.nodes[2].dependsOn[0]", "unknown dependency"), nullptr);
  EXPECT_NE(Find(p.errors, "spec.graph.nodes[2].spec.maxAttempts", "1 to 100"), nullptr);
  EXPECT_NE(Find(p.errors, "spec.graph.nodes[3].dependsOn[0]", "depends on itself"), nullptr);
  EXPECT_NE(Find(p.errors, "spec.graph.nodes[3].spec.resources.hardware.cpu", "greater than 0"),
            nullptr);
  // Sorted by position in the document.
  for (size_t i = 1; i < p.errors.size(); ++i) {
    EXPECT_LE(p.errors[i - 1].line, p.errors[i].line) << Dump(p.errors);
  }
  EXPECT_THAT(p.result.status().message(),
              HasSubstr(std::to_string(p.errors.size()) + " problems"));
}

// ---------------------------------------------------------------------------------------
// Malformed input

TEST(SpecMalformed, YamlSyntaxErrorHasLineAndColumn) {
  Parsed p = Parse("apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: x\nspec: {}\n");
  ASSERT_FALSE(p.result.ok());
  ASSERT_EQ(p.errors.size(), 1u) << Dump(p.errors);
  EXPECT_EQ(p.errors[0].path, "");
  EXPECT_THAT(p.errors[0].message, HasSubstr("invalid YAML"));
  EXPECT_EQ(p.errors[0].line, 4);
  EXPECT_GE(p.errors[0].column, 1);
}

TEST(SpecMalformed, BadIndentation) {
  Parsed p = Parse("apiVersion: flowmesh/v1\nkind: Workflow\n  metadata: x\n");
  ASSERT_EQ(p.errors.size(), 1u) << Dump(p.errors);
  EXPECT_EQ(p.errors[0].line, 3);
  EXPECT_EQ(p.errors[0].column, 11);
}

TEST(SpecMalformed, DuplicateKeys) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: x}
spec:
  taskType: echo
  taskType: api
)");
  EXPECT_ERROR_AT(p, "spec.taskType", "duplicate key 'taskType'", 6, 3);
}

TEST(SpecMalformed, NotAMapping) {
  for (const char* text : {"", "null", "[]", "42", "just text", "- a\n- b\n"}) {
    Parsed p = Parse(text);
    EXPECT_FALSE(p.result.ok()) << text;
    EXPECT_FALSE(p.errors.empty()) << text;
  }
}

TEST(SpecMalformed, MultipleDocuments) {
  Parsed p = Parse("apiVersion: flowmesh/v1\n---\nkind: Workflow\n");
  ASSERT_EQ(p.errors.size(), 1u) << Dump(p.errors);
  EXPECT_THAT(p.errors[0].message, HasSubstr("one YAML document"));
  EXPECT_EQ(p.errors[0].line, 2);  // the `---` that starts the second one
}

TEST(SpecMalformed, RandomBytesNeverCrash) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string alphabet = "{}[]:,-?&*!|>'\"%@` \n\t#abc123.~";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    size_t length = 1 + round * 7 % 400;
    for (size_t i = 0; i < length; ++i) {
      text += round % 2 == 0 ? static_cast<char>(byte(rng)) : alphabet[pick(rng)];
    }
    Parsed p = Parse(text);
    EXPECT_FALSE(p.result.ok());
    EXPECT_FALSE(p.errors.empty());
    for (const SpecError& e : p.errors) EXPECT_FALSE(e.message.empty());
  }
}

TEST(SpecMalformed, DeepNestingIsACleanError) {
  for (const std::string& open : {std::string("["), std::string("{a: ")}) {
    std::string text;
    for (int i = 0; i < 100000; ++i) text += open;
    Parsed p = Parse(text);
    EXPECT_FALSE(p.result.ok());
    EXPECT_FALSE(p.errors.empty());
  }
  // Deep but well-formed: valid YAML, rejected by our own depth limit.
  std::string text =
      "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: d}\nspec: {taskType: echo, x: ";
  for (int i = 0; i < 500; ++i) text += "[";
  for (int i = 0; i < 500; ++i) text += "]";
  text += "}\n";
  Parsed p = Parse(text);
  EXPECT_FALSE(p.result.ok());
  ASSERT_FALSE(p.errors.empty());
  EXPECT_THAT(p.errors[0].message, HasSubstr("nesting"));
}

TEST(SpecMalformed, AliasBombIsACleanError) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (char c = 'b'; c <= 'j'; ++c) {
    std::string name(1, c);
    text += name + ": &" + name + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", *" : "*") + prev;
    text += "]\n";
    prev = name;
  }
  Parsed p = Parse(text);
  EXPECT_FALSE(p.result.ok());
  ASSERT_FALSE(p.errors.empty());
  EXPECT_THAT(p.errors[0].message, HasSubstr("too large"));
}

TEST(SpecMalformed, HugeNumbers) {
  Parsed p = Parse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: n}
spec:
  taskType: echo
  maxAttempts: 99999999999999999999999999999999
  timeoutSeconds: 1e999
  resources: {hardware: {cpu: 18446744073709551615, gpu: {count: 18446744073709551616}}}
)");
  EXPECT_ERROR_AT(p, "spec.maxAttempts", "from 1 to 100", 6, 16);
  EXPECT_ERROR_AT(p, "spec.timeoutSeconds", "number out of range", 7, 19);
  EXPECT_ERROR_AT(p, "spec.resources.hardware.gpu.count", "integer >= 0", 8, 66);
}

TEST(SpecMalformed, HugeValuesAreBounded) {
  std::string name(10000, 'n');
  Parsed p = Parse("apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: " + name +
                   "}\nspec: {taskType: " + name + "}\n");
  ASSERT_FALSE(p.result.ok());
  for (const SpecError& e : p.errors) EXPECT_LE(e.message.size(), 1000u) << e.message.size();

  std::string long_dep(50000, 'd');
  Parsed dep = Parse(
      "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: x}\n"
      "spec: {taskType: echo, stages: [{name: a, dependsOn: [" +
      long_dep + "]}]}\n");
  ASSERT_FALSE(dep.errors.empty());
  for (const SpecError& e : dep.errors) EXPECT_LE(e.message.size(), 1000u) << e.message.size();
}

TEST(SpecMalformed, ErrorCountIsCapped) {
  std::string text =
      "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: x}\n"
      "spec:\n  taskType: echo\n  graph:\n    nodes:\n";
  for (int i = 0; i < 2000; ++i) {
    text += "      - {name: n" + std::to_string(i) + ", dependsOn: [missing" + std::to_string(i) +
            "]}\n";
  }
  Parsed p = Parse(text);
  ASSERT_FALSE(p.result.ok());
  EXPECT_EQ(p.errors.size(), 501u);
  EXPECT_THAT(p.errors.back().message, HasSubstr("too many problems"));
  EXPECT_EQ(p.errors.front().path, "spec.graph.nodes[0].dependsOn[0]");
}

// ---------------------------------------------------------------------------------------
// Error rendering, formats, types

TEST(SpecErrorFormat, ToStringAndToJson) {
  SpecError e{"spec.graph.nodes[2].dependsOn[0]", 14, 9, "unknown dependency 'x'"};
  EXPECT_EQ(e.ToString(),
            "spec.graph.nodes[2].dependsOn[0] (line 14, column 9): unknown dependency 'x'");
  EXPECT_EQ(e.ToJson(), (nlohmann::json{{"path", "spec.graph.nodes[2].dependsOn[0]"},
                                        {"line", 14},
                                        {"column", 9},
                                        {"message", "unknown dependency 'x'"}}));
  EXPECT_EQ((SpecError{"", 0, 0, "bad"}).ToString(), "bad");
  EXPECT_EQ((SpecError{"", 3, 1, "bad"}).ToString(), "(line 3, column 1): bad");
  EXPECT_EQ((SpecError{"spec", 0, 0, "bad"}).ToString(), "spec: bad");
}

// ---------------------------------------------------------------------------------------
// Configurable limits: each error names the limit and its value

std::string GraphOf(size_t n) {
  std::string doc =
      "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: big}\nspec:\n  taskType: echo\n"
      "  graph:\n    nodes:\n";
  for (size_t i = 0; i < n; ++i) doc += "      - {name: n" + std::to_string(i) + "}\n";
  return doc;
}

Parsed ParseWith(const std::string& text, const ParseOptions& options) {
  std::vector<SpecError> errors;
  Result<WorkflowDef> result = ParseWorkflow(text, Format::kNative, options, &errors);
  return Parsed{std::move(result), std::move(errors)};
}

TEST(SpecLimits, MaxTasks) {
  ParseOptions options;
  options.max_tasks = 3;
  EXPECT_TRUE(ParseWith(GraphOf(3), options).result.ok());
  Parsed p = ParseWith(GraphOf(4), options);
  EXPECT_ERROR_AT(p, "spec.graph.nodes", "limit max_tasks=3", 8, 7);
  EXPECT_EQ(p.errors.size(), 1u) << Dump(p.errors);
}

TEST(SpecLimits, MaxBytes) {
  ParseOptions options;
  options.max_bytes = 100;
  Parsed p = ParseWith(GraphOf(4), options);
  ASSERT_EQ(p.errors.size(), 1u) << Dump(p.errors);
  EXPECT_THAT(p.errors[0].message, HasSubstr("limit max_bytes=100"));
}

TEST(SpecLimits, MaxDepth) {
  ParseOptions options;
  options.max_depth = 4;
  Parsed p = ParseWith(GraphOf(2), options);
  ASSERT_EQ(p.errors.size(), 1u) << Dump(p.errors);
  EXPECT_THAT(p.errors[0].message, HasSubstr("limit max_depth=4"));
  options.max_depth = 5;
  EXPECT_TRUE(ParseWith(GraphOf(2), options).result.ok());
}

TEST(SpecLimits, MaxNodes) {
  ParseOptions options;
  options.max_nodes = 20;
  Parsed p = ParseWith(GraphOf(10), options);
  ASSERT_FALSE(p.errors.empty());
  EXPECT_THAT(p.errors.back().message, HasSubstr("limit max_nodes=20"));
}

TEST(SpecLimits, MaxErrors) {
  ParseOptions options;
  options.max_errors = 2;
  Parsed p = ParseWith(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: e}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: a, dependsOn: [x1]}
      - {name: b, dependsOn: [x2]}
      - {name: c, dependsOn: [x3]}
      - {name: d, dependsOn: [x4]}
)",
                       options);
  ASSERT_EQ(p.errors.size(), 3u) << Dump(p.errors);
  EXPECT_THAT(p.errors.back().message, HasSubstr("limit max_errors=2"));
}

TEST(SpecLimits, DefaultOverloadKeepsDefaults) {
  EXPECT_TRUE(Parse(GraphOf(2000)).result.ok());
}

TEST(SpecFormats, NullErrorsPointerIsAllowed) {
  Result<WorkflowDef> r = ParseWorkflow("not: [valid", Format::kNative, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(SpecTypes, KnownTypesAndCategories) {
  EXPECT_EQ(KnownTaskTypes().size(), 24u);  // the published 21, python, serve, collection
  EXPECT_EQ(CategoryForTaskType("inference"), "inference");
  EXPECT_EQ(CategoryForTaskType("embedding"), "inference");
  for (const char* t : {"sft", "lora_sft", "dpo", "ppo", "image_classification"})
    EXPECT_EQ(CategoryForTaskType(t), "training");
  for (const char* t : {"echo", "rag", "agent", "api", "serve", "python", "collection"}) {
    EXPECT_EQ(CategoryForTaskType(t), "other");
  }
}

// ---------------------------------------------------------------------------------------
// Shipped templates

TEST(SpecTemplates, EveryExampleParses) {
  std::filesystem::path dir = std::filesystem::path(FLOWMESH_SOURCE_DIR) / "examples/templates";
  size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string ext = entry.path().extension().string();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream buffer;
    buffer << in.rdbuf();
    Parsed p = Parse(buffer.str());
    EXPECT_TRUE(p.result.ok()) << entry.path() << "\n" << Dump(p.errors);
    if (p.result.ok()) {
      EXPECT_FALSE(p.result->tasks.empty());
    }
    ++count;
  }
  EXPECT_GE(count, 3u);
}

TEST(SpecTemplates, ShapesOfTheExamples) {
  auto load = [](const char* name) {
    std::ifstream in(std::filesystem::path(FLOWMESH_SOURCE_DIR) / "examples/templates" / name);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return Parse(buffer.str());
  };
  Parsed local = load("echo_local.yaml");
  ASSERT_TRUE(local.result.ok()) << Dump(local.errors);
  ASSERT_EQ(local.result->tasks.size(), 3u);
  EXPECT_THAT(local.result->tasks[2].depends_on, ElementsAre(local.result->tasks[1].node_name));
  Parsed graph = load("echo_graph.yaml");
  ASSERT_TRUE(graph.result.ok()) << Dump(graph.errors);
  EXPECT_THAT(NodeNames(graph.result.value()), ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(graph.result->tasks[3].depends_on, ElementsAre("b", "c"));
  Parsed profiling = load("data_profiling.yaml");
  ASSERT_TRUE(profiling.result.ok()) << Dump(profiling.errors);
  ASSERT_EQ(profiling.result->tasks.size(), 2u);
  EXPECT_EQ(profiling.result->tasks[1].task_type, "data_profiling");
}

}  // namespace
}  // namespace flowmesh::spec
