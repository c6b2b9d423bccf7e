// Operator identity: the canonical forms the scheduler (batch keys, locality), the
// inference executor (loaded-model keys) and de-duplication (fingerprints) agree on.
//
//   CanonicalJson  — sorted keys, no whitespace, integral floats written as integers
//                    (1.0 → 1, -0.0 → 0), so equal values have equal bytes.
//   ModelIdentity  — {type, identifier, revision, file} of a task's `model.source`
//                    (missing fields are ""), the part of a model that fixes its weights.
//   ModelKey       — that identity as one string: "huggingface:Org/Name@rev#file",
//                    "local:/models/x.gguf", "url:https://…"; "" when the spec names no model.
//   BatchKey       — task type + model key + engine options (model.llamacpp / vllm /
//                    transformers / adapters): tasks with equal keys can share a worker and
//                    a decode batch. Data, prompts and sampling parameters do not count.
//   OperatorFingerprint — SHA-256 of the canonical JSON of the task type, the model
//                    identity, the parameters that change the output (the resolved spec
//                    without resources, retries, timeouts, output destination, cache policy
//                    or schedule hints), and the digests of the upstream results it read.
//   Deterministic  — the executors' declarations: echo, data_profiling, embedding, collection;
//                    inference with temperature 0 or a fixed seed; api with `cache: true`;
//                    training with a fixed seed. `cache: never|always` on a task overrides.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace flowmesh::spec {

std::string CanonicalJson(const nlohmann::json& value);
nlohmann::json ModelIdentity(const nlohmann::json& task_spec);
std::string ModelKey(const nlohmann::json& task_spec);
std::string BatchKey(const std::string& task_type, const nlohmann::json& task_spec);

// `resolved_spec`: the spec as dispatched (references and data resolved);
// `upstream_digests`: result digests of the dependencies (order does not matter).
std::string OperatorFingerprint(const std::string& task_type, const nlohmann::json& resolved_spec,
                                std::vector<std::string> upstream_digests);
bool Deterministic(const std::string& task_type, const nlohmann::json& task_spec);

}  // namespace flowmesh::spec
