// The published FlowMesh 0.1.x format: what its parser accepts we accept with the same
// meaning, normalised to one form for the executors; unknown keys in its free-form
// sections are warnings. (The document-by-document expectations are in corpus_test.cc.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "spec/workflow.h"

namespace flowmesh::spec {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

WorkflowDef MustParse(const std::string& text, Format format = Format::kNative) {
  std::vector<SpecError> errors;
  Result<WorkflowDef> def = ParseWorkflow(text, format, &errors);
  std::string all;
  for (const SpecError& e : errors) all += e.ToString() + "\n";
  EXPECT_TRUE(def.ok()) << all;
  if (!def.ok()) return WorkflowDef{};
  return std::move(def).value();
}

std::vector<SpecError> MustFail(const std::string& text) {
  std::vector<SpecError> errors;
  Result<WorkflowDef> def = ParseWorkflow(text, Format::kNative, &errors);
  EXPECT_FALSE(def.ok());
  return errors;
}

std::string Task(const std::string& kind, const std::string& body) {
  return "apiVersion: flowmesh/v1\nkind: " + kind + "\nmetadata: {name: t}\nspec:\n" + body;
}

TEST(PublishedFormat, KindIsAnyNonEmptyString) {
  for (const char* kind : {"Workflow", "InferenceTask", "EchoTask", "SomethingElse"}) {
    WorkflowDef def = MustParse(Task(kind, "  taskType: echo\n"));
    EXPECT_TRUE(def.warnings.empty());
  }
  std::vector<SpecError> errors = MustFail(Task("42", "  taskType: echo\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "kind");
  EXPECT_EQ(errors[0].line, 2);
}

TEST(PublishedFormat, QuotedNumbersAndBooleansAreCoerced) {
  WorkflowDef def = MustParse(Task("InferenceTask", R"(  taskType: inference
  enforce_cpu: "true"
  sloSeconds: "30"
  resources: {replicas: "1", hardware: {cpu: "4", memory: "16GiB", gpu: {count: "0", memory: 8GiB}}}
  model: {source: {type: huggingface, identifier: org/m}}
  inference: {max_tokens: "16", temperature: "0.5"}
)"));
  ASSERT_EQ(def.tasks.size(), 1u);
  const json& spec = def.tasks[0].spec;
  EXPECT_EQ(spec["enforce_cpu"], true);
  EXPECT_EQ(spec["sloSeconds"], 30);
  EXPECT_EQ(spec["resources"]["replicas"], 1);
  EXPECT_EQ(spec["resources"]["hardware"]["cpu"], 4);
  EXPECT_TRUE(spec["resources"]["hardware"]["cpu"].is_number_integer());
  EXPECT_EQ(spec["resources"]["hardware"]["memory"], "16Gi");
  EXPECT_EQ(spec["resources"]["hardware"]["gpu"]["memory"], "8Gi");
  EXPECT_EQ(spec["resources"]["hardware"]["gpu"]["count"], 0);
  EXPECT_EQ(spec["inference"]["max_tokens"], 16);
  EXPECT_DOUBLE_EQ(spec["inference"]["temperature"].get<double>(), 0.5);
  // Text that is not a number stays an error.
  std::vector<SpecError> errors =
      MustFail(Task("EchoTask", "  taskType: echo\n  resources: {hardware: {cpu: four}}\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "spec.resources.hardware.cpu");
}

TEST(PublishedFormat, DatasetUrlWithConfigName) {
  WorkflowDef def = MustParse(Task("ProfilingTask", R"(  taskType: data_profiling
  data: {type: dataset, url: "https://example.com/d", name: en, split: train}
)"));
  EXPECT_EQ(def.tasks[0].spec["data"]["name"], "en");
  EXPECT_TRUE(def.warnings.empty());
}

TEST(PublishedFormat, UnknownKeysOfFreeFormSectionsAreKeptAsWarnings) {
  WorkflowDef def = MustParse(Task("InferenceTask", R"(  taskType: inference
  model: {source: {type: huggingface, identifier: org/m}}
  data: {type: list, items: [x], origin: notes}
  inference:
    max_new_tokens: 8
    do_sample: false
    templates: [{name: rating, type: int, min: 0, max: 10}]
    max_token: 8
  training: {flash: true}
)"));
  const json& spec = def.tasks[0].spec;
  EXPECT_EQ(spec["inference"]["max_token"], 8);  // kept for the executor
  EXPECT_EQ(spec["data"]["origin"], "notes");
  ASSERT_EQ(def.warnings.size(), 3u);
  EXPECT_EQ(def.warnings[0].path, "spec.data.origin");
  EXPECT_EQ(def.warnings[0].line, 7);
  EXPECT_EQ(def.warnings[1].path, "spec.inference.max_token");
  EXPECT_EQ(def.warnings[1].line, 12);
  EXPECT_THAT(def.warnings[1].message, HasSubstr("did you mean 'max_tokens'"));
  EXPECT_EQ(def.warnings[2].path, "spec.training.flash");
}

TEST(PublishedFormat, FixedPartsStayClosed) {
  std::vector<SpecError> errors = MustFail(Task("InferenceTask", R"(  taskType: inference
  model: {source: {type: huggingface, identifier: org/m, revison: main}}
  resources: {hardware: {cpus: 2}}
  inferance: {max_tokens: 8}
)"));
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].path, "spec.model.source.revison");
  EXPECT_THAT(errors[0].message, HasSubstr("did you mean 'revision'"));
  EXPECT_EQ(errors[1].path, "spec.resources.hardware.cpus");
  EXPECT_EQ(errors[2].path, "spec.inferance");
  EXPECT_THAT(errors[2].message, HasSubstr("did you mean 'inference'"));
}

TEST(PublishedFormat, UnknownDataTypeAndModelSourceTypeAreWarnings) {
  WorkflowDef def = MustParse(Task("InferenceTask", R"(  taskType: inference
  model: {source: {type: modelscope, identifier: org/m}}
  data: {type: parquet, path: /data/x.parquet}
)"));
  ASSERT_EQ(def.warnings.size(), 2u);
  EXPECT_EQ(def.warnings[0].path, "spec.model.source.type");
  EXPECT_EQ(def.warnings[1].path, "spec.data.type");
}

TEST(PublishedFormat, FlatExecutorKeysMoveIntoTheirSection) {
  WorkflowDef def = MustParse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: flat}
spec:
  stages:
    - name: prep
      spec: {taskType: echo}
    - name: shell
      spec:
        taskType: ssh
        authorizedKeys: ["ssh-ed25519 AAAA u@h"]
        ttlSeconds: 60
        accessMode: direct
        inputs: [{stage: prep}]
        env: {LEVEL: 2}
    - name: code
      spec: {taskType: python, code: "def main(): return 1", emits: [x]}
    - name: host
      spec: {taskType: serve, accessMode: forward, ttlSeconds: 10, port: 8080}
    - name: search
      spec: {taskType: rag, qdrant: {url: "http://q"}, search: {top_k: 2}, query: why}
)");
  ASSERT_EQ(def.tasks.size(), 5u);
  const json& ssh = def.tasks[1].spec;
  EXPECT_FALSE(ssh.contains("ttlSeconds"));
  EXPECT_EQ(ssh["ssh"]["ttlSeconds"], 60);
  EXPECT_EQ(ssh["ssh"]["accessMode"], "direct");
  EXPECT_EQ(ssh["ssh"]["inputs"][0]["stage"], "prep");
  EXPECT_EQ(def.tasks[2].spec["python"]["emits"][0], "x");
  EXPECT_EQ(def.tasks[3].spec["serve"]["port"], 8080);
  EXPECT_EQ(def.tasks[4].spec["rag"]["search"]["top_k"], 2);
  EXPECT_EQ(def.tasks[4].spec["rag"]["query"], "why");
  EXPECT_TRUE(def.warnings.empty());
}

TEST(PublishedFormat, FlatKeyProblemsPointAtWhatWasWritten) {
  // An input stage that is not a dependency: reported at the flat key.
  std::vector<SpecError> errors = MustFail(Task("SSHTask", R"(  taskType: ssh
  inputs: [{stage: elsewhere}]
  accessMode: tunnel
)"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].path, "spec.inputs[0].stage");
  EXPECT_EQ(errors[0].line, 6);
  EXPECT_EQ(errors[1].path, "spec.accessMode");
  // Both spellings at once, and a key of another task type.
  errors = MustFail(Task("SSHTask", R"y(  taskType: ssh
  ttlSeconds: 5
  ssh: {ttlSeconds: 6}
  code: "print(1)"
)y"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].path, "spec.ttlSeconds");
  EXPECT_THAT(errors[0].message, HasSubstr("both as spec.ttlSeconds and as spec.ssh.ttlSeconds"));
  EXPECT_EQ(errors[1].path, "spec.code");
  EXPECT_THAT(errors[1].message, HasSubstr("a field of taskType python, not of 'ssh'"));
}

TEST(PublishedFormat, PublishedTaskTypes) {
  for (const char* type :
       {"data_retrieval", "image_classification", "omni_text2image", "omni_text2audio",
        "omni_text2speech", "omni_text2video", "omni_text2general", "ssh", "python", "serve"}) {
    SCOPED_TRACE(type);
    WorkflowDef def = MustParse(Task("Task", std::string("  taskType: ") + type + "\n"));
    ASSERT_EQ(def.tasks.size(), 1u);
    EXPECT_EQ(def.tasks[0].task_type, type);
  }
  EXPECT_EQ(CategoryForTaskType("image_classification"), "training");
}

TEST(PublishedFormat, DataFormsOfThePublishedFormat) {
  WorkflowDef def = MustParse(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: forms}
spec:
  graph:
    nodes:
      - {name: a, spec: {taskType: echo, data: {type: list, items: [x], metadata: {k: v}}}}
      - name: b
        dependsOn: [a]
        spec: {taskType: echo, data: {type: list, node: a, path: items}}
      - name: c
        dependsOn: [a]
        spec:
          taskType: data_profiling
          data: {type: dataframe, columns: [{label: out, node: a, path: items.*.output}]}
      - name: d
        dependsOn: [a]
        spec:
          taskType: echo
          data:
            type: graph_template
            template: {text: "{x}-{y}", columns: [{label: x, node: a, path: items.0.output}, {label: y, data: 1}]}
      - name: e
        spec: {taskType: sft, data: {dataset_name: org/d, prompts: [p]}, training: {learning_rate: "1e-5"}}
)");
  EXPECT_EQ(def.tasks.size(), 5u);
  EXPECT_TRUE(def.warnings.empty());
  // A list node that is not a dependency is an error, as for items.
  std::vector<SpecError> errors = MustFail(Task("EchoTask", R"(  taskType: echo
  data: {type: list, node: nowhere, path: items}
)"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "spec.data.node");
}

TEST(PublishedFormat, UntypedDataWhereRowsAreNeededIsAWarning) {
  WorkflowDef def = MustParse(Task("EchoTask", "  taskType: echo\n  data: {prompts: [a]}\n"));
  ASSERT_EQ(def.warnings.size(), 1u);
  EXPECT_EQ(def.warnings[0].path, "spec.data");
  EXPECT_THAT(def.warnings[0].message, HasSubstr("data has no type"));
  // Training and omni tasks read untyped data as it is.
  def = MustParse(Task("OmniTask", "  taskType: omni_text2general\n  data: {text: hi}\n"));
  EXPECT_TRUE(def.warnings.empty());
}

TEST(PublishedFormat, ApiWithoutUrlAndHttpOutputWithoutUrl) {
  WorkflowDef def = MustParse(Task("APITask", R"(  taskType: api
  api: {method: POST, body: {q: "{{prompt}}"}}
  data: {type: list, items: [hi]}
  output: {destination: {type: http, timeoutSec: 30}}
)"));
  EXPECT_TRUE(def.warnings.empty());
}

TEST(PublishedFormat, OtherApiVersionIsReadWithAWarning) {
  WorkflowDef def = MustParse(R"(apiVersion: mloc/v1
kind: InferenceTask
metadata: {name: t}
spec: {taskType: echo}
)");
  ASSERT_EQ(def.warnings.size(), 1u);
  EXPECT_EQ(def.warnings[0].path, "apiVersion");
  EXPECT_EQ(def.warnings[0].line, 1);
}

TEST(PublishedFormat, N8nSetNodesByNameAndOpenAiResponses) {
  WorkflowDef def = MustParse(R"({
  "name": "named sets",
  "nodes": [
    {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "parameters": {}},
    {"name": "Data Rows", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"type\": \"list\", \"items\": [\"a\", \"b\"], \"origin\": \"n\"}"}},
    {"name": "Resource Cpu", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"hardware\": {\"cpu\": \"2\"}}"}},
    {"name": "Runtime Opts", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"max_model_len\": 1024}"}},
    {"name": "Chain", "type": "@n8n/n8n-nodes-langchain.chainLlm", "typeVersion": 1.5,
     "notes": "{\"taskType\": \"inference\"}",
     "parameters": {"promptType": "define", "text": "Be brief."}},
    {"name": "HF", "type": "@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference",
     "parameters": {"model": "org/m"}},
    {"name": "Ask", "type": "@n8n/n8n-nodes-langchain.openAi", "typeVersion": 2.1,
     "parameters": {"modelId": {"__rl": true, "value": "gpt-4o-mini", "mode": "list"},
                    "responses": {"values": [{"content": "Check this."}]}}}
  ],
  "connections": {
    "Start": {"main": [[{"node": "Data Rows", "type": "main", "index": 0}]]},
    "Data Rows": {"main": [[{"node": "Resource Cpu", "type": "main", "index": 0}]]},
    "Resource Cpu": {"main": [[{"node": "Runtime Opts", "type": "main", "index": 0}]]},
    "Runtime Opts": {"main": [[{"node": "Chain", "type": "main", "index": 0}]]},
    "HF": {"ai_languageModel": [[{"node": "Chain", "type": "ai_languageModel", "index": 0}]]},
    "Chain": {"main": [[{"node": "Ask", "type": "main", "index": 0}]]}
  }
})",
                              Format::kN8n);
  ASSERT_EQ(def.tasks.size(), 2u);
  const json& chain = def.tasks[0].spec;
  EXPECT_EQ(chain["taskType"], "inference");
  EXPECT_EQ(chain["data"]["items"], json::array({"a", "b"}));
  EXPECT_EQ(chain["resources"]["hardware"]["cpu"], 2);
  EXPECT_EQ(chain["model"]["vllm"]["max_model_len"], 1024);
  EXPECT_EQ(chain["inference"]["system_prompt"], "Be brief.");
  // Warnings point at the n8n node the task came from.
  ASSERT_EQ(def.warnings.size(), 1u);
  EXPECT_EQ(def.warnings[0].path, "nodes[4]");
  EXPECT_GT(def.warnings[0].line, 0);
  EXPECT_THAT(def.warnings[0].message, HasSubstr("n8n node 'Chain'"));
  EXPECT_THAT(def.warnings[0].message, HasSubstr("unknown key 'origin'"));
  const json& ask = def.tasks[1].spec;
  EXPECT_EQ(ask["taskType"], "api");
  EXPECT_THAT(ask.dump(), HasSubstr("Check this."));
}

// The published exports wire section Set nodes straight into their task (nothing leads into
// them) and pass a training's model on through a Checkpoint Set node.
TEST(PublishedFormat, N8nSectionNodesWithoutInputsAndCheckpoint) {
  WorkflowDef def = MustParse(R"({
  "nodes": [
    {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "parameters": {}},
    {"name": "Data", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"dataset_name\": \"org/d\", \"split\": \"train\"}"}},
    {"name": "Training Spec", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"num_train_epochs\": 1}"}},
    {"name": "SFT", "type": "@n8n/n8n-nodes-langchain.chainLlm", "typeVersion": 1.8,
     "notes": "{\"taskType\": \"sft\"}", "parameters": {"promptType": "define"}},
    {"name": "Model S", "type": "@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference",
     "parameters": {"model": "org/m"}},
    {"name": "Checkpoint Spec", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"path\": \"final_model.path\"}"}},
    {"name": "Input", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"type\": \"list\", \"items\": [\"q\"]}"}},
    {"name": "Ask", "type": "@n8n/n8n-nodes-langchain.chainLlm", "typeVersion": 1.8,
     "notes": "{\"taskType\": \"inference\"}",
     "parameters": {"promptType": "define", "text": "Answer briefly."}},
    {"name": "Model I", "type": "@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference",
     "parameters": {"model": "org/m"}}
  ],
  "connections": {
    "Start": {"main": [[{"node": "Data", "type": "main", "index": 0}]]},
    "Data": {"main": [[{"node": "SFT", "type": "main", "index": 0}]]},
    "Training Spec": {"main": [[{"node": "SFT", "type": "main", "index": 0}]]},
    "Model S": {"ai_languageModel": [[{"node": "SFT", "type": "ai_languageModel", "index": 0}]]},
    "SFT": {"main": [[{"node": "Checkpoint Spec", "type": "main", "index": 0}]]},
    "Checkpoint Spec": {"main": [[{"node": "Ask", "type": "main", "index": 0}]]},
    "Input": {"main": [[{"node": "Ask", "type": "main", "index": 0}]]},
    "Model I": {"ai_languageModel": [[{"node": "Ask", "type": "ai_languageModel", "index": 0}]]}
  }
})",
                              Format::kN8n);
  ASSERT_EQ(def.tasks.size(), 2u);
  const json& sft = def.tasks[0].spec;
  EXPECT_EQ(sft["taskType"], "sft");
  EXPECT_EQ(sft["data"]["dataset_name"], "org/d");
  EXPECT_EQ(sft["training"]["num_train_epochs"], 1);
  const json& ask = def.tasks[1].spec;
  EXPECT_EQ(def.tasks[1].depends_on, std::vector<std::string>{"sft"});
  EXPECT_EQ(ask["checkpoint"]["load"]["url"], "${sft.final_model_archive}");
  EXPECT_EQ(ask["data"]["items"], json::array({"q"}));
  EXPECT_EQ(ask["inference"]["system_prompt"], "Answer briefly.");
  EXPECT_TRUE(def.warnings.empty());
}

// The published importer names graph nodes after the n8n nodes, so a Set node's JSON names
// upstream tasks by their n8n names; they follow the tasks' translated names.
TEST(PublishedFormat, N8nReferencesByNodeNameFollowTheTaskNames) {
  WorkflowDef def = MustParse(R"({
  "nodes": [
    {"name": "Input Rows", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"type\": \"list\", \"items\": [\"q\"]}"}},
    {"name": "First Pass", "type": "@n8n/n8n-nodes-langchain.chainLlm", "typeVersion": 1.8,
     "notes": "{\"taskType\": \"inference\"}", "parameters": {"promptType": "define"}},
    {"name": "Format Cols", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
     "parameters": {"mode": "raw", "jsonOutput": "{\"type\": \"graph_template\", \"template\": {\"name\": \"t\", \"columns\": [{\"label\": \"A\", \"node\": \"First Pass\", \"path\": \"items[0].output\"}]}}"}},
    {"name": "Second Pass", "type": "@n8n/n8n-nodes-langchain.chainLlm", "typeVersion": 1.8,
     "notes": "{\"taskType\": \"inference\"}",
     "parameters": {"promptType": "define", "text": "See ${First Pass.items.0.output} and ${HOME}."}},
    {"name": "M1", "type": "@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference",
     "parameters": {"model": "org/m"}},
    {"name": "M2", "type": "@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference",
     "parameters": {"model": "org/m"}}
  ],
  "connections": {
    "Input Rows": {"main": [[{"node": "First Pass", "type": "main", "index": 0}]]},
    "First Pass": {"main": [[{"node": "Format Cols", "type": "main", "index": 0}]]},
    "Format Cols": {"main": [[{"node": "Second Pass", "type": "main", "index": 0}]]},
    "M1": {"ai_languageModel": [[{"node": "First Pass", "type": "ai_languageModel", "index": 0}]]},
    "M2": {"ai_languageModel": [[{"node": "Second Pass", "type": "ai_languageModel", "index": 0}]]}
  }
})",
                              Format::kN8n);
  ASSERT_EQ(def.tasks.size(), 2u);
  EXPECT_EQ(def.tasks[1].node_name, "second-pass");
  EXPECT_EQ(def.tasks[1].depends_on, std::vector<std::string>{"first-pass"});
  const json& spec = def.tasks[1].spec;
  EXPECT_EQ(spec["data"]["template"]["columns"][0]["node"], "first-pass");
  EXPECT_EQ(spec["inference"]["system_prompt"], "See ${first-pass.items.0.output} and ${HOME}.");
  EXPECT_TRUE(def.warnings.empty());
}

// Keys the published executors read are declared; one they ignore stays a warning.
TEST(PublishedFormat, KeysThePublishedExecutorsReadAreDeclared) {
  WorkflowDef def = MustParse(Task("TrainingTask", R"(  taskType: ppo
  model: {source: {identifier: org/m}}
  data: {prompts: [hi]}
  training:
    allow_multi_gpu: true
    visible_devices: "0,1"
    log_with: [tensorboard]
    tracker_project_name: p
    optimize_cuda_cache: true
)"));
  ASSERT_EQ(def.warnings.size(), 1u);
  EXPECT_THAT(def.warnings[0].message, HasSubstr("unknown key 'optimize_cuda_cache'"));
  def = MustParse(Task("LoRASFTTask", R"(  taskType: lora_sft
  model: {source: {identifier: org/m}}
  data: {dataset_name: org/d}
  lora: {r: 8, use_rslora: true}
)"));
  EXPECT_TRUE(def.warnings.empty());
  def = MustParse(Task("DataTask", R"(  taskType: data_retrieval
  data: {type: lumid, mode: agent, lumid_data_url: "http://l", lumid_data_token: t,
         description: "rows for {s}", max_steps: 5,
         params: [{label: s, data: {type: list, items: [A]}}]}
)"));
  EXPECT_TRUE(def.warnings.empty());
  std::vector<SpecError> errors = MustFail(Task("DataTask", R"(  taskType: data_retrieval
  data: {type: lumid, mode: graph, lumid_data_url: "http://l"}
)"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "spec.data.mode");
}

}  // namespace
}  // namespace flowmesh::spec
