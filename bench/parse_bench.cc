// Parser benchmark. Prints key=value lines:
//   parse_ms_10k_nodes      parse + validate of a generated 10,000-node graph workflow whose
//                           nodes reference their dependencies with `${node.path}` (median)
//   validate_docs_per_sec   parse + validate throughput for a typical 5-node document
// Usage: parse_bench [--nodes N] [--runs R] [--seconds S]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "spec/workflow.h"

namespace {

using Clock = std::chrono::steady_clock;

// A layered DAG: node i depends on up to two earlier nodes and references their results.
std::string BigGraph(size_t n) {
  std::string doc;
  doc.reserve(n * 220);
  doc +=
      "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata:\n  name: big-graph\n"
      "spec:\n  taskType: echo\n  resources:\n    hardware: {cpu: 1, memory: 512Mi}\n"
      "  graph:\n    nodes:\n";
  for (size_t i = 0; i < n; ++i) {
    std::string name = "n" + std::to_string(i);
    doc += "      - name: " + name + "\n";
    std::vector<std::string> deps;
    if (i >= 1) deps.push_back("n" + std::to_string(i - 1));
    if (i >= 7) deps.push_back("n" + std::to_string(i / 2));
    if (!deps.empty()) {
      doc += "        dependsOn: [";
      for (size_t d = 0; d < deps.size(); ++d) doc += (d ? ", " : "") + deps[d];
      doc += "]\n";
    }
    doc += "        spec:\n";
    doc += "          data: {type: list, items: [\"item " + std::to_string(i) + "\"]}\n";
    if (!deps.empty()) {
      doc += "          echo: {message: \"from ${" + deps[0] + ".items.0.output}";
      if (deps.size() > 1) doc += " and ${" + deps[1] + ".items.0.output}";
      doc += "\"}\n";
    }
  }
  return doc;
}

const char* kTypical = R"(apiVersion: flowmesh/v1
kind: Workflow
metadata:
  name: summarise-and-check
  owner: bench
  annotations:
    description: A typical five-node document.
    schedule_hint:
      node_execution_order: [[draft], [check, tags], [merge], [publish]]
spec:
  model:
    source: {type: huggingface, identifier: Qwen/Qwen2.5-0.5B-Instruct-GGUF}
  resources:
    hardware: {cpu: 2, memory: 4Gi, gpu: {type: any, count: 1}}
  inference: {max_tokens: 128, temperature: 0.2, top_p: 0.9}
  graph:
    nodes:
      - name: draft
        spec:
          taskType: inference
          data: {type: list, items: [[{role: user, content: Summarise the water cycle.}]]}
      - name: check
        dependsOn: [draft]
        spec:
          taskType: inference
          data:
            type: graph_template
            template:
              text: "Is this summary correct? {draft}"
              columns: [{label: draft, node: draft, path: items.0.output}]
      - name: tags
        dependsOn: [draft]
        spec:
          taskType: inference
          inference: {max_tokens: 16, stop: ["\n"]}
          data: {type: list, items: ["Tags for: ${draft.items.0.output}"]}
      - name: merge
        dependsOn: [check, tags]
        spec:
          taskType: echo
          condition: {node: check, field: items.0.output, equals: "yes"}
          echo: {message: "${tags.items.0.output}"}
      - name: publish
        dependsOn: [merge]
        spec:
          taskType: api
          api:
            url: https://example.com/publish
            method: POST
            body: {text: "${merge.items.0.output}"}
            retries: 2
)";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

bool ParseOnce(const std::string& text) {
  std::vector<flowmesh::spec::SpecError> errors;
  auto result = flowmesh::spec::ParseWorkflow(text, flowmesh::spec::Format::kNative, &errors);
  if (!result.ok()) {
    std::fprintf(stderr, "parse failed: %s\n", result.status().message().c_str());
    for (size_t i = 0; i < errors.size() && i < 5; ++i) {
      std::fprintf(stderr, "  %s\n", errors[i].ToString().c_str());
    }
  }
  return result.ok();
}

}  // namespace

int main(int argc, char** argv) {
  size_t nodes = 10000;
  int runs = 5;
  double seconds = 2.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--nodes") nodes = std::strtoul(argv[i + 1], nullptr, 10);
    if (flag == "--runs") runs = std::atoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  std::string big = BigGraph(nodes);
  std::vector<double> times;
  for (int r = 0; r < std::max(1, runs); ++r) {
    auto start = Clock::now();
    if (!ParseOnce(big)) return 1;
    times.push_back(Ms(Clock::now() - start));
  }
  std::sort(times.begin(), times.end());
  std::printf("parse_ms_%zuk_nodes=%.1f\n", nodes / 1000, times[times.size() / 2]);
  std::printf("parse_doc_bytes=%zu\n", big.size());

  std::string typical = kTypical;
  if (!ParseOnce(typical)) return 1;
  size_t docs = 0;
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(seconds));
  while (Clock::now() < deadline) {
    for (int i = 0; i < 50; ++i) ParseOnce(typical);
    docs += 50;
  }
  double elapsed = Ms(Clock::now() - start) / 1000.0;
  std::printf("validate_docs_per_sec=%.0f\n", static_cast<double>(docs) / elapsed);
  return 0;
}
